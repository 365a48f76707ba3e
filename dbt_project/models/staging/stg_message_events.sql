{{ config(**date_partitioned('event_date')) }}

-- What happened to each platform message the shop sent (closed-loop shop front), one row per event_id, UTC.
with deduplicated as (
    {{ deduplicated(source('raw', 'message_events'), ['event_id']) }}
)

select
    event_id,
    {{ to_utc('ts') }} as event_ts,
    _event_date as event_date,
    message_id,
    customer_id,
    lower(trim(event_type)) as event_type,
    lower(trim(channel)) as channel,
    sku,
    session_id,
    _landing_date as landing_date,
    _source_file as source_file
from deduplicated
