{{ config(**keyed(['warehouse_id', 'region'])) }}

with deduplicated as (
    {{ deduplicated(source('raw', 'shipping_lanes'), ['warehouse_id', 'region'], prefer=['first_seen_ts']) }}
)

select
    warehouse_id,
    region,
    road_km,
    delivery_days,
    promise_days,
    cost_per_order,
    cost_per_unit,
    bulk_cost_per_unit,
    _event_date as first_seen_date
from deduplicated
