"""People, goods and place: point-in-time profiles as daily assets (schema ``features``).

Each asset calls one builder of ``ml.profiles`` for every day of its partition window, in date order, and
attaches the builder's summary (row counts, metrics that plot over partitions, markdown distributions). The
builders read only data dated on or before the as-of day; windows come from the daily aggregates, so a day's
cost does not grow with history.

``features/daily_aggregates`` also re-aggregates the lookback days before the window: late rows that dbt folded
into those days' marts reach the windows of later profiles (the profiles already computed for those days keep
what was known then, which is what point-in-time means).
"""

from collections.abc import Callable
from datetime import date, timedelta

import dagster as dg

from ml.summary import summary
from orchestration.defs.automation import DOWNSTREAM_AUTOMATION
from orchestration.defs.transform.dbt_args import LOOKBACK_DAYS
from orchestration.metadata import summary_metadata
from orchestration.partitions import DAILY_WAREHOUSE_WRITER, daily_partitions, partition_days
from orchestration.resources import WarehouseResource

OWNERS = ["team:data-science"]
MARTS_READ = [
    "fct_events",
    "fct_orders",
    "fct_order_items",
    "dim_customers",
    "dim_products",
    "fct_inventory_daily",
]


def _first_source_day() -> date:
    return date.fromisoformat(daily_partitions.get_first_partition_key())


def profile_asset(
    key: list[str],
    group: str,
    description: str,
    build: Callable,
    deps: list[dg.AssetKey],
    kinds: set[str],
) -> dg.AssetsDefinition:
    @dg.asset(
        key=dg.AssetKey(key),
        group_name=group,
        owners=OWNERS,
        kinds=kinds,
        description=description,
        deps=deps,
        automation_condition=DOWNSTREAM_AUTOMATION,
        **DAILY_WAREHOUSE_WRITER,
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        days = partition_days(context)
        summaries: list[dict] = []
        with warehouse.connect() as con:
            for i, day in enumerate(days, 1):
                summaries.append(build(con, day))
                context.log.info(
                    f"[{i}/{len(days)}] {key[-1]} as of {day}: {summaries[-1].get('row_count', '?')} rows"
                )
        return dg.MaterializeResult(metadata=summary_metadata(summaries, days))

    return _asset


def _aggregate(con, day: date) -> dict:
    from ml.profiles import update_daily_aggregates

    first = max(_first_source_day(), day - timedelta(days=LOOKBACK_DAYS))
    result: dict = {}
    for d in (first + timedelta(days=i) for i in range((day - first).days + 1)):
        result = update_daily_aggregates(con, d)
    rows = result.get("rows", {})
    return summary(
        int(sum(rows.values())) if rows else 0,
        {f"rows_{table}": int(n) for table, n in rows.items()} | {"seconds": result.get("seconds")},
    )


def _lazy(name: str) -> Callable:
    def build(con, day):
        import ml.profiles as profiles

        return getattr(profiles, name)(con, day)

    return build


daily_aggregates = profile_asset(
    ["features", "daily_aggregates"],
    "features",
    "One row per customer-day, SKU-day, place-day and co-purchased pair-day (`features.*_day`): the daily "
    "aggregates every profile window sums, so no profile rescans history. Re-aggregates the lookback days too.",
    _aggregate,
    [dg.AssetKey(["marts", m]) for m in MARTS_READ],
    {"duckdb", "python"},
)
AGG = dg.AssetKey(["features", "daily_aggregates"])

user_profiles = profile_asset(
    ["people", "user_profiles"],
    "people",
    "Per customer as of the day (`features.user_profiles`): RFM over 30/90/365 days with scores, lifecycle stage, "
    "category and brand affinity, price sensitivity, channel/placement/hour preferences and a churn-risk score "
    "from a scikit-learn model trained on earlier days (its AUC on a later window is in the metadata). For "
    "marketing and the recommenders.",
    _lazy("user_profiles"),
    [AGG],
    {"duckdb", "scikit-learn"},
)
item_profiles = profile_asset(
    ["goods", "item_profiles"],
    "goods",
    "Per SKU as of the day (`features.item_profiles`): funnel counts and rates, sales velocity and trend, price "
    "band, return rate, days of cover, novelty, and a TF-IDF + SVD text embedding used for content similarity "
    "and cold start. For merchandisers and the recommenders.",
    _lazy("item_profiles"),
    [AGG],
    {"duckdb", "scikit-learn"},
)
place_profiles = profile_asset(
    ["place", "place_profiles"],
    "place",
    "Channel × placement × region × hour performance over 28 days (`features.place_profiles`): views, CTR, CVR, "
    "GMV and order value, smoothed with empirical Bayes so small cells do not look like winners. For channel "
    "and placement owners.",
    _lazy("place_profiles"),
    [AGG],
    {"duckdb", "python"},
)
basket_associations = profile_asset(
    ["goods", "basket_associations"],
    "goods",
    "Pairs of SKUs bought together over 90 days with support, confidence and lift "
    "(`features.basket_associations`): 'bought together' recommendations and their explanations.",
    _lazy("basket_associations"),
    [AGG],
    {"duckdb", "python"},
)
customer_segments = profile_asset(
    ["people", "customer_segments"],
    "people",
    "Customers clustered on their profile features (`features.customer_segments`, `features.segment_summary`), "
    "the number of clusters chosen by silhouette, each segment described from its centroid; sizes and movement "
    "between segments day over day in the metadata. For marketing.",
    _lazy("customer_segments"),
    [dg.AssetKey(["people", "user_profiles"])],
    {"duckdb", "scikit-learn"},
)

profile_assets = [
    daily_aggregates,
    user_profiles,
    item_profiles,
    place_profiles,
    basket_associations,
    customer_segments,
]
