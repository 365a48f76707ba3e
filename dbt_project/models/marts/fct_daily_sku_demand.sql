{{ config(**date_partitioned('demand_date')) }}

-- Daily demand per SKU over trading days (days with any sale), zero-filled from the SKU's first sale.
-- This is the series the forecasts learn from: a missing day would otherwise look like missing data.
with sales as (
    select * from {{ ref('int_daily_sku_sales') }}
),

first_sale as (
    select
        sku,
        min(order_date) as first_sale_date
    from sales
    group by sku
),

trading_days as (
    select distinct order_date as demand_date
    from sales
    where {{ in_window('order_date') }}
)

select
    f.sku,
    d.demand_date,
    coalesce(s.units, 0) as units,
    coalesce(s.units_reversed_same_day, 0) as units_reversed_same_day,
    coalesce(s.revenue, 0) as revenue,
    coalesce(s.revenue_reversed_same_day, 0) as revenue_reversed_same_day,
    coalesce(s.n_orders, 0) as n_orders,
    s.sku is null as is_zero_filled
from trading_days as d
inner join first_sale as f
    on d.demand_date >= f.first_sale_date
left join sales as s
    on f.sku = s.sku and d.demand_date = s.order_date
