{{ config(**date_partitioned('event_date')) }}

-- Clickstream, one row per event_id (the first landed copy wins), times in UTC.
with deduplicated as (
    {{ deduplicated(source('raw', 'events'), ['event_id']) }}
)

select
    event_id,
    {{ to_utc('ts') }} as event_ts,
    _event_date as event_date,
    customer_id,
    session_id,
    sku,
    lower(trim(event_type)) as event_type,
    lower(trim(channel)) as channel,
    lower(trim(placement)) as placement,
    region,
    lower(trim(device)) as device,
    _landing_date as landing_date,
    _source_file as source_file
from deduplicated
