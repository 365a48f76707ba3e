{{ config(**date_partitioned('order_date')) }}

-- Order lines with their order's customer, channel and status, classified once for every mart:
--   sale        quantity > 0, price > 0, order not cancelled (the demand that forecasts learn from)
--   return      quantity < 0 (cancellation invoices and returns)
--   adjustment  anything else (zero prices, zero quantities, lines of cancelled orders with positive qty)
select
    i.order_id,
    i.line_no,
    i.order_ts,
    i.order_date,
    o.customer_id,
    o.channel,
    o.region,
    o.session_id,
    i.sku,
    i.qty,
    i.unit_price,
    i.discount,
    i.net_amount,
    i.gross_amount,
    -- no source carries purchase costs: var cost_share_of_list_price of the list price (dbt_project.yml)
    i.net_amount - i.qty * i.unit_price * {{ var('cost_share_of_list_price') }} as margin,
    i.warehouse_id,
    coalesce(o.is_cancelled, false) as is_cancelled_order,
    case
        when i.qty > 0 and i.unit_price > 0 and not coalesce(o.is_cancelled, false) then 'sale'
        when i.qty < 0 then 'return'
        else 'adjustment'
    end as line_type
from {{ ref('stg_order_items') }} as i
left join {{ ref('stg_orders') }} as o
    on i.order_id = o.order_id
where {{ in_window('i.order_date') }}
