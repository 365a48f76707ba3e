{{ config(**keyed('customer_id')) }}

-- Customers as first seen. Email and phone leave the raw layer only as keyed hashes (PII).
with ranked as (
    select
        *,
        row_number() over (
            partition by customer_id order by first_seen_ts, _landing_date, _source_file, _file_row
        ) as copy_rank
    from {{ source('raw', 'customers') }}
    where {{ in_window('_event_date') }}
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
from ranked
where copy_rank = 1
