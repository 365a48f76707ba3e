{{ config(**date_partitioned('activity_date')) }}

-- One row per SKU and day with any activity or stock: funnel counts, sales, returns and cancellations, end-of-day
-- stock over all warehouses. What the item windows sum.
with events as (
    {{ window_events() }}
),

lines as (
    {{ window_lines() }}
),

clicks as (
    select
        activity_date,
        sku,
        sum(case when event_type = 'view' then 1 else 0 end) as n_views,
        sum(case when event_type = 'cart' then 1 else 0 end) as n_carts
    from events
    where sku is not null
    group by activity_date, sku
),

sales as (
    select
        activity_date,
        sku,
        sum(case when line_type = 'sale' then qty else 0 end) as units_sold,
        sum(case when line_type = 'sale' then net_amount else 0 end) as revenue,
        count(distinct case when line_type = 'sale' then order_id end) as n_orders,
        sum(case when line_type = 'return' then -qty else 0 end) as units_returned,
        sum(case when line_type != 'sale' and qty > 0 and is_cancelled then qty else 0 end) as units_cancelled
    from lines
    where sku is not null
    group by activity_date, sku
),

stock as (
    select
        snapshot_date as activity_date,
        sku,
        sum(on_hand) as on_hand,
        sum(on_order) as on_order,
        sum(case when on_hand = 0 then 1 else 0 end) as stockout_locations
    from {{ ref('fct_inventory_daily') }}
    where {{ in_window('snapshot_date') }}
    group by snapshot_date, sku
),

skus as (
    select
        activity_date,
        sku
    from clicks
    union
    select
        activity_date,
        sku
    from sales
    union
    select
        activity_date,
        sku
    from stock
)

select
    k.activity_date,
    k.sku,
    cast(coalesce(c.n_views, 0) as bigint) as n_views,
    cast(coalesce(c.n_carts, 0) as bigint) as n_carts,
    cast(coalesce(s.n_orders, 0) as bigint) as n_orders,
    cast(coalesce(s.units_sold, 0) as bigint) as units_sold,
    cast(coalesce(s.revenue, 0) as double) as revenue,
    cast(coalesce(s.units_returned, 0) as bigint) as units_returned,
    cast(coalesce(s.units_cancelled, 0) as bigint) as units_cancelled,
    cast(st.on_hand as bigint) as on_hand,
    cast(st.on_order as bigint) as on_order,
    cast(st.stockout_locations as bigint) as stockout_locations
from skus as k
left join clicks as c
    on k.activity_date = c.activity_date and k.sku = c.sku
left join sales as s
    on k.activity_date = s.activity_date and k.sku = s.sku
left join stock as st
    on k.activity_date = st.activity_date and k.sku = st.sku
