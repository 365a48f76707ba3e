{{ config(**date_partitioned('impression_date')) }}

-- Items of a served list shown to a customer (closed-loop shop front), one row per impression_id, times in UTC.
with deduplicated as (
    {{ deduplicated(source('raw', 'impressions'), ['impression_id']) }}
)

select
    impression_id,
    {{ to_utc('ts') }} as impression_ts,
    _event_date as impression_date,
    customer_id,
    session_id,
    sku,
    lower(trim(placement)) as placement,
    rank,
    list_id,
    model_version,
    lower(trim(arm)) as arm,
    _landing_date as landing_date,
    _source_file as source_file
from deduplicated
