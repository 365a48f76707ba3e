{{ config(**date_partitioned('as_of_date')) }}

-- Channel x placement x region x hour cells with any activity in the place_window_days days ending on D: views,
-- carts, purchased lines, orders and GMV. The place profiles smooth their rates.
with days as (
    select activity_date as as_of_date from ({{ feature_days() }}) as window_days
)

select
    d.as_of_date,
    p.channel,
    p.placement,
    p.region,
    p.hour,
    cast(sum(p.views) as bigint) as views,
    cast(sum(p.carts) as bigint) as carts,
    cast(sum(p.purchases) as bigint) as purchases,
    cast(sum(p.orders) as bigint) as orders,
    cast(sum(cast(p.gmv as decimal(18, 2))) as double) as gmv,
    {{ var('place_window_days') }} as window_days
from days as d
inner join {{ ref('place_day') }} as p
    on d.as_of_date >= p.activity_date and p.activity_date > {{ days_before('d.as_of_date', var('place_window_days')) }}
group by d.as_of_date, p.channel, p.placement, p.region, p.hour
