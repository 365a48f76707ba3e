{#
  Generic test: the columns are unique together within the run's date window.
  (Named so it is clear we do not depend on the dbt_utils package, which would need a download.)
#}
{% test dbt_utils_free_unique_combination(model, columns, date_column) %}
select {{ columns | join(', ') }}, count(*) as n_copies
from {{ model }}
where {{ test_window(date_column) }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
