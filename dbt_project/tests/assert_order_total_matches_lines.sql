-- An order's total as the source sent it equals the sum of its lines in the marts within a cent (the contract's
-- order_total_tolerance). An order without any line fails too: its lines were quarantined (an unknown SKU) or have
-- not landed yet, and an order missing lines must not feed the models. Blocking (severity error).
select
    order_id,
    order_date,
    order_total,
    line_net_amount,
    n_lines,
    order_total - line_net_amount as total_minus_lines
from {{ ref('fct_orders') }}
where
    {{ test_window('order_date') }}
    and order_total is not null
    and abs(order_total - line_net_amount) > {{ contract_limit('order_total_tolerance') }}
