{{ config(**date_partitioned('event_date')) }}

select
    event_id,
    event_ts,
    event_date,
    customer_id,
    session_id,
    sku,
    event_type,
    channel,
    placement,
    region,
    device
from {{ ref('stg_events') }}
where {{ in_window('event_date') }}
