{{ config(**keyed('warehouse_id')) }}

with deduplicated as (
    {{ deduplicated(source('raw', 'warehouses'), ['warehouse_id'], prefer=['first_seen_ts']) }}
)

select
    warehouse_id,
    site_region,
    daily_capacity_units,
    _event_date as first_seen_date
from deduplicated
