{{ config(**date_partitioned('activity_date')) }}

-- Orders per day containing both SKUs of a pair (sku_a <= sku_b; the diagonal counts orders containing the SKU),
-- over the orders with at most max_basket_skus distinct SKUs: a wholesale invoice of 500 lines would add 125k
-- pairs that say little about what goes together. What the basket associations sum.
with lines as (
    {{ window_lines() }}
),

baskets as (
    select distinct
        activity_date,
        order_id,
        sku
    from lines
    where line_type = 'sale' and sku is not null
),

small_orders as (
    select
        activity_date,
        order_id
    from baskets
    group by activity_date, order_id
    having count(*) <= {{ var('max_basket_skus') }}
),

kept as (
    select b.*
    from baskets as b
    inner join small_orders as s
        on b.activity_date = s.activity_date and b.order_id = s.order_id
)

select
    a.activity_date,
    a.sku as sku_a,
    b.sku as sku_b,
    cast(count(*) as bigint) as n_orders
from kept as a
inner join kept as b
    on a.activity_date = b.activity_date and a.order_id = b.order_id and a.sku <= b.sku
group by a.activity_date, a.sku, b.sku
