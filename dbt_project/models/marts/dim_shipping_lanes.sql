{{ config(**keyed(['warehouse_id', 'region'])) }}

-- Every warehouse-to-region lane with its warehouse's site and daily capacity, ranked per region the way the
-- nearest-warehouse rule picks: fastest first, then cheapest per parcel. Every run rewrites all lanes (a few
-- dozen rows), since a new lane can change the ranks of the others in its region.
select
    l.warehouse_id,
    l.region,
    w.site_region,
    w.daily_capacity_units,
    l.road_km,
    l.delivery_days,
    l.promise_days,
    l.delivery_days <= l.promise_days as on_time,
    l.cost_per_order,
    l.cost_per_unit,
    l.bulk_cost_per_unit,
    row_number() over (
        partition by l.region order by l.delivery_days, l.cost_per_order, l.warehouse_id
    ) as nearest_rank
from {{ ref('stg_shipping_lanes') }} as l
inner join {{ ref('stg_warehouses') }} as w
    on l.warehouse_id = w.warehouse_id
