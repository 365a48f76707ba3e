{{ config(**date_partitioned('snapshot_date')) }}

-- End-of-day stock per SKU and warehouse; one row per (sku, warehouse_id, snapshot_date): the day's last
-- snapshot wins, and of equal snapshots the latest landed (a re-sent file corrects an earlier one).
with deduplicated as (
    {{ deduplicated(
        source('raw', 'inventory'), ['sku', 'warehouse_id', '_event_date'],
        prefer=['snapshot_ts desc'], landing='last'
    ) }}
)

select
    sku,
    warehouse_id,
    _event_date as snapshot_date,
    on_hand,
    on_order
from deduplicated
