{#
  One row per natural key of a raw table: the rows of the run's window, ranked within each key, rank 1 kept.
  Staging is the only layer that deduplicates, and every staging model does it through this macro.

  key:     the natural key columns (see the landing contract, ml/sources/schema.py).
  prefer:  order expressions that decide before the landing order, e.g. the earliest first_seen_ts of a
           dimension, or the day's last snapshot of a stock position ('snapshot_ts desc').
  landing: which copy of equal rows wins by arrival: 'first' (the default: the earliest _landing_date, then the
           file name and the row in the file) or 'last' (the latest _landing_date; file and row as for 'first'),
           for snapshots where a re-sent file corrects an earlier one.

  A subquery with an alias and row_number() compile on DuckDB and Spark alike (no QUALIFY).
#}
{% macro deduplicated(relation, key, prefer=[], landing='first') -%}
    {%- if landing not in ('first', 'last') -%}
        {{ exceptions.raise_compiler_error("deduplicated: landing must be 'first' or 'last', got " ~ landing) }}
    {%- endif -%}
    {%- set arrival = ['_landing_date' ~ (' desc' if landing == 'last' else ''), '_source_file', '_file_row'] -%}
    select *
    from (
        select
            *,
            row_number() over (
                partition by {{ key | join(', ') }} order by {{ (prefer + arrival) | join(', ') }}
            ) as copy_rank
        from {{ relation }}
        where {{ in_window('_event_date') }}
    ) as ranked
    where copy_rank = 1
{%- endmacro %}
