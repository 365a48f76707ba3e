{{ config(**keyed('sku')) }}

-- Products with their primary and alternate supplier's lead time and minimum order quantity.
select
    p.sku,
    p.title,
    p.description,
    p.category,
    p.brand,
    p.price,
    p.currency,
    p.supplier_id,
    s.supplier_name,
    coalesce(p.lead_time_days, s.lead_time_days) as lead_time_days,
    s.min_order_qty,
    p.alt_supplier_id,
    alt.lead_time_days as alt_lead_time_days,
    alt.min_order_qty as alt_min_order_qty,
    p.first_seen_ts,
    p.first_seen_date
from {{ ref('stg_products') }} as p
left join {{ ref('stg_suppliers') }} as s
    on p.supplier_id = s.supplier_id
left join {{ ref('stg_suppliers') }} as alt
    on p.alt_supplier_id = alt.supplier_id
where {{ in_window('p.first_seen_date') }}
