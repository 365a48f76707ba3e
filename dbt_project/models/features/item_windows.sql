{{ config(**date_partitioned('as_of_date')) }}

-- noqa: disable=LT05
-- (dbt.datediff expands to a long line)
-- Per product listed on or before D: funnel, sales velocity, trend, returns and stock over the 7/30/90 days ending
-- on D, from sku_day (column docs: _features.yml). The goods profiles add a text embedding.
{%- set sums = [
    ('views_7d', 'n_views', 7),
    ('views_30d', 'n_views', 30),
    ('carts_30d', 'n_carts', 30),
    ('purchases_7d', 'n_orders', 7),
    ('purchases_30d', 'n_orders', 30),
    ('units_7d', 'units_sold', 7),
    ('units_30d', 'units_sold', 30),
    ('units_90d', 'units_sold', 90),
    ('returned_90d', 'units_returned', 90),
    ('cancelled_90d', 'units_cancelled', 90),
] %}

with days as (
    select activity_date as as_of_date from ({{ feature_days() }}) as window_days
),

windows as (
    select
        d.as_of_date,
        s.sku,
        {%- for name, column, length in sums %}
            sum(case when s.activity_date > {{ days_before('d.as_of_date', length) }} then s.{{ column }} end)
                as {{ name }},
        {%- endfor %}
        sum(
            case when s.activity_date > {{ days_before('d.as_of_date', 30) }} then cast(s.revenue as decimal(18, 2)) end
        ) as revenue_30d,
        max(case when s.activity_date = d.as_of_date then s.on_hand end) as on_hand,
        max(case when s.activity_date = d.as_of_date then s.stockout_locations end) as stockout_locations
    from days as d
    inner join {{ ref('sku_day') }} as s
        on d.as_of_date >= s.activity_date and s.activity_date > {{ days_before('d.as_of_date', 90) }}
    group by d.as_of_date, s.sku
),

listed as (
    select
        p.activity_date as as_of_date,
        p.sku,
        p.category,
        p.brand,
        p.price,
        p.price_band,
        p.first_seen_date,
        {{ dbt.datediff('p.first_seen_date', 'p.activity_date', 'day') }} as novelty_days,
        {%- for name, _, _ in sums %}
            cast(coalesce(w.{{ name }}, 0) as bigint) as {{ name }},
        {%- endfor %}
        cast(coalesce(w.revenue_30d, 0) as double) as revenue_30d,
        w.on_hand,
        w.stockout_locations
    from {{ ref('product_day') }} as p
    left join windows as w
        on p.activity_date = w.as_of_date and p.sku = w.sku
    where {{ in_window('p.activity_date') }}
),

rates as (
    select
        *,
        case when views_30d > 0 then carts_30d / views_30d end as view_to_cart_30d,
        case when carts_30d > 0 then purchases_30d / carts_30d end as cart_to_purchase_30d,
        case when views_30d > 0 then purchases_30d / views_30d end as view_to_purchase_30d,
        units_7d / least(7, novelty_days + 1) as velocity_7d,
        units_30d / least(30, novelty_days + 1) as velocity_30d,
        case
            when units_90d + cancelled_90d > 0 then (returned_90d + cancelled_90d) / (units_90d + cancelled_90d)
        end as return_cancel_rate_90d
    from listed
)

select
    *,
    case when velocity_30d > 0 then velocity_7d / velocity_30d end as trend,
    case when velocity_30d > 0 then on_hand / velocity_30d end as days_of_cover
from rates
