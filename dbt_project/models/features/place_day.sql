{{ config(**date_partitioned('activity_date')) }}

-- Channel x placement x region x hour x day: views and add-to-carts where they happened, and purchased lines,
-- orders and GMV where their sale is credited (intermediate.int_sale_attribution). What the place windows sum.
with clicks as (
    select
        activity_date,
        coalesce(channel, 'unknown') as channel,
        coalesce(placement, 'unknown') as placement,
        coalesce(region, 'unknown') as region,
        event_hour as hour_of_day,
        sum(case when event_type = 'view' then 1 else 0 end) as views,
        sum(case when event_type = 'cart' then 1 else 0 end) as carts,
        0 as purchases,
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(0 as decimal(18, 2)) as gmv
    from ({{ window_events() }}) as events
    where event_type in ('view', 'cart')
    group by
        activity_date,
        coalesce(channel, 'unknown'),
        coalesce(placement, 'unknown'),
        coalesce(region, 'unknown'),
        event_hour
),

buys as (
    select
        order_date as activity_date,
        channel,
        placement,
        region,
        hour_of_day,
        0 as views,
        0 as carts,
        1 as purchases,
        order_id,
        net_amount as gmv
    from {{ ref('int_sale_attribution') }}
    where {{ in_window('order_date') }}
),

unioned as (
    select * from clicks
    union all
    select * from buys
)

select
    activity_date,
    channel,
    placement,
    region,
    cast(hour_of_day as integer) as hour,
    cast(sum(views) as bigint) as views,
    cast(sum(carts) as bigint) as carts,
    cast(sum(purchases) as bigint) as purchases,
    cast(count(distinct order_id) as bigint) as orders,
    cast(sum(gmv) as double) as gmv
from unioned
group by activity_date, channel, placement, region, hour_of_day
