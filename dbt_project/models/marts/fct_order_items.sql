{{ config(**date_partitioned('order_date')) }}

select
    order_id,
    line_no,
    order_ts,
    order_date,
    customer_id,
    channel,
    region,
    sku,
    qty,
    unit_price,
    discount,
    net_amount,
    margin,
    warehouse_id,
    line_type,
    line_type = 'sale' as is_sale
from {{ ref('int_order_lines') }}
where {{ in_window('order_date') }}
