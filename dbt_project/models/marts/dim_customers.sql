{{ config(**keyed('customer_id')) }}

-- Customers (PII only as keyed hashes). Attributes as first seen; behaviour lives in the profile assets.
select
    customer_id,
    first_seen_ts,
    first_seen_date,
    email_hash,
    phone_hash,
    region,
    country,
    preferred_device
from {{ ref('stg_customers') }}
where {{ in_window('first_seen_date') }}
