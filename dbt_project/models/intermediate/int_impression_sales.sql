{{ config(**date_partitioned('order_date')) }}

-- Sale lines credited to the served list that preceded them: the customer's latest impression of the same SKU
-- at most var('impression_attribution_hours') before the order (last touch; on a tie the better rank). An
-- impression of day D can earn a sale of day D+1: the next run's lookback rebuilds D's line up with it.
with lines as (
    select
        order_id,
        line_no,
        order_ts,
        order_date,
        customer_id,
        sku,
        qty,
        net_amount,
        margin
    from {{ ref('int_order_lines') }}
    where line_type = 'sale' and customer_id is not null and {{ in_window('order_date') }}
),

shown as (
    select
        impression_id,
        impression_ts,
        customer_id,
        sku,
        rank,
        list_id,
        model_version,
        arm
    from {{ ref('stg_impressions') }}
    {%- if is_incremental() %}
        where impression_date between {{ days_before(window_start(), 1) }} and {{ window_end() }}
    {%- endif %}
),

touches as (
    select
        l.order_id,
        l.line_no,
        s.impression_id,
        row_number() over (
            partition by l.order_id, l.line_no order by s.impression_ts desc, s.rank asc, s.impression_id asc
        ) as touch_rank
    from lines as l
    inner join shown as s
        on
            l.customer_id = s.customer_id
            and l.sku = s.sku
            and l.order_ts >= s.impression_ts
            and l.order_ts < {{ hours_after('s.impression_ts', var('impression_attribution_hours')) }}
)

select
    l.order_id,
    l.line_no,
    l.order_ts,
    l.order_date,
    l.customer_id,
    l.sku,
    l.qty,
    l.net_amount,
    l.margin,
    s.impression_id,
    s.impression_ts,
    s.rank,
    s.list_id,
    s.model_version,
    s.arm
from touches as t
inner join lines as l on t.order_id = l.order_id and t.line_no = l.line_no
inner join shown as s on t.impression_id = s.impression_id
where t.touch_rank = 1
