{{ config(**date_partitioned('activity_date')) }}

-- The catalogue as of each day: products listed on or before it, with their price band (tercile of list price
-- within the category; the whole catalogue where the category is unknown) and the category's median list price.
with days as (
    {{ feature_days() }}
),

listed as (
    select
        d.activity_date,
        p.sku,
        p.category,
        p.brand,
        p.price,
        p.first_seen_date,
        coalesce(p.category, '(none)') as price_group
    from days as d
    inner join {{ ref('dim_products') }} as p
        on d.activity_date >= p.first_seen_date
)

select
    activity_date,
    sku,
    category,
    brand,
    price,
    first_seen_date,
    case
        when price is null then null
        -- thresholds as doubles: Spark would make 2.0 / 3 a decimal rounded up to 0.666667, so a rank of exactly 2/3
        -- would fall in another band than on DuckDB
        when percent_rank() over (partition by activity_date, price_group order by price) < cast(1 as double) / 3
            then 'low'
        when percent_rank() over (partition by activity_date, price_group order by price) < cast(2 as double) / 3
            then 'mid'
        else 'high'
    end as price_band,
    {{ median_of('price') }} over (partition by activity_date, price_group) as category_median_price
from listed
