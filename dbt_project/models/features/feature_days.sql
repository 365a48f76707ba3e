{{ config(**date_partitioned('activity_date')) }}

-- One row per day the feature layer has built: a day without any activity is still a built day, so a profile can
-- tell "nothing happened" from "not built yet". Nothing before the first day the marts hold (a run's lookback can
-- reach before it); a first build or a full refresh starts there.
{%- set first_day -%}
    least((select min(event_date) from {{ ref('fct_events') }}), (select min(order_date) from {{ ref('fct_orders') }}))
{%- endset %}

-- The weekday (1 = Monday) is there for the profiles and because Spark cannot partition a table by its only column.
select
    activity_date,
    {{ iso_weekday('activity_date') }} as iso_weekday
from (
    {% if is_incremental() %}
        {{ date_spine("greatest(" ~ window_start() ~ ", " ~ first_day ~ ")", window_end()) }}
    {% else %}
        {{ date_spine(first_day, window_end()) }}
    {% endif %}
) as spine
