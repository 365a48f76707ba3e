{{ config(**date_partitioned('exposure_date')) }}

-- One row per customer, day, placement and served list version: what the customer was shown and what came of
-- it, the unit the online metrics resample (ml/feedback/online.py bootstraps over these rows). Credited figures
-- come from the impressions (last touch within the attribution window); total figures are every sale line the
-- customer bought on the exposure day, attributed or not, which is what an uplift on purchases must compare.
with exposures as (
    select
        impression_date as exposure_date,
        customer_id,
        placement,
        model_version,
        arm,
        count(*) as impressions,
        sum(case when clicked then 1 else 0 end) as clicks,
        sum(case when carted then 1 else 0 end) as carts,
        sum(purchased_units) as credited_units,
        sum(revenue) as credited_revenue,
        sum(margin) as credited_margin
    from {{ ref('fct_impressions') }}
    where {{ in_window('impression_date') }}
    group by impression_date, customer_id, placement, model_version, arm
),

bought as (
    select
        order_date,
        customer_id,
        count(distinct order_id) as orders,
        sum(qty) as units,
        sum(net_amount) as revenue,
        sum(margin) as margin
    from {{ ref('fct_order_items') }}
    where
        is_sale
        and customer_id is not null
        and {{ in_window('order_date') }}
    group by order_date, customer_id
)

select
    e.exposure_date,
    e.customer_id,
    e.placement,
    e.model_version,
    e.arm,
    e.impressions,
    e.clicks,
    e.carts,
    e.credited_units,
    e.credited_revenue,
    e.credited_margin,
    e.credited_units > 0 as converted,
    coalesce(b.orders, 0) as orders,
    coalesce(b.units, 0) as units,
    coalesce(b.revenue, 0) as revenue,
    coalesce(b.margin, 0) as margin
from exposures as e
left join bought as b
    on e.customer_id = b.customer_id and e.exposure_date = b.order_date
