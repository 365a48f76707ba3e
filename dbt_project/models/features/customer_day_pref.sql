{{ config(**date_partitioned('activity_date')) }}

-- Interest weights per customer, day, dimension and key: category, brand and price band of the items viewed
-- (weight view_weight), carted (cart_weight) and bought (purchase_weight); sessions and orders per channel; views
-- per placement; events and orders per hour of day. The decayed preference state of the user profiles sums these.
{%- set w = var('interest_weights') %}

with events as (
    {{ window_events() }}
),

sale_lines as (
    select * from ({{ window_lines() }}) as lines
    where line_type = 'sale' and customer_id is not null
),

known_events as (
    select * from events
    where customer_id is not null
),

products as (
    select
        activity_date,
        sku,
        category,
        brand,
        price_band
    from {{ ref('product_day') }}
    where {{ in_window('activity_date') }}
),

item_signal as (
    select
        activity_date,
        customer_id,
        sku,
        case event_type when 'view' then {{ w['view'] }} else {{ w['cart'] }} end as weight
    from known_events
    where event_type in ('view', 'cart')
    union all
    select
        activity_date,
        customer_id,
        sku,
        {{ w['purchase'] }} as weight
    from sale_lines
),

item_prefs as (
    select
        s.activity_date,
        s.customer_id,
        p.category,
        p.brand,
        p.price_band,
        s.weight
    from item_signal as s
    inner join products as p
        on s.activity_date = p.activity_date and s.sku = p.sku
),

prefs as (
    {%- for dimension in ['category', 'brand', 'price_band'] %}
        select
            activity_date,
            customer_id,
            '{{ dimension }}' as dimension,
            {{ dimension }} as key,
            weight
        from item_prefs
        where {{ dimension }} is not null
        union all
    {%- endfor %}
    select
        activity_date,
        customer_id,
        'placement' as dimension,
        placement as key,
        count(*) as weight
    from known_events
    where event_type = 'view' and placement is not null
    group by activity_date, customer_id, placement
    union all
    -- channel: sessions per channel, and orders per channel (the only signal without a clickstream)
    select
        activity_date,
        customer_id,
        'channel' as dimension,
        channel as key,
        count(distinct session_id) as weight
    from known_events
    where channel is not null
    group by activity_date, customer_id, channel
    union all
    select
        activity_date,
        customer_id,
        'channel' as dimension,
        channel as key,
        count(distinct order_id) as weight
    from sale_lines
    where channel is not null
    group by activity_date, customer_id, channel
    union all
    select
        activity_date,
        customer_id,
        'hour' as dimension,
        cast(event_hour as {{ dbt.type_string() }}) as key,
        count(*) as weight
    from known_events
    group by activity_date, customer_id, event_hour
    union all
    select
        activity_date,
        customer_id,
        'hour' as dimension,
        cast({{ hour_of('order_ts') }} as {{ dbt.type_string() }}) as key,
        count(distinct order_id) as weight
    from sale_lines
    group by activity_date, customer_id, {{ hour_of('order_ts') }}
)

select
    activity_date,
    customer_id,
    dimension,
    key,
    cast(sum(weight) as double) as weight
from prefs
group by activity_date, customer_id, dimension, key
