{{ config(**date_partitioned('activity_date')) }}

-- Place performance: channel x placement x region x day. Orders are attributed to the placement where
-- their session started; orders without a session (e.g. the Online Retail replay) count under 'unknown'.
with clicks as (
    select
        event_date as activity_date,
        channel,
        placement,
        region,
        count(distinct session_id) as sessions,
        sum(case when event_type = 'view' then 1 else 0 end) as views,
        sum(case when event_type = 'cart' then 1 else 0 end) as carts,
        0 as orders,
        cast(0 as decimal(18, 2)) as gmv
    from {{ ref('stg_events') }}
    where {{ in_window('event_date') }}
    group by event_date, channel, placement, region
),

orders as (
    select
        o.order_date as activity_date,
        o.channel,
        coalesce(s.entry_placement, 'unknown') as placement,
        o.region,
        0 as sessions,
        0 as views,
        0 as carts,
        count(*) as orders,
        sum(o.line_net_amount) as gmv
    from {{ ref('fct_orders') }} as o
    left join {{ ref('int_sessions') }} as s
        on o.session_id = s.session_id
    where not o.is_cancelled and {{ in_window('o.order_date') }}
    group by o.order_date, o.channel, coalesce(s.entry_placement, 'unknown'), o.region
),

unioned as (
    select * from clicks
    union all
    select * from orders
)

select
    activity_date,
    coalesce(channel, 'unknown') as channel,
    coalesce(placement, 'unknown') as placement,
    coalesce(region, 'unknown') as region,
    sum(sessions) as sessions,
    sum(views) as views,
    sum(carts) as carts,
    sum(orders) as orders,
    round(sum(gmv), 2) as gmv
from unioned
group by activity_date, coalesce(channel, 'unknown'), coalesce(placement, 'unknown'), coalesce(region, 'unknown')
