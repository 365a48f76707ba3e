{{ config(**date_partitioned('as_of_date')) }}
{{ config(meta={'dagster': {'asset_key': ['goods', 'basket_associations'], 'group': 'goods'}}) }}

-- SKU pairs bought in the same order over the basket_window_days days ending on D, one row per directed pair
-- antecedent -> consequent: support = n(a and b) / N, confidence = n(a and b) / n(a), lift = confidence / (n(b) / N),
-- over the orders with at most max_basket_skus distinct SKUs (N of them in the window). Only pairs seen together in
-- at least min_pair_orders orders (rarer pairs give huge, meaningless lifts) and the max_consequents consequents of
-- highest lift per antecedent are kept.
--
-- A pair's count over the window changes only on the days it was bought together and basket_window_days later, so
-- the counts are computed per interval between such days and spread over the window's days afterwards: the cost
-- follows the pairs bought, not pairs x days.
{%- set window = var('basket_window_days') %}

with days as (
    select activity_date as as_of_date from ({{ feature_days() }}) as window_days
),

bounds as (
    select
        min(as_of_date) as first_day,
        max(as_of_date) as last_day
    from days
),

counted as (
    select p.*
    from {{ ref('basket_pair_day') }} as p
    cross join bounds as b
    where p.activity_date > {{ days_before('b.first_day', window) }} and p.activity_date <= b.last_day
),

changes as (
    select
        sku_a,
        sku_b,
        change_date,
        sum(delta) as delta
    from (
        select
            sku_a,
            sku_b,
            activity_date as change_date,
            n_orders as delta
        from counted
        union all
        -- a day's orders leave the window basket_window_days later
        select
            c.sku_a,
            c.sku_b,
            {{ days_before('c.activity_date', -window) }} as change_date,
            -c.n_orders as delta
        from counted as c
        cross join bounds as b
        where {{ days_before('c.activity_date', -window) }} <= b.last_day
    ) as deltas
    group by sku_a, sku_b, change_date
),

intervals as (
    select
        sku_a,
        sku_b,
        change_date as valid_from,
        lead(change_date) over (partition by sku_a, sku_b order by change_date) as valid_until,
        sum(delta) over (
            partition by sku_a, sku_b order by change_date rows between unbounded preceding and current row
        ) as n
    from changes
),

counts as (
    select
        d.as_of_date,
        i.sku_a,
        i.sku_b,
        i.n
    from intervals as i
    inner join days as d
        on i.valid_from <= d.as_of_date and (i.valid_until is null or i.valid_until > d.as_of_date)
    where i.n >= case when i.sku_a = i.sku_b then 1 else {{ var('min_pair_orders') }} end
),

orders_in_window as (
    select
        d.as_of_date,
        coalesce(sum(b.n_orders_in_pairs), 0) as n_orders
    from days as d
    left join {{ ref('basket_day') }} as b
        on d.as_of_date >= b.activity_date and b.activity_date > {{ days_before('d.as_of_date', window) }}
    group by d.as_of_date
),

single as (
    select
        as_of_date,
        sku_a as sku,
        n
    from counts
    where sku_a = sku_b
),

directed as (
    select
        as_of_date,
        sku_a as antecedent,
        sku_b as consequent,
        n
    from counts
    where sku_a < sku_b
    union all
    select
        as_of_date,
        sku_b as antecedent,
        sku_a as consequent,
        n
    from counts
    where sku_a < sku_b
),

scored as (
    select
        d.as_of_date,
        d.antecedent,
        d.consequent,
        cast(d.n as bigint) as n_orders_both,
        cast(sa.n as bigint) as n_orders_antecedent,
        cast(sc.n as bigint) as n_orders_consequent,
        d.n / greatest(o.n_orders, 1) as support,
        d.n / sa.n as confidence,
        (d.n / sa.n) / (sc.n / greatest(o.n_orders, 1)) as lift,
        cast(o.n_orders as bigint) as n_orders_window
    from directed as d
    inner join single as sa
        on d.as_of_date = sa.as_of_date and d.antecedent = sa.sku
    inner join single as sc
        on d.as_of_date = sc.as_of_date and d.consequent = sc.sku
    inner join orders_in_window as o
        on d.as_of_date = o.as_of_date
)

select
    as_of_date,
    antecedent,
    consequent,
    n_orders_both,
    n_orders_antecedent,
    n_orders_consequent,
    support,
    confidence,
    lift,
    n_orders_window
from (
    select
        *,
        row_number() over (partition by as_of_date, antecedent order by lift desc, consequent asc) as consequent_rank
    from scored
) as ranked
where consequent_rank <= {{ var('max_consequents') }}
