{{ config(**date_partitioned('order_date')) }}

-- Order lines, one row per (order_id, line_no). net_amount applies the line's discount.
with deduplicated as (
    {{ deduplicated(source('raw', 'order_items'), ['order_id', 'line_no']) }}
)

select
    order_id,
    line_no,
    {{ to_utc('ts') }} as order_ts,
    _event_date as order_date,
    sku,
    qty,
    unit_price,
    coalesce(discount, 0.0) as discount,
    -- Money is DECIMAL from here on: sums are exact and do not depend on the order of aggregation. The product is
    -- taken in DECIMAL too, so a half cent rounds up on every engine (a double 11.985 is 11.98499.. on DuckDB).
    {{ money('qty', 'unit_price', 'coalesce(discount, 0.0)') }} as net_amount,
    {{ money('qty', 'unit_price') }} as gross_amount,
    warehouse_id,
    _landing_date as landing_date,
    _source_file as source_file
from deduplicated
