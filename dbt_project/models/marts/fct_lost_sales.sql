{{ config(**date_partitioned('lost_date')) }}

-- Units the stock could not serve per SKU, warehouse, day and reason (closed-loop shop front): what the
-- inventory marts' sales leave out.
select
    sku,
    warehouse_id,
    lost_date,
    reason,
    count(*) as lost_lines,
    sum(qty) as lost_units
from {{ ref('stg_lost_sales') }}
where {{ in_window('lost_date') }}
group by sku, warehouse_id, lost_date, reason
