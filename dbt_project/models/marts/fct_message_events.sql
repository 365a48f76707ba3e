{{ config(**date_partitioned('send_date')) }}

-- One row per message the shop delivered: whether it was opened, clicked (the SKU and the session the click
-- opened) or led to an unsubscribe, and the sales of the session the click opened (credited to the message).
with events as (
    select *
    from {{ ref('stg_message_events') }}
    where {{ in_window('event_date') }}
),

per_message as (
    select
        message_id,
        any_value(customer_id) as customer_id,
        any_value(channel) as channel,
        min(event_date) filter (where event_type = 'delivered') as send_date,
        min(event_ts) filter (where event_type = 'delivered') as delivered_ts,
        min(event_ts) filter (where event_type = 'opened') as opened_ts,
        min(event_ts) filter (where event_type = 'clicked') as clicked_ts,
        bool_or(event_type = 'opened') as opened,
        bool_or(event_type = 'clicked') as clicked,
        bool_or(event_type = 'unsubscribed') as unsubscribed,
        any_value(sku) filter (where event_type = 'clicked') as clicked_sku,
        any_value(session_id) filter (where event_type = 'clicked') as click_session_id
    from events
    group by message_id
),

session_sales as (
    select
        session_id,
        count(distinct order_id) as orders,
        sum(qty) as units,
        sum(net_amount) as revenue,
        sum(margin) as margin
    from {{ ref('int_order_lines') }}
    where line_type = 'sale' and {{ in_window('order_date') }}
    group by session_id
)

select
    m.message_id,
    m.customer_id,
    m.channel,
    m.send_date,
    m.delivered_ts,
    m.opened_ts,
    m.clicked_ts,
    m.opened,
    m.clicked,
    m.unsubscribed,
    m.clicked_sku,
    m.click_session_id,
    coalesce(s.orders, 0) as credited_orders,
    coalesce(s.units, 0) as credited_units,
    coalesce(s.revenue, 0) as credited_revenue,
    coalesce(s.margin, 0) as credited_margin
from per_message as m
left join session_sales as s on m.click_session_id = s.session_id
where m.send_date is not null
