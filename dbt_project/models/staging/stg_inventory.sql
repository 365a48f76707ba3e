{{ config(**date_partitioned('snapshot_date')) }}

-- End-of-day stock per SKU and warehouse; one row per (sku, warehouse_id, snapshot_date).
with ranked as (
    select
        *,
        row_number() over (
            partition by sku, warehouse_id, _event_date
            order by snapshot_ts desc, _landing_date desc, _source_file asc, _file_row asc
        ) as copy_rank
    from {{ source('raw', 'inventory') }}
    where {{ in_window('_event_date') }}
)

select
    sku,
    warehouse_id,
    _event_date as snapshot_date,
    on_hand,
    on_order
from ranked
where copy_rank = 1
