{{ config(**date_partitioned('activity_date')) }}

-- One row per day the feature layer has built: a day without any activity is still a built day, so a profile can
-- tell "nothing happened" from "not built yet". A first build or a full refresh starts on the first day the marts
-- hold.
{%- set first_day -%}
    least((select min(event_date) from {{ ref('fct_events') }}), (select min(order_date) from {{ ref('fct_orders') }}))
{%- endset %}

{% if is_incremental() %}
    {{ date_spine(window_start(), window_end()) }}
{% else %}
    {{ date_spine(first_day, window_end()) }}
{% endif %}
