{{ config(**date_partitioned('order_date')) }}

-- Order headers, one row per order_id, UTC times; guests keep a null customer_id.
with deduplicated as (
    {{ deduplicated(source('raw', 'orders'), ['order_id']) }}
)

select
    order_id,
    {{ to_utc('ts') }} as order_ts,
    _event_date as order_date,
    customer_id,
    session_id,
    lower(trim(channel)) as channel,
    region,
    country,
    upper(trim(currency)) as currency,
    cast(order_total as decimal(18, 2)) as order_total,
    lower(trim(status)) as status,
    lower(trim(status)) = 'cancelled' as is_cancelled,
    customer_id is null as is_guest,
    _landing_date as landing_date,
    _source_file as source_file
from deduplicated
