{#
  Helpers of the feature layer (models/features). Each model builds the days of the run's window (every day of
  features.feature_days on a first build or a full refresh); the macros below expand to queries in the calling
  model's context, so is_incremental() and the window are the caller's.
#}

{# The days from start to end inclusive, one row each, as column activity_date. #}
{% macro date_spine(start, end) -%}
    {%- if target.type == 'spark' -%}
        select explode(sequence({{ start }}, {{ end }}, interval 1 day)) as activity_date
    {%- else -%}
        select cast(spine_day as date) as activity_date
        from (
            select unnest(generate_series(cast({{ start }} as timestamp), cast({{ end }} as timestamp), interval 1 day))
                as spine_day
        ) as spine
    {%- endif -%}
{%- endmacro %}

{# The median of an expression (an aggregate, or a window function with over()). #}
{% macro median_of(expression) -%}
    {%- if target.type == 'spark' -%}percentile({{ expression }}, 0.5){%- else -%}median({{ expression }}){%- endif -%}
{%- endmacro %}

{# The ISO weekday of a date: 1 = Monday .. 7 = Sunday. #}
{% macro iso_weekday(date_expression) -%}
    {%- if target.type == 'spark' -%}(weekday({{ date_expression }}) + 1){%- else -%}isodow({{ date_expression }}){%- endif -%}
{%- endmacro %}

{# The hour (0-23) of a UTC timestamp. #}
{% macro hour_of(timestamp) -%}
    cast(extract(hour from {{ timestamp }}) as integer)
{%- endmacro %}

{# The days this model builds: the window's days of features.feature_days. #}
{% macro feature_days() -%}
    select activity_date from {{ ref('feature_days') }} where {{ in_window('activity_date') }}
{%- endmacro %}

{# Clickstream events of the window's days, with the hour of each event. #}
{% macro window_events() -%}
    select
        customer_id,
        session_id,
        sku,
        event_type,
        channel,
        placement,
        region,
        event_ts,
        event_date as activity_date,
        {{ hour_of('event_ts') }} as event_hour
    from {{ ref('fct_events') }}
    where {{ in_window('event_date') }}
{%- endmacro %}

{#
  Order lines of the window's days with their order's session and cancellation (the order of the same day), as
  the feature models read them.
#}
{% macro window_lines() -%}
    select
        l.order_id,
        l.customer_id,
        l.sku,
        l.qty,
        l.unit_price,
        l.discount,
        cast(l.net_amount as decimal(18, 2)) as net_amount,
        l.line_type,
        l.channel,
        l.region,
        l.order_ts,
        l.order_date as activity_date,
        o.session_id,
        coalesce(o.is_cancelled, false) as is_cancelled
    from {{ ref('fct_order_items') }} as l
    left join (
        select order_id, order_date, session_id, is_cancelled from {{ ref('fct_orders') }}
        where {{ in_window('order_date') }}
    ) as o
        on l.order_id = o.order_id and l.order_date = o.order_date
    where {{ in_window('l.order_date') }}
{%- endmacro %}

{# A date n days before a date expression. #}
{% macro days_before(date_expression, n) -%}
    {%- if target.type == 'spark' -%}
        date_sub({{ date_expression }}, {{ n }})
    {%- else -%}
        cast({{ date_expression }} - interval ({{ n }}) day as date)
    {%- endif -%}
{%- endmacro %}

{#
  A term of a sum that must not depend on the order it is added in: a double (a fraction) is summed in a fixed
  decimal precision, since parallel threads add doubles in an order that changes from run to run and so does their
  last digit. Other types are exact already.
#}
{% macro summable(expression, sql_type) -%}
    {%- if sql_type == 'double' -%}cast({{ expression }} as decimal(38, 12)){%- else -%}{{ expression }}{%- endif -%}
{%- endmacro %}
