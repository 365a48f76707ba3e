{#
  Generic test: the column takes only the values of one of the landing contract's closed vocabularies.
  `vocabulary` names it (event_types, channels, placements, devices, order_statuses, line_types, ...: the keys of
  ml.sources.schema.VOCABULARIES, generated into contract_vocabularies.sql). The rows are those of dbt's
  accepted_values (one per unexpected value, with its count); nulls pass, as there.
#}
{% test accepted_contract_values(model, column_name, vocabulary) %}
    {{ adapter.dispatch('test_accepted_values', 'dbt')(model, column_name, contract_vocabulary(vocabulary)) }}
{% endtest %}
