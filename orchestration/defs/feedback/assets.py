"""Feedback: what the shop answered to the served lists, measured per arm, with the uplift over the control arm.

The steps are ``ml.feedback.online``; the marts it reads (``fct_impressions``, ``fct_exposed_customers``,
``fct_lost_sales``) are dbt models in the same ``feedback`` group.
"""

import dagster as dg

from ml.feedback.online import (
    MATURITY_DAYS,
    ONLINE_METRICS,
    ONLINE_UPLIFT,
    online_metrics_day,
    online_summary,
)
from orchestration.asset_keys import EXPOSED_CUSTOMERS
from orchestration.defs.automation import DOWNSTREAM_AUTOMATION
from orchestration.measured import write_measured_days
from orchestration.partitions import DAILY_WAREHOUSE_WRITER
from orchestration.resources import WarehouseResource

FEEDBACK = {
    "group_name": "feedback",
    "owners": ["team:personalisation"],
    "automation_condition": DOWNSTREAM_AUTOMATION,
}


@dg.asset(
    key=dg.AssetKey(["feedback", "online_metrics"]),
    kinds={"duckdb", "python"},
    description=(
        f"Online metrics of the served lists, measured by run D on the exposures of D-{MATURITY_DAYS} (a sale is "
        "credited to an impression up to 24 hours later, so that day's credit is complete): click-through and "
        "add-to-cart per impression, conversion, and the credited and total revenue and margin per exposed "
        "customer-day, by model, placement and arm (`feedback.online_metrics`). Treatment minus control for every "
        "metric with a 95% bootstrap interval over customers (`feedback.online_uplift`), per placement: `for_you` "
        "(the recommender's lists against the popularity control) and `category_page` (`goods/category_rankings`' "
        "pages against the bestseller ordering, metrics prefixed `category_page_`); the uplifts and their bounds "
        "plot over partitions. Closed-loop store only; empty days are reported as such."
    ),
    deps=[EXPOSED_CUSTOMERS],
    **FEEDBACK,
    **DAILY_WAREHOUSE_WRITER,
)
def online_metrics(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    return write_measured_days(
        context,
        warehouse,
        online_metrics_day,
        (ONLINE_METRICS, ONLINE_UPLIFT),
        online_summary,
        "no exposures on the day before (open-loop store, or the first day)",
    )


feedback_assets = [online_metrics]
