-- An order's total as sent by the source must equal the sum of its lines within a cent.
select
    order_id,
    order_date,
    order_total,
    line_net_amount
from {{ ref('fct_orders') }}
where
    {{ test_window('order_date') }}
    and order_total is not null
    and n_lines > 0
    and abs(order_total - line_net_amount) > 0.011
