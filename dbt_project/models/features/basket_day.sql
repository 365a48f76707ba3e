{{ config(**date_partitioned('activity_date')) }}

-- Orders per day with a sale, and those small enough to count in basket_pair_day (the denominator of support).
with sizes as (
    select
        activity_date,
        order_id,
        count(distinct sku) as n_skus
    from ({{ window_lines() }}) as lines
    where line_type = 'sale' and sku is not null
    group by activity_date, order_id
)

select
    d.activity_date,
    cast(count(s.order_id) as bigint) as n_orders,
    cast(sum(case when s.n_skus <= {{ var('max_basket_skus') }} then 1 else 0 end) as bigint) as n_orders_in_pairs
from ({{ feature_days() }}) as d
left join sizes as s
    on d.activity_date = s.activity_date
group by d.activity_date
