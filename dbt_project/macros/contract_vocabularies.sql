{#
  Generated from the landing contract (ml/sources/schema.py) by
      python -m ml.sources.dbt_macros > dbt_project/macros/contract_vocabularies.sql
  Do not edit: change the contract and regenerate (tests/test_contracts.py fails while they differ).
#}

{# A closed vocabulary of the contract by name (ml.sources.schema.VOCABULARIES), as a list of strings. #}
{% macro contract_vocabulary(name) -%}
    {%- set vocabularies = {
        'event_types':           ['view', 'cart', 'purchase'],
        'channels':              ['app', 'web', 'email', 'paid_search', 'social', 'online'],
        'promo_channels':        ['app', 'web', 'email', 'paid_search', 'social', 'online', 'all'],
        'placements':            ['home', 'search', 'category', 'recommendation', 'promo_banner', 'cart', 'for_you', 'message', 'category_page'],
        'experiment_arms':       ['treatment', 'control'],
        'lost_sale_reasons':     ['out_of_stock', 'sold_out'],
        'devices':               ['app', 'web_mobile', 'desktop'],
        'order_statuses':        ['placed', 'cancelled'],
        'line_types':            ['sale', 'return', 'adjustment'],
        'price_bands':           ['low', 'mid', 'high'],
        'preference_dimensions': ['category', 'brand', 'price_band', 'channel', 'placement', 'hour'],
        'lifecycle_stages':      ['new', 'loyal', 'active', 'at_risk', 'churned'],
        'message_event_types':   ['delivered', 'opened', 'clicked', 'unsubscribed'],
        'message_channels':      ['email', 'push'],
    } -%}
    {%- if name not in vocabularies -%}
        {{ exceptions.raise_compiler_error(
            "unknown contract vocabulary '" ~ name ~ "'; known: " ~ (vocabularies | list | sort | join(', '))
        ) }}
    {%- endif -%}
    {{ return(vocabularies[name]) }}
{%- endmacro %}

{# A numeric limit of the contract by name (ml.sources.schema.LIMITS). #}
{% macro contract_limit(name) -%}
    {%- set limits = {
        'late_row_tolerance_days': 3,
        'max_abs_quantity':        100000,
        'max_lead_time_days':      365,
        'order_total_tolerance':   0.011,
    } -%}
    {%- if name not in limits -%}
        {{ exceptions.raise_compiler_error(
            "unknown contract limit '" ~ name ~ "'; known: " ~ (limits | list | sort | join(', '))
        ) }}
    {%- endif -%}
    {{ return(limits[name]) }}
{%- endmacro %}
