{{ config(**keyed('supplier_id')) }}

with deduplicated as (
    {{ deduplicated(source('raw', 'suppliers'), ['supplier_id'], prefer=['first_seen_ts']) }}
)

select
    supplier_id,
    name as supplier_name,
    country,
    lead_time_days,
    min_order_qty,
    _event_date as first_seen_date
from deduplicated
