{{ config(**date_partitioned('as_of_date')) }}

-- Customers by their lifecycle stage the day before D and on D (from customer_windows): how many stayed, moved up
-- or lapsed. A customer without a row the day before (first seen on D) comes from 'not_known'.
with days as (
    select activity_date as as_of_date from ({{ feature_days() }}) as window_days
),

today as (
    select
        w.as_of_date,
        w.customer_id,
        w.lifecycle_stage
    from {{ ref('customer_windows') }} as w
    inner join days as d
        on w.as_of_date = d.as_of_date
),

yesterday as (
    select
        d.as_of_date,
        w.customer_id,
        w.lifecycle_stage
    from {{ ref('customer_windows') }} as w
    inner join days as d
        on w.as_of_date = {{ days_before('d.as_of_date', 1) }}
)

select
    t.as_of_date,
    coalesce(y.lifecycle_stage, 'not_known') as from_stage,
    t.lifecycle_stage as to_stage,
    cast(count(*) as bigint) as customers
from today as t
left join yesterday as y
    on t.as_of_date = y.as_of_date and t.customer_id = y.customer_id
group by t.as_of_date, coalesce(y.lifecycle_stage, 'not_known'), t.lifecycle_stage
