{#
  The partition window: the first and last date a run rebuilds (already widened by the lookback for late rows, see
  ml/dbt.py). The platform hands it to dbt as the environment variables AIGC_DBT_MIN_DATE / AIGC_DBT_MAX_DATE; a
  bare `dbt build` reads the vars min_date / max_date instead (dbt_project.yml's defaults, or --vars).

  It is read only while a node is compiled for execution, never while dbt parses: a var or an environment variable
  read during parsing makes dbt re-parse (the whole project for a var) whenever the window moves, that is on
  every daily run. Read at execution time, dbt keeps its parsed project between runs (partial parsing).

  Incremental runs rebuild exactly the dates in the window; a full refresh (or a model's first build) takes all
  rows.
#}
{% macro window_date(name) -%}
    {%- if execute -%}
        {{ env_var('AIGC_DBT_' ~ (name | upper), var(name)) }}
    {%- else -%}
        {{ var(name) }}
    {%- endif -%}
{%- endmacro %}

{% macro window_start() -%}
    cast('{{ window_date("min_date") }}' as date)
{%- endmacro %}

{% macro window_end() -%}
    cast('{{ window_date("max_date") }}' as date)
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

{#
  Generic tests in the YAML files filter on the window with placeholders
  (`where: "event_date between __window_start__ and __window_end__"`): a `where` config is rendered when dbt parses,
  so it cannot read the window itself; this override of dbt's own macro swaps the placeholders for the window when
  the test is compiled.
#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- set where = where | replace('__window_start__', window_start()) | replace('__window_end__', window_end()) -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
