{#
  Activity per place cell: channel x placement x region x day, and the hour when `hourly`. Views and add-to-carts
  count where they happened (in `events`, a relation with the clickstream's columns); sale lines, orders and GMV
  where intermediate.int_sale_attribution credits them. The one definition behind marts.fct_channel_daily (daily,
  with sessions) and features.place_day (hourly, over views and carts only).
#}
{% macro place_activity(events, hourly=false) -%}
    {%- set cell = ['activity_date', 'channel', 'placement', 'region'] + (['hour_of_day'] if hourly else []) -%}
    with clicks as (
        select
            event_date as activity_date,
            coalesce(channel, 'unknown') as channel,
            coalesce(placement, 'unknown') as placement,
            coalesce(region, 'unknown') as region,
            {%- if hourly %}
                {{ hour_of('event_ts') }} as hour_of_day,
            {%- endif %}
            count(distinct session_id) as sessions,
            sum(case when event_type = 'view' then 1 else 0 end) as views,
            sum(case when event_type = 'cart' then 1 else 0 end) as carts,
            0 as purchases,
            cast(null as {{ dbt.type_string() }}) as order_id,
            cast(0 as decimal(18, 2)) as gmv
        from {{ events }}
        where
            {{ in_window('event_date') }}
            {%- if hourly %}
                and event_type in ('view', 'cart')
            {%- endif %}
        group by
            event_date,
            coalesce(channel, 'unknown'),
            coalesce(placement, 'unknown'),
            coalesce(region, 'unknown')
            {%- if hourly -%}
                , {{ hour_of('event_ts') }}
            {%- endif %}
    ),

    sales as (
        select
            order_date as activity_date,
            channel,
            placement,
            region,
            {%- if hourly %}
                hour_of_day,
            {%- endif %}
            0 as sessions,
            0 as views,
            0 as carts,
            1 as purchases,
            order_id,
            net_amount as gmv
        from {{ ref('int_sale_attribution') }}
        where {{ in_window('order_date') }}
    ),

    unioned as (
        select * from clicks
        union all
        select * from sales
    )

    select
        {{ cell | join(', ') }},
        sum(sessions) as sessions,
        sum(views) as views,
        sum(carts) as carts,
        sum(purchases) as purchases,
        count(distinct order_id) as orders,
        sum(gmv) as gmv
    from unioned
    group by {{ cell | join(', ') }}
{%- endmacro %}
