{{ config(**date_partitioned('session_date')) }}

-- One row per session (its date is the date of its first event): funnel counts and where it came from.
with events as (
    select * from {{ ref('stg_events') }}
    where {{ in_window('event_date') }}
),

first_events as (
    select
        session_id,
        channel,
        placement,
        device,
        row_number() over (partition by session_id order by event_ts, event_id) as event_rank
    from events
)

select
    e.session_id,
    min(e.customer_id) as customer_id,
    min(e.event_date) as session_date,
    min(e.event_ts) as started_at,
    max(e.event_ts) as ended_at,
    min(f.channel) as channel,
    min(f.placement) as entry_placement,
    min(e.region) as region,
    min(f.device) as device,
    count(*) as n_events,
    sum(case when e.event_type = 'view' then 1 else 0 end) as n_views,
    sum(case when e.event_type = 'cart' then 1 else 0 end) as n_carts,
    sum(case when e.event_type = 'purchase' then 1 else 0 end) as n_purchases
from events as e
inner join first_events as f
    on e.session_id = f.session_id and f.event_rank = 1
group by e.session_id
