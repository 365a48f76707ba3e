{{ config(**date_partitioned('active_date')) }}

with ranked as (
    select
        *,
        row_number() over (
            partition by promo_id, _event_date order by _landing_date, _source_file, _file_row
        ) as copy_rank
    from {{ source('raw', 'promotions') }}
    where {{ in_window('_event_date') }}
)

select
    promo_id,
    _event_date as active_date,
    category,
    discount_pct,
    lower(trim(channel)) as channel
from ranked
where copy_rank = 1
