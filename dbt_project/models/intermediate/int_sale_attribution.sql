{{ config(**date_partitioned('order_date')) }}

-- Where each sale line is credited: the channel, placement, region and hour of the first add-to-cart of its SKU in
-- the order's session that day; a line without such a cart event (an order without a clickstream session, as in
-- the Online Retail replay) keeps its order's channel and region, placement 'unknown', and the hour it was ordered.
-- The one placement rule: place profiles (features.place_day) and fct_channel_daily both read it.
with first_carts as (
    select
        event_date,
        session_id,
        sku,
        channel,
        placement,
        region,
        event_hour
    from (
        select
            event_date,
            session_id,
            sku,
            channel,
            placement,
            region,
            {{ hour_of('event_ts') }} as event_hour,
            row_number() over (partition by event_date, session_id, sku order by event_ts, placement) as cart_rank
        from {{ ref('stg_events') }}
        where event_type = 'cart' and {{ in_window('event_date') }}
    ) as carts
    where cart_rank = 1
)

select
    l.order_id,
    l.line_no,
    l.order_date,
    l.sku,
    l.net_amount,
    coalesce(fc.channel, l.channel, 'unknown') as channel,
    coalesce(fc.placement, 'unknown') as placement,
    coalesce(fc.region, l.region, 'unknown') as region,
    coalesce(fc.event_hour, {{ hour_of('l.order_ts') }}) as hour_of_day
from {{ ref('int_order_lines') }} as l
left join first_carts as fc
    on l.order_date = fc.event_date and l.session_id = fc.session_id and l.sku = fc.sku
where l.line_type = 'sale' and {{ in_window('l.order_date') }}
