{#
  The incremental strategy, chosen per target in one place.

  date_partitioned(col): the model is rebuilt one date at a time. On DuckDB, delete+insert on the date column
  replaces every date present in the new batch (idempotent re-runs, no duplicates). On Spark, insert_overwrite
  of the date partitions does the same without needing Delta/Iceberg for MERGE.

  keyed(col): slowly growing dimensions, upserted on their natural key. On Spark without Delta or Iceberg (their
  jars would be downloaded at run time) there is no MERGE and a table cannot be overwritten from itself, so a keyed
  model is rebuilt whole from every row of its inputs (is_incremental() is false: the window filters are off);
  dimensions are small next to the facts.
#}
{% macro date_partitioned(date_column) %}
    {% if target.type == 'spark' %}
        {{ return({'materialized': 'incremental', 'incremental_strategy': 'insert_overwrite',
                   'partition_by': [date_column], 'file_format': 'parquet'}) }}
    {% else %}
        {{ return({'materialized': 'incremental', 'incremental_strategy': 'delete+insert',
                   'unique_key': date_column}) }}
    {% endif %}
{% endmacro %}

{% macro keyed(key_column) %}
    {% if target.type == 'spark' %}
        {{ return({'materialized': 'table', 'file_format': 'parquet'}) }}
    {% else %}
        {{ return({'materialized': 'incremental', 'incremental_strategy': 'delete+insert',
                   'unique_key': key_column}) }}
    {% endif %}
{% endmacro %}
