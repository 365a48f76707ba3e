{{ config(**keyed('customer_id')) }}

-- Customers as first seen. Email and phone leave the raw layer only as keyed hashes (PII).
with deduplicated as (
    {{ deduplicated(source('raw', 'customers'), ['customer_id'], prefer=['first_seen_ts']) }}
)

select
    customer_id,
    {{ to_utc('first_seen_ts') }} as first_seen_ts,
    _event_date as first_seen_date,
    {{ pii_hash('email') }} as email_hash,
    {{ pii_hash('phone') }} as phone_hash,
    region,
    country,
    lower(trim(preferred_device)) as preferred_device,
    _landing_date as landing_date
from deduplicated
