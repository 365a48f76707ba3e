{{ config(**date_partitioned('activity_date')) }}

-- Place performance: channel x placement x region x day. Sessions, views and carts where they happened; orders and
-- GMV of the sale lines credited there (intermediate.int_sale_attribution, through the place_activity macro that
-- features.place_day shares). An order whose items were carted in two placements counts once in each.
with cells as (
    {{ place_activity(ref('stg_events')) }}
)

select
    activity_date,
    channel,
    placement,
    region,
    sessions,
    views,
    carts,
    orders,
    round(gmv, 2) as gmv
from cells
