{{ config(**date_partitioned('activity_date')) }}

-- Channel x placement x region x hour x day: views and add-to-carts where they happened, and purchased lines,
-- orders and GMV where their sale is credited (the place_activity macro, shared with marts.fct_channel_daily).
-- What the place windows sum.
with cells as (
    {{ place_activity(ref('fct_events'), hourly=true) }}
)

select
    activity_date,
    channel,
    placement,
    region,
    cast(hour_of_day as integer) as hour,
    cast(views as bigint) as views,
    cast(carts as bigint) as carts,
    cast(purchases as bigint) as purchases,
    cast(orders as bigint) as orders,
    cast(gmv as double) as gmv
from cells
