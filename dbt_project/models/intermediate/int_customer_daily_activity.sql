{{ config(**date_partitioned('activity_date')) }}

-- Per customer and day: clickstream and purchase activity (the daily aggregate behind profiles' windows).
with clicks as (
    select
        customer_id,
        event_date as activity_date,
        sum(case when event_type = 'view' then 1 else 0 end) as n_views,
        sum(case when event_type = 'cart' then 1 else 0 end) as n_carts,
        count(distinct session_id) as n_sessions
    from {{ ref('stg_events') }}
    where customer_id is not null and {{ in_window('event_date') }}
    group by customer_id, event_date
),

purchases as (
    select
        customer_id,
        order_date as activity_date,
        count(distinct order_id) as n_orders,
        sum(qty) as units,
        sum(net_amount) as spend
    from {{ ref('int_order_lines') }}
    where line_type = 'sale' and customer_id is not null and {{ in_window('order_date') }}
    group by customer_id, order_date
)

select
    coalesce(c.customer_id, p.customer_id) as customer_id,
    coalesce(c.activity_date, p.activity_date) as activity_date,
    coalesce(c.n_sessions, 0) as n_sessions,
    coalesce(c.n_views, 0) as n_views,
    coalesce(c.n_carts, 0) as n_carts,
    coalesce(p.n_orders, 0) as n_orders,
    coalesce(p.units, 0) as units,
    coalesce(p.spend, 0) as spend
from clicks as c
full outer join purchases as p
    on c.customer_id = p.customer_id and c.activity_date = p.activity_date
