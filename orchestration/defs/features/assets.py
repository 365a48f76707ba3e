"""People, goods and place: point-in-time profiles as daily assets (schema ``features``).

The windows they are made of are dbt's feature layer (``dbt_feature_models``), so the lineage runs from the
landing files to every profile. Each asset calls one builder of ``ml.profiles`` for every day of its partition
window, in date order, and attaches the builder's summary (row counts, metrics that plot over partitions,
markdown distributions). The builders read only rows dated on or before the as-of day.

dbt rebuilds the lookback days of the feature layer too, so late rows reach the windows of later profiles; the
profiles already computed for those days keep what was known then, which is what point-in-time means.
"""

import dagster as dg

from orchestration.defs.automation import DOWNSTREAM_AUTOMATION, stateful_automation
from orchestration.metadata import summary_metadata
from orchestration.partitions import DAILY_WAREHOUSE_WRITER, partition_days, state_of_previous_day
from orchestration.resources import WarehouseResource

OWNERS = ["team:data-science"]


def _feature(model: str) -> dg.AssetKey:
    return dg.AssetKey(["features", model])


def profile_asset(
    key: list[str], description: str, builder: str, deps: list, kinds: set[str], stateful: bool = False
) -> dg.AssetsDefinition:
    """A daily profile asset that runs ``ml.profiles.<builder>(con, day)`` for each day of its window;
    ``stateful``: day D starts from the asset's own day D-1 (declared as a dependency)."""
    automation = DOWNSTREAM_AUTOMATION
    if stateful:
        deps = [*deps, state_of_previous_day(dg.AssetKey(key))]
        automation = stateful_automation(dg.AssetKey(key))

    @dg.asset(
        key=dg.AssetKey(key),
        group_name=key[0],
        owners=OWNERS,
        kinds=kinds,
        description=description,
        deps=deps,
        automation_condition=automation,
        **DAILY_WAREHOUSE_WRITER,
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        import ml.profiles  # scikit-learn and scipy come with it: not at definitions load

        build = getattr(ml.profiles, builder)
        days = partition_days(context)
        summaries: list[dict] = []
        with warehouse.connect() as con:
            for i, day in enumerate(days, 1):
                summaries.append(build(con, day))
                context.log.info(
                    f"[{i}/{len(days)}] {key[-1]} as of {day}: {summaries[-1]['row_count']} rows"
                )
        return dg.MaterializeResult(metadata=summary_metadata(summaries, days))

    return _asset


user_profiles = profile_asset(
    ["people", "user_profiles"],
    "Per customer as of the day (`features.user_profiles`): RFM over 30/90/365 days with scores, lifecycle stage "
    "(dbt's customer windows), category and brand affinity, price sensitivity, channel/placement/hour preferences "
    "from a decayed interest state, and a churn-risk score from a scikit-learn model trained on earlier days (its "
    "AUC on a later window is in the metadata). For marketing and the recommenders.",
    "user_profiles",
    [_feature("customer_windows"), _feature("customer_day_pref")],
    {"duckdb", "scikit-learn"},
    stateful=True,  # the decayed preference state
)
item_profiles = profile_asset(
    ["goods", "item_profiles"],
    "Per SKU as of the day (`features.item_profiles`): funnel counts and rates, sales velocity and trend, price "
    "band, return rate, days of cover, novelty (dbt's item windows), and a TF-IDF + SVD text embedding used for "
    "content similarity and cold start. For merchandisers and the recommenders.",
    "item_profiles",
    [_feature("item_windows"), dg.AssetKey(["marts", "dim_products"])],
    {"duckdb", "scikit-learn"},
)
place_profiles = profile_asset(
    ["place", "place_profiles"],
    "Channel × placement × region × hour performance over 28 days (`features.place_profiles`): views, CTR, CVR, "
    "GMV and order value, smoothed with empirical Bayes so small cells do not look like winners. For channel "
    "and placement owners.",
    "place_profiles",
    [_feature("place_windows")],
    {"duckdb", "python"},
)
customer_segments = profile_asset(
    ["people", "customer_segments"],
    "Customers clustered on their profile features (`features.customer_segments`, `features.segment_summary`), "
    "the number of clusters chosen by silhouette, each segment described from its centroid; sizes and movement "
    "between segments day over day in the metadata. For marketing.",
    "customer_segments",
    [dg.AssetKey(["people", "user_profiles"])],
    {"duckdb", "scikit-learn"},
    stateful=True,  # yesterday's number of segments and segment ids
)

profile_assets = [user_profiles, item_profiles, place_profiles, customer_segments]
