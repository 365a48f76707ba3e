{{ config(**keyed('sku')) }}

-- Products as first listed.
with deduplicated as (
    {{ deduplicated(source('raw', 'products'), ['sku'], prefer=['first_seen_ts']) }}
)

select
    sku,
    trim(title) as title,
    description,
    category,
    brand,
    price,
    upper(trim(currency)) as currency,
    supplier_id,
    alt_supplier_id,
    lead_time_days,
    {{ to_utc('first_seen_ts') }} as first_seen_ts,
    _event_date as first_seen_date,
    _landing_date as landing_date
from deduplicated
