{{ config(**keyed('sku')) }}

-- Products as first listed.
with ranked as (
    select
        *,
        row_number() over (
            partition by sku order by first_seen_ts, _landing_date, _source_file, _file_row
        ) as copy_rank
    from {{ source('raw', 'products') }}
    where {{ in_window('_event_date') }}
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
from ranked
where copy_rank = 1
