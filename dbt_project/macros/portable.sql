{# Small cross-database helpers, so the same models build on DuckDB and Spark. #}

{# A timezone-aware instant as a naive UTC timestamp. #}
{% macro to_utc(column) -%}
    {%- if target.type == 'spark' -%}
        to_utc_timestamp({{ column }}, 'UTC')
    {%- else -%}
        timezone('UTC', {{ column }})
    {%- endif -%}
{%- endmacro %}

{# Keyed pseudonym of a PII value: sha256 over a secret key and the normalised value. NULL stays NULL. #}
{% macro pii_hash(column) -%}
    {%- set key = env_var('AIGC_PII_KEY', 'local-development-key') -%}
    {%- if target.type == 'spark' -%}
        case when {{ column }} is not null then sha2(concat('{{ key }}', lower(trim({{ column }}))), 256) end
    {%- else -%}
        case when {{ column }} is not null then sha256(concat('{{ key }}', lower(trim({{ column }})))) end
    {%- endif -%}
{%- endmacro %}

{# Division that returns NULL instead of raising (Spark raises on division by zero in ANSI mode). #}
{% macro safe_divide(numerator, denominator) -%}
    case when {{ denominator }} = 0 then null else {{ numerator }} / {{ denominator }} end
{%- endmacro %}

{# A timestamp n hours later (n a literal number). #}
{% macro hours_after(timestamp, n) -%}
    {%- if target.type == 'spark' -%}
        {{ timestamp }} + make_interval(0, 0, 0, 0, {{ n }}, 0, 0)
    {%- else -%}
        {{ timestamp }} + interval '{{ n }} hours'
    {%- endif -%}
{%- endmacro %}

{# qty x unit price (x (1 - discount)) in cents, computed in DECIMAL and rounded half up: the same on every engine. #}
{% macro money(qty, unit_price, discount=none) -%}
    cast(round(
        cast({{ qty }} as decimal(18, 4)) * cast({{ unit_price }} as decimal(18, 4))
        {%- if discount is not none %} * (1 - cast({{ discount }} as decimal(18, 4))){% endif %}, 2
    ) as decimal(18, 2))
{%- endmacro %}
