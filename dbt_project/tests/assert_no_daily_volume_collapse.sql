{{ config(severity='warn') }}
-- A trading day whose order count falls below a tenth of the previous seven trading days' average is suspicious
-- (a partial upstream drop). Warn rather than fail: real stores have quiet days.
with daily as (
    select
        order_date,
        count(*) as n_orders
    from {{ ref('fct_orders') }}
    group by order_date
),

with_history as (
    select
        order_date,
        n_orders,
        avg(n_orders) over (order by order_date rows between 7 preceding and 1 preceding) as prev_avg,
        count(*) over (order by order_date rows between 7 preceding and 1 preceding) as prev_days
    from daily
)

select *
from with_history
where {{ test_window('order_date') }} and prev_days >= 3 and n_orders < 0.1 * prev_avg
