{{ config(**date_partitioned('snapshot_date')) }}

-- End-of-day stock per SKU and warehouse next to that day's sales from the same warehouse and the units the stock
-- could not serve (lost sales; only the closed-loop shop front reports them, elsewhere 0).
with sold as (
    select
        sku,
        warehouse_id,
        order_date,
        sum(qty) as units_sold
    from {{ ref('int_order_lines') }}
    where line_type = 'sale' and {{ in_window('order_date') }}
    group by sku, warehouse_id, order_date
),

lost as (
    select
        sku,
        warehouse_id,
        lost_date,
        sum(qty) as units_lost
    from {{ ref('stg_lost_sales') }}
    where {{ in_window('lost_date') }}
    group by sku, warehouse_id, lost_date
)

select
    i.sku,
    i.warehouse_id,
    i.snapshot_date,
    i.on_hand,
    i.on_order,
    i.on_hand = 0 as is_stockout,
    coalesce(s.units_sold, 0) as units_sold,
    coalesce(l.units_lost, 0) as units_lost
from {{ ref('stg_inventory') }} as i
left join sold as s
    on i.sku = s.sku and i.warehouse_id = s.warehouse_id and i.snapshot_date = s.order_date
left join lost as l
    on i.sku = l.sku and i.warehouse_id = l.warehouse_id and i.snapshot_date = l.lost_date
where {{ in_window('i.snapshot_date') }}
