{{ config(**date_partitioned('order_date')) }}

-- Daily sales per SKU (sale lines only): the small aggregate that demand and profiles build on.
-- units_reversed_same_day (and its revenue): the part of units that the same customer undid on the same day
-- with a return line of the same SKU and quantity, after the sale (Online Retail's cancellation invoices
-- minutes later, e.g. 541431 / C541433, 74,215 units). units keeps them, as the forecast protocol does
-- (docs/PROTOCOLS.md); the supply chain plans on units net of them. Each return undoes at most one sale: the
-- k-th such return pairs with the k-th such sale.
with lines as (
    select * from {{ ref('int_order_lines') }}
    where {{ in_window('order_date') }}
),

-- sale and return lines of known customers, the k-th in time order per customer, SKU, day and quantity
paired_lines as (
    select
        order_id,
        line_no,
        line_type,
        customer_id,
        sku,
        order_date,
        order_ts,
        abs(qty) as qty,
        row_number() over (
            partition by line_type, customer_id, sku, order_date, abs(qty) order by order_ts, order_id, line_no
        ) as k
    from lines
    where line_type in ('sale', 'return') and customer_id is not null
),

reversed_sales as (
    select
        s.order_id,
        s.line_no
    from paired_lines as s
    inner join paired_lines as r
        on
            s.customer_id = r.customer_id
            and s.sku = r.sku
            and s.order_date = r.order_date
            and s.qty = r.qty
            and s.k = r.k
            and s.order_ts <= r.order_ts
    where s.line_type = 'sale' and r.line_type = 'return'
)

select
    l.sku,
    l.order_date,
    sum(l.qty) as units,
    coalesce(sum(l.qty) filter (where rs.order_id is not null), 0) as units_reversed_same_day,
    sum(l.net_amount) as revenue,
    coalesce(sum(l.net_amount) filter (where rs.order_id is not null), 0) as revenue_reversed_same_day,
    count(distinct l.order_id) as n_orders
from lines as l
left join reversed_sales as rs
    on l.order_id = rs.order_id and l.line_no = rs.line_no
where l.line_type = 'sale'
group by l.sku, l.order_date
