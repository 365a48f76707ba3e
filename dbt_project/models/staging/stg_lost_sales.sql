{{ config(**date_partitioned('lost_date')) }}

-- Demand the stock could not serve (closed-loop shop front), one row per lost_id, times in UTC.
with deduplicated as (
    {{ deduplicated(source('raw', 'lost_sales'), ['lost_id']) }}
)

select
    lost_id,
    {{ to_utc('ts') }} as lost_ts,
    _event_date as lost_date,
    customer_id,
    session_id,
    sku,
    warehouse_id,
    qty,
    lower(trim(reason)) as reason,
    _landing_date as landing_date,
    _source_file as source_file
from deduplicated
