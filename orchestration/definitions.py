"""The code location: the assets of every domain, the daily job, its schedule and the resources."""

import dagster as dg

from orchestration.defs.automation import landing_drop_sensor, raw_ingest, run_failure_alert_sensor
from orchestration.defs.features.assets import profile_assets
from orchestration.defs.feedback.assets import feedback_assets
from orchestration.defs.ingest.assets import landing_files, raw_tables
from orchestration.defs.marketing.assets import marketing_assets
from orchestration.defs.privacy.assets import privacy_assets
from orchestration.defs.quality.assets import (
    freshness_checks,
    freshness_sensor,
    gx_checks,
    landing_checks,
    quarantine_summary_asset,
    schema_change_checks,
    staging_checks,
    volume_checks,
)
from orchestration.defs.recommend.assets import recommend_assets
from orchestration.defs.recommend.retention import recommender_bundle_retention, retention_schedule
from orchestration.defs.schedules import daily_pipeline, daily_schedule
from orchestration.defs.search.assets import search_assets
from orchestration.defs.supply.assets import supply_assets
from orchestration.defs.transform.assets import dbt_daily_models, dbt_feature_models
from orchestration.resources import build_resources

defs = dg.Definitions(
    # Each asset's page links to the Python file and line that defines it (dbt models to their .sql file).
    assets=dg.with_source_code_references(
        [
            landing_files,
            raw_tables,
            dbt_daily_models,
            dbt_feature_models,
            quarantine_summary_asset,
            *profile_assets,
            *search_assets,
            *supply_assets,
            *recommend_assets,
            *feedback_assets,
            *marketing_assets,
            *privacy_assets,
        ]
    ),
    asset_checks=[
        *landing_checks,
        *staging_checks,
        *gx_checks,
        *volume_checks,
        *schema_change_checks,
        *freshness_checks,
    ],
    sensors=[freshness_sensor, landing_drop_sensor, run_failure_alert_sensor],
    jobs=[daily_pipeline, raw_ingest, recommender_bundle_retention],
    schedules=[daily_schedule, retention_schedule],
    resources=build_resources(),
    # One process per run: on a 2-core machine, a subprocess per step costs more than it saves, and steps
    # that write the warehouse must run one at a time anyway.
    executor=dg.in_process_executor,
)
