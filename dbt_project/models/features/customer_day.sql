{{ config(**date_partitioned('activity_date')) }}

-- One row per customer and day with any activity: sessions, views, carts, orders, units, spend, discounted units
-- and the price paid relative to the category's median list price. What the customer windows sum.
with events as (
    {{ window_events() }}
),

lines as (
    {{ window_lines() }}
),

products as (
    select
        activity_date,
        sku,
        category_median_price
    from {{ ref('product_day') }}
    where {{ in_window('activity_date') }}
),

clicks as (
    select
        activity_date,
        customer_id,
        count(distinct session_id) as n_sessions,
        sum(case when event_type = 'view' then 1 else 0 end) as n_views,
        sum(case when event_type = 'cart' then 1 else 0 end) as n_carts
    from events
    where customer_id is not null
    group by activity_date, customer_id
),

sales as (
    select
        l.activity_date,
        l.customer_id,
        count(distinct l.order_id) as n_orders,
        sum(l.qty) as units,
        sum(l.net_amount) as spend,
        sum(case when l.discount > 0 then l.qty else 0 end) as discounted_units,
        -- a sum of fractions in a fixed precision: the same total whatever order the threads add them in
        sum(
            case
                when p.category_median_price > 0
                    then cast(l.qty * l.unit_price / p.category_median_price as decimal(38, 12))
            end
        ) as rel_price_units,
        sum(case when p.category_median_price > 0 then l.qty else 0 end) as rel_price_known_units
    from lines as l
    left join products as p
        on l.activity_date = p.activity_date and l.sku = p.sku
    where l.line_type = 'sale' and l.customer_id is not null
    group by l.activity_date, l.customer_id
)

select
    coalesce(c.activity_date, s.activity_date) as activity_date,
    coalesce(c.customer_id, s.customer_id) as customer_id,
    cast(coalesce(c.n_sessions, 0) as bigint) as n_sessions,
    cast(coalesce(c.n_views, 0) as bigint) as n_views,
    cast(coalesce(c.n_carts, 0) as bigint) as n_carts,
    cast(coalesce(s.n_orders, 0) as bigint) as n_orders,
    cast(coalesce(s.units, 0) as bigint) as units,
    cast(coalesce(s.spend, 0) as decimal(18, 2)) as spend,
    cast(coalesce(s.discounted_units, 0) as bigint) as discounted_units,
    cast(coalesce(s.rel_price_units, 0) as double) as rel_price_units,
    cast(coalesce(s.rel_price_known_units, 0) as bigint) as rel_price_known_units
from clicks as c
full outer join sales as s
    on c.activity_date = s.activity_date and c.customer_id = s.customer_id
