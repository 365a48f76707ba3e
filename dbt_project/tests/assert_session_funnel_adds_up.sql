-- A session's events are its views, carts and purchases, and it ends no earlier than it starts.
select
    session_id,
    session_date,
    n_events,
    n_views,
    n_carts,
    n_purchases
from {{ ref('fct_sessions') }}
where
    {{ test_window('session_date') }}
    and (n_events != n_views + n_carts + n_purchases or ended_at < started_at)
