"""The dbt project handle, in its own module so ``dagster-dbt project prepare-and-package`` can find it.

The manifest must exist before the Dagster code is imported: ``make setup`` runs ``dbt parse`` for it.
"""

from dagster_dbt import DbtProject

from ml.settings import DBT_PROJECT_DIR

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
