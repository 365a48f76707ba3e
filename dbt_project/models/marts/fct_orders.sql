{{ config(**date_partitioned('order_date')) }}

-- One row per order with its line totals. order_total is what the source sent; line_net_amount is recomputed.
with lines as (
    select
        order_id,
        count(*) as n_lines,
        sum(case when line_type = 'sale' then qty else 0 end) as units,
        sum(gross_amount) as gross_amount,
        sum(net_amount) as line_net_amount
    from {{ ref('int_order_lines') }}
    where {{ in_window('order_date') }}
    group by order_id
)

select
    o.order_id,
    o.order_ts,
    o.order_date,
    o.customer_id,
    o.session_id,
    o.channel,
    o.region,
    o.country,
    o.currency,
    o.status,
    o.is_cancelled,
    o.is_guest,
    o.order_total,
    coalesce(l.n_lines, 0) as n_lines,
    coalesce(l.units, 0) as units,
    coalesce(l.gross_amount, 0) as gross_amount,
    coalesce(l.line_net_amount, 0) as line_net_amount
from {{ ref('stg_orders') }} as o
left join lines as l
    on o.order_id = l.order_id
where {{ in_window('o.order_date') }}
