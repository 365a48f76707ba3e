{{ config(**date_partitioned('order_date')) }}

-- Daily sales per SKU (sale lines only): the small aggregate that demand and profiles build on.
select
    sku,
    order_date,
    sum(qty) as units,
    sum(net_amount) as revenue,
    count(distinct order_id) as n_orders
from {{ ref('int_order_lines') }}
where line_type = 'sale' and {{ in_window('order_date') }}
group by sku, order_date
