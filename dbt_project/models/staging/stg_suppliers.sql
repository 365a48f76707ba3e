{{ config(**keyed('supplier_id')) }}

with ranked as (
    select
        *,
        row_number() over (
            partition by supplier_id order by first_seen_ts, _landing_date, _source_file, _file_row
        ) as copy_rank
    from {{ source('raw', 'suppliers') }}
    where {{ in_window('_event_date') }}
)

select
    supplier_id,
    name as supplier_name,
    country,
    lead_time_days,
    min_order_qty,
    _event_date as first_seen_date
from ranked
where copy_rank = 1
