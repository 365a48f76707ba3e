{{ config(**date_partitioned('activity_date')) }}

-- Place performance: channel x placement x region x day. Sessions, views and carts where they happened; orders and
-- GMV of the sale lines credited there (intermediate.int_sale_attribution: the placement of the item's first
-- add-to-cart in the session, 'unknown' for orders without a clickstream session). An order whose items were
-- carted in two placements counts once in each.
with clicks as (
    select
        event_date as activity_date,
        coalesce(channel, 'unknown') as channel,
        coalesce(placement, 'unknown') as placement,
        coalesce(region, 'unknown') as region,
        count(distinct session_id) as sessions,
        sum(case when event_type = 'view' then 1 else 0 end) as views,
        sum(case when event_type = 'cart' then 1 else 0 end) as carts,
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(0 as decimal(18, 2)) as gmv
    from {{ ref('stg_events') }}
    where {{ in_window('event_date') }}
    group by event_date, coalesce(channel, 'unknown'), coalesce(placement, 'unknown'), coalesce(region, 'unknown')
),

sales as (
    select
        order_date as activity_date,
        channel,
        placement,
        region,
        0 as sessions,
        0 as views,
        0 as carts,
        order_id,
        net_amount as gmv
    from {{ ref('int_sale_attribution') }}
    where {{ in_window('order_date') }}
),

unioned as (
    select * from clicks
    union all
    select * from sales
)

select
    activity_date,
    channel,
    placement,
    region,
    sum(sessions) as sessions,
    sum(views) as views,
    sum(carts) as carts,
    count(distinct order_id) as orders,
    round(sum(gmv), 2) as gmv
from unioned
group by activity_date, channel, placement, region
