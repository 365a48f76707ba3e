{#
  The partition window that Dagster passes as vars min_date/max_date (already widened by the lookback for late
  rows, see ml/dbt.py). Incremental runs rebuild exactly the dates in the window;
  a full refresh (or a model's first build) takes all rows.
#}
{% macro window_start() -%}
    cast('{{ var("min_date") }}' as date)
{%- endmacro %}

{% macro window_end() -%}
    cast('{{ var("max_date") }}' as date)
{%- endmacro %}

{% macro in_window(date_column) -%}
    {%- if is_incremental() -%}
        {{ date_column }} between {{ window_start() }} and {{ window_end() }}
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}

{# The same window for singular and custom generic tests: only the dates the run just built are tested. #}
{% macro test_window(date_column) -%}
    {{ date_column }} between {{ window_start() }} and {{ window_end() }}
{%- endmacro %}
