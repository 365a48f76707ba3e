{{ config(**date_partitioned('impression_date')) }}

-- One row per impression of a served list: whether the customer clicked it (a view of the SKU at the same
-- placement in the same session, at or after the impression), added it to the cart there, and the sale lines
-- credited to it (intermediate.int_impression_sales: last touch within the attribution window).
with shown as (
    select *
    from {{ ref('stg_impressions') }}
    where {{ in_window('impression_date') }}
),

clicks as (
    select
        e.session_id,
        e.sku,
        e.placement,
        min(case when e.event_type = 'view' then e.event_ts end) as first_click_ts,
        max(case when e.event_type = 'cart' then 1 else 0 end) as carted
    from {{ ref('stg_events') }} as e
    where
        e.event_type in ('view', 'cart')
        and {{ in_window('e.event_date') }}
    group by e.session_id, e.sku, e.placement
),

credited as (
    select
        impression_id,
        count(*) as purchased_lines,
        sum(qty) as purchased_units,
        sum(net_amount) as revenue,
        sum(margin) as margin
    from {{ ref('int_impression_sales') }}
    group by impression_id
)

select
    s.impression_id,
    s.impression_ts,
    s.impression_date,
    s.customer_id,
    s.session_id,
    s.sku,
    s.placement,
    s.rank,
    s.list_id,
    s.model_version,
    s.arm,
    coalesce(c.first_click_ts >= s.impression_ts, false) as clicked,
    coalesce(c.first_click_ts >= s.impression_ts and c.carted = 1, false) as carted,
    coalesce(p.purchased_lines, 0) as purchased_lines,
    coalesce(p.purchased_units, 0) as purchased_units,
    coalesce(p.revenue, 0) as revenue,
    coalesce(p.margin, 0) as margin
from shown as s
left join clicks as c
    on s.session_id = c.session_id and s.sku = c.sku and s.placement = c.placement
left join credited as p
    on s.impression_id = p.impression_id
