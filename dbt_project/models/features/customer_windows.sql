{{ config(**date_partitioned('as_of_date')) }}

{#
  Per known customer and as-of day D: RFM over 30/90/365-day windows ending on D, recency, tenure, price
  sensitivity, R/F/M scores and the lifecycle stage (column docs: _features.yml).

  The window sums are running sums, so a day's cost does not grow with history: from the sums as of the day
  before the window, P (this model's own row of P when it has one, else a scan of customer_day up to P), each
  window day adds its own customer_day row and subtracts the row that left each window. Sums of integers and of
  cents are exact, so both ways to P give the same numbers.
#}
{%- set window_sums = [
    ('orders_30d', 'n_orders', 30, 'bigint'),
    ('orders_90d', 'n_orders', 90, 'bigint'),
    ('orders_365d', 'n_orders', 365, 'bigint'),
    ('spend_30d', 'spend', 30, 'decimal(18, 2)'),
    ('spend_90d', 'spend', 90, 'decimal(18, 2)'),
    ('spend_365d', 'spend', 365, 'decimal(18, 2)'),
    ('units_365d', 'units', 365, 'bigint'),
    ('sessions_30d', 'n_sessions', 30, 'bigint'),
    ('views_30d', 'n_views', 30, 'bigint'),
    ('carts_30d', 'n_carts', 30, 'bigint'),
    ('discounted_units_365d', 'discounted_units', 365, 'bigint'),
    ('rel_price_units_365d', 'rel_price_units', 365, 'double'),
    ('rel_price_known_units_365d', 'rel_price_known_units', 365, 'bigint'),
] -%}
{%- set day_columns = ['n_orders', 'spend', 'units', 'n_sessions', 'n_views', 'n_carts', 'discounted_units',
    'rel_price_units', 'rel_price_known_units'] -%}
{%- set lengths = [30, 90, 365] -%}

{%- set base_from_previous = false -%}
{%- if is_incremental() and execute -%}
    {%- set found = run_query(
        "select count(*) from " ~ this ~ " where as_of_date = " ~ days_before(window_start(), 1)
    ) -%}
    {%- set base_from_previous = found.columns[0].values()[0] > 0 -%}
{%- endif %}

-- noqa: disable=LT02,LT05
-- (column lists written by loops and dbt.datediff expand to lines whose layout sqlfluff cannot judge)
with days as (
    select activity_date as as_of_date from ({{ feature_days() }}) as window_days
),

bounds as (
    select
        {{ days_before('min(as_of_date)', 1) }} as base_date,
        max(as_of_date) as last_day
    from days
),

first_seen as (
    select
        customer_id,
        min(first_seen_date) as first_seen_date
    from {{ ref('dim_customers') }}
    where customer_id is not null
    group by customer_id
),

{% if base_from_previous -%}
    -- the sums as of the day before the window: this model's row of that day
    base as (
        select
            customer_id,
            first_seen_date,
            last_purchase_date,
            last_visit_date,
            {%- for name, _, _, _ in window_sums %}
                {{ name }}{{ ',' if not loop.last }}
            {%- endfor %}
        from {{ this }}
        where as_of_date = (select base_date from bounds)
    ),
{%- else -%}
    -- the sums as of the day before the window, from customer_day (a first build, or no row of that day)
    scanned as (
        select
            c.customer_id,
            min(c.activity_date) as first_activity,
            max(case when c.n_orders > 0 then c.activity_date end) as last_purchase_date,
            max(case when c.n_sessions > 0 or c.n_orders > 0 then c.activity_date end) as last_visit_date,
            {%- for name, column, length, _ in window_sums %}
                sum(
                    case
                        when c.activity_date > {{ days_before('b.base_date', length) }}
                            then {{ summable(column, sql_type) }}
                    end
                ) as {{ name }}{{ ',' if not loop.last }}
            {%- endfor %}
        from {{ ref('customer_day') }} as c
        cross join bounds as b
        where c.activity_date <= b.base_date and c.activity_date > {{ days_before('b.base_date', 365) }}
        group by c.customer_id
    ),

    base as (
        select
            coalesce(f.customer_id, s.customer_id) as customer_id,
            least(f.first_seen_date, s.first_activity) as first_seen_date,
            s.last_purchase_date,
            s.last_visit_date,
            {%- for name, _, _, _ in window_sums %}
                s.{{ name }}{{ ',' if not loop.last }}
            {%- endfor %}
        from first_seen as f
        full outer join scanned as s
            on f.customer_id = s.customer_id and f.first_seen_date <= (select base_date from bounds)
        where f.first_seen_date <= (select base_date from bounds) or s.customer_id is not null
    ),
{%- endif %}

customers as (
    select customer_id from base
    union
    select c.customer_id
    from {{ ref('customer_day') }} as c
    inner join days as d on c.activity_date = d.as_of_date
    union
    select customer_id from first_seen
    where first_seen_date <= (select last_day from bounds)
),

-- every customer on every window day, with the day's own row and the rows that left each window that day
daily as (
    select
        d.as_of_date,
        k.customer_id,
        case when a.customer_id is not null then d.as_of_date end as activity_day,
        case when a.n_orders > 0 then d.as_of_date end as purchase_day,
        case when a.n_sessions > 0 or a.n_orders > 0 then d.as_of_date end as visit_day,
        {%- for column in day_columns %}
            {{ summable('a.' ~ column, 'double' if column == 'rel_price_units' else '') }} as added_{{ column }},
        {%- endfor %}
        {%- for name, column, length, sql_type in window_sums %}
            {{ summable('left_' ~ length ~ '.' ~ column, sql_type) }} as left_{{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from days as d
    cross join customers as k
    left join {{ ref('customer_day') }} as a
        on k.customer_id = a.customer_id and d.as_of_date = a.activity_date
    {%- for length in lengths %}
        left join {{ ref('customer_day') }} as left_{{ length }}
            on k.customer_id = left_{{ length }}.customer_id
            and {{ days_before('d.as_of_date', length) }} = left_{{ length }}.activity_date
    {%- endfor %}
),

running as (
    select
        as_of_date,
        customer_id,
        min(activity_day) over days_so_far as first_activity,
        max(purchase_day) over days_so_far as last_purchase_in_window,
        max(visit_day) over days_so_far as last_visit_in_window,
        {%- for column in day_columns %}
            sum(added_{{ column }}) over days_so_far as added_{{ column }},
        {%- endfor %}
        {%- for name, _, _, _ in window_sums %}
            sum(left_{{ name }}) over days_so_far as left_{{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from daily
    window days_so_far as (
        partition by customer_id order by as_of_date rows between unbounded preceding and current row
    )
),

scalars as (
    select
        r.as_of_date,
        r.customer_id,
        least(
            b.first_seen_date, case when f.first_seen_date <= r.as_of_date then f.first_seen_date end, r.first_activity
        ) as first_seen_date,
        coalesce(
            r.last_purchase_in_window,
            case when b.last_purchase_date > {{ days_before('r.as_of_date', 365) }} then b.last_purchase_date end
        ) as last_purchase_date,
        coalesce(
            r.last_visit_in_window,
            case when b.last_visit_date > {{ days_before('r.as_of_date', 365) }} then b.last_visit_date end
        ) as last_visit_date,
        {%- for name, column, _, sql_type in window_sums %}
            cast(
                coalesce(b.{{ name }}, 0) + coalesce(r.added_{{ column }}, 0) - coalesce(r.left_{{ name }}, 0)
                as {{ sql_type }}
            ) as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from running as r
    left join base as b
        on r.customer_id = b.customer_id
    left join first_seen as f
        on r.customer_id = f.customer_id
    where
        b.customer_id is not null
        or r.first_activity is not null
        or f.first_seen_date <= r.as_of_date
),

profiles as (
    select
        as_of_date,
        customer_id,
        first_seen_date,
        {{ dbt.datediff('first_seen_date', 'as_of_date', 'day') }} as tenure_days,
        last_purchase_date,
        {{ dbt.datediff('last_purchase_date', 'as_of_date', 'day') }} as recency_days,
        last_visit_date,
        {{ dbt.datediff('last_visit_date', 'as_of_date', 'day') }} as days_since_visit,
        {%- for name, _, _, _ in window_sums %}
            {{ name }},
        {%- endfor %}
        case when units_365d > 0 then discounted_units_365d / units_365d end as discount_share_365d,
        case
            when rel_price_known_units_365d > 0 then rel_price_units_365d / rel_price_known_units_365d
        end as relative_price_365d
    from scalars
),

scored as (
    select
        *,
        cast(case when orders_365d > 0 then ceil(5 * cume_dist() over (
            partition by as_of_date, orders_365d > 0 order by recency_days desc
        )) end as integer) as r_score,
        cast(case when orders_365d > 0 then ceil(5 * cume_dist() over (
            partition by as_of_date, orders_365d > 0 order by orders_365d
        )) end as integer) as f_score,
        cast(case when orders_365d > 0 then ceil(5 * cume_dist() over (
            partition by as_of_date, orders_365d > 0 order by spend_365d
        )) end as integer) as m_score
    from profiles
)

select
    *,
    concat(
        coalesce(cast(r_score as {{ dbt.type_string() }}), ''),
        coalesce(cast(f_score as {{ dbt.type_string() }}), ''),
        coalesce(cast(m_score as {{ dbt.type_string() }}), '')
    ) as rfm_cell,
    case
        when tenure_days < 30 then 'new'
        when recency_days <= 29 and orders_90d >= 3 then 'loyal'
        when recency_days <= 29 or days_since_visit <= 6 then 'active'
        when recency_days between 30 and 89 then 'at_risk'
        when last_purchase_date is null and days_since_visit <= 29 then 'at_risk'
        else 'churned'
    end as lifecycle_stage
from scored
