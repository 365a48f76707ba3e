{#
  On Spark, the raw source tables are the DuckDB raw layer published as Parquet folders (ml/spark.py writes
  $AIGC_SPARK_RAW_DIR/<table>/); each build registers them in Spark's catalog first (on-run-start) and refreshes
  their file listing, so a re-published window is read as it now is. A no-op on every other target.
#}
{% macro register_spark_raw_sources() %}
    {%- if execute and target.type == 'spark' -%}
        {%- set root = env_var('AIGC_SPARK_RAW_DIR') -%}
        {%- do run_query('create database if not exists raw') -%}
        {%- for node in graph.sources.values() if node.source_name == 'raw' -%}
            {%- do run_query(
                'create table if not exists raw.' ~ node.name ~ " using parquet location '" ~ root ~ '/'
                ~ node.name ~ "'"
            ) -%}
            {%- do run_query('refresh table raw.' ~ node.name) -%}
        {%- endfor -%}
    {%- endif -%}
{% endmacro %}
