{{ config(**date_partitioned('active_date')) }}

with deduplicated as (
    {{ deduplicated(source('raw', 'promotions'), ['promo_id', '_event_date']) }}
)

select
    promo_id,
    _event_date as active_date,
    category,
    discount_pct,
    lower(trim(channel)) as channel
from deduplicated
