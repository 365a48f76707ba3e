"""People: candidate recommenders trained daily, evaluated on the next day, a champion gate, and the lists.

The steps are ``ml.recommend.daily``; a bundle of fitted models per day lives in the artifact store. What a day
starts from is declared: ``candidate_models`` D warm-starts from its own partition D-1, ``model_evaluation`` E
scores ``candidate_models`` E-1, ``champion`` D keeps its own D-1 choice when no challenger clears the gate.
Old bundles are deleted by the ``recommender_bundle_retention`` job (``retention.py``), never by these assets.
"""

from datetime import timedelta

import dagster as dg

from ml.recommend.daily import (
    CHAMPIONS,
    LISTS,
    METRICS,
    RecommendSettings,
    champion_day,
    evaluate_day,
    evaluation_summary,
    recommend_day_parts,
    recommendations_summary,
    train_day,
    training_summary,
)
from ml.recommend.interactions import read_items
from ml.summary import summary
from ml.warehouse import replace_partition, replace_partition_in_parts
from orchestration.asset_keys import EXPOSED_CUSTOMERS
from orchestration.defs.automation import DOWNSTREAM_AUTOMATION, stateful_automation
from orchestration.metadata import summary_metadata
from orchestration.partitions import (
    DAILY_WAREHOUSE_WRITER,
    PREVIOUS_DAY,
    partition_days,
    state_of_previous_day,
)
from orchestration.resources import DataFilesResource, WarehouseResource

RECOMMEND = {
    "group_name": "recommend",
    "owners": ["team:personalisation"],
    "automation_condition": DOWNSTREAM_AUTOMATION,
}
CANDIDATES = dg.AssetKey(["recommend", "candidate_models"])
CHAMPION = dg.AssetKey(["recommend", "champion"])


class RecommendConfig(dg.Config, RecommendSettings):
    pass


@dg.asset(
    key=CANDIDATES,
    kinds={"torch", "scikit-learn", "python"},
    description=(
        "Candidate recommenders fitted on the last 90 days of views, carts and purchases up to D: popularity "
        "(time-decayed), region popularity, ItemKNN, EASE, first-order transition, SASRec (Transformer; retrained "
        "weekly, warm-started from D-1's bundle), content (TF-IDF+SVD text) and a hybrid (SASRec's order with every "
        "fifth place for the next never-touched product by its text). One "
        "bundle per day in the artifact store; its path, size and hash are in the metadata. SASRec also retrains "
        "off its weekday when the served lists' click-through drops more than 20% below its 7-day mean "
        "(`marts.fct_exposed_customers`); the reason is in the metadata."
    ),
    deps=[
        *(dg.AssetKey(["marts", m]) for m in ("fct_events", "fct_order_items", "dim_products")),
        EXPOSED_CUSTOMERS,
        state_of_previous_day(CANDIDATES),
    ],
    **{**RECOMMEND, "automation_condition": stateful_automation(CANDIDATES)},
    **DAILY_WAREHOUSE_WRITER,
)
def candidate_models(
    context: dg.AssetExecutionContext,
    config: RecommendConfig,
    warehouse: WarehouseResource,
    files: DataFilesResource,
) -> dg.MaterializeResult:
    days, built, summaries, store = partition_days(context), [], [], files.artifacts()
    with warehouse.connect() as con:
        items = read_items(con)
        for i, day in enumerate(days, 1):
            bundle = train_day(con, store, day, config, items)
            if bundle is None:
                context.log.info(f"[{i}/{len(days)}] {day}: no interactions yet")
                continue
            if bundle.manifest["warm_start_from"] is None:
                # the first day, a gap, or a bundle deleted by retention: say so, a re-run must not differ silently
                context.log.warning(
                    f"{day}: no bundle of {day - timedelta(days=1)}; SASRec trained from scratch"
                )
            built.append(day)
            summaries.append(training_summary(bundle, store))
            context.log.info(
                f"[{i}/{len(days)}] {day}: {len(bundle.names)} models "
                f"(SASRec {'retrained' if bundle.manifest['retrain_sasrec'] else 'carried over'}: "
                f"{bundle.manifest.get('retrain_reason', '')})"
            )
    return dg.MaterializeResult(metadata=summary_metadata(summaries, built, days))


@dg.asset(
    key=dg.AssetKey(["recommend", "model_evaluation"]),
    kinds={"python"},
    description=(
        "Every candidate trained on E-1 scored on the purchases of E (platform protocol): HR, NDCG and recall at "
        "10 and 20, catalogue coverage, and the cold-user and cold-item slices (`recommend.daily_metrics`). The "
        "NDCG@10 of each model plots over partitions."
    ),
    deps=[dg.AssetDep(CANDIDATES, partition_mapping=PREVIOUS_DAY), dg.AssetKey(["marts", "fct_order_items"])],
    **RECOMMEND,
    **DAILY_WAREHOUSE_WRITER,
)
def model_evaluation(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, files: DataFilesResource
) -> dg.MaterializeResult:
    days, built, summaries = partition_days(context), [], []
    with warehouse.connect() as con:
        for day in days:
            table = evaluate_day(con, files.artifacts(), day)
            if table.empty:
                context.log.info(
                    f"{day}: no models trained on {day - timedelta(days=1)}; nothing to evaluate"
                )
                continue
            replace_partition(con, METRICS, "eval_date", day, table)
            built.append(day)
            summaries.append(evaluation_summary(table))
    return dg.MaterializeResult(metadata=summary_metadata(summaries, built, days))


@dg.asset(
    key=CHAMPION,
    kinds={"python"},
    description=(
        "The model served from D: the best challenger whose NDCG@10 beats popularity by the margin over the last "
        "7 evaluated days, else D-1's champion, else popularity (`recommend.champion_history`, with the reason). "
        "Online too: a model whose exposed customers bought less than the control arm over the last 7 mature days "
        "(95% bootstrap interval of the difference below zero) is neither promoted nor kept (`blocked_online`). "
        "A champion clearly worse than popularity on the latest evaluated day (paired 95% interval over "
        "customers below zero) does not serve (`served` false): no lists for the day, the last published ones keep "
        "serving. Gated by the blocking check `champion_gate`."
    ),
    deps=[
        dg.AssetKey(["recommend", "model_evaluation"]),
        EXPOSED_CUSTOMERS,
        state_of_previous_day(CHAMPION),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "champion_gate",
            asset=CHAMPION,
            blocking=True,
            description="Fails, blocking the lists, when the champion is clearly worse than popularity on the "
            "latest evaluated day (paired 95% interval over customers below zero: the last published lists keep "
            "serving) on every day of the run, or when no model can be served; warns when no challenger beats "
            "popularity by the margin (a fallback is served) or when some days of a range were held back.",
        )
    ],
    **{**RECOMMEND, "automation_condition": stateful_automation(CHAMPION)},
    **DAILY_WAREHOUSE_WRITER,
)
def champion(
    context: dg.AssetExecutionContext,
    config: RecommendConfig,
    warehouse: WarehouseResource,
    files: DataFilesResource,
):
    days, choice, held_back = partition_days(context), {}, []
    with warehouse.connect() as con:
        for day in days:
            row, choice = champion_day(con, files.artifacts(), day, config)
            replace_partition(con, CHAMPIONS, "as_of_date", day, row)
            if not choice["served"]:
                held_back.append(day)
                context.log.warning(f"{day}: {choice['reason']}")
    chosen = {k: choice[k] for k in ("champion", "reason")}
    yield dg.MaterializeResult(
        metadata=summary_metadata(
            [
                summary(
                    1,
                    {**chosen, "blocked_online": ", ".join(sorted(choice.get("blocked", {})))},
                    json={"window_means": choice.get("means", {}), "online_verdicts": choice["online"]},
                )
            ],
            days[-1:],
        )
    )
    all_held_back = len(held_back) == len(days)
    yield dg.AssetCheckResult(
        check_name="champion_gate",
        passed=choice["servable"] and choice["beats_baseline"] and not held_back,
        severity=dg.AssetCheckSeverity.ERROR
        if not choice["servable"] or all_held_back
        else dg.AssetCheckSeverity.WARN,
        metadata={
            **chosen,
            "servable": choice["servable"],
            "served": choice["served"],
            "days_held_back": ", ".join(str(d) for d in held_back),
        },
    )


@dg.asset(
    key=dg.AssetKey(["recommend", "recommendations"]),
    kinds={"duckdb", "torch"},
    description=(
        "Top-K recommendations for D+1 for every customer active in the last 30 days, from the champion model: "
        "score, rank, model version and a readable reason citing a real item of the customer's history "
        "('bought together with X': X and the item were bought in the same orders, from "
        "`goods/basket_associations`; 'similar to X you viewed', 'new in a category you like', 'popular in your "
        "region'). Never an item the customer already bought. A fixed hashed control group (10% by default) is "
        "served the popularity list instead, so uplift is measured inside the same days; each row carries its "
        "`arm` and `list_id`. `outputs.recommendations`, exported as Parquet for the shop front and the API."
    ),
    deps=[CHAMPION, CANDIDATES, dg.AssetKey(["goods", "basket_associations"])],
    **RECOMMEND,
    **DAILY_WAREHOUSE_WRITER,
)
def recommendations(
    context: dg.AssetExecutionContext,
    config: RecommendConfig,
    warehouse: WarehouseResource,
    files: DataFilesResource,
) -> dg.MaterializeResult:
    days, built, summaries = partition_days(context), [], []
    with warehouse.connect() as con:
        items = read_items(con)
        for day in days:
            parts = recommend_day_parts(con, files.artifacts(), day, config, items)
            if not replace_partition_in_parts(con, LISTS, "as_of_date", day, log_parts(context, day, parts)):
                context.log.info(
                    f"{day}: no lists (no champion, the gate held it back, or no models); the last ones keep serving"
                )
                continue
            files.export_query(
                con,
                f"SELECT * EXCLUDE (as_of_date) FROM {LISTS} WHERE as_of_date = ? ORDER BY customer_id, rank",
                [day],
                "recommendations",
                day,
            )
            built.append(day)
            summaries.append(recommendations_summary(con, day))
            context.log.info(f"{day}: {summaries[-1]['metrics']['customers']} customers × {config.top_k}")
    return dg.MaterializeResult(metadata=summary_metadata(summaries, built, days))


def log_parts(context: dg.AssetExecutionContext, day, parts):
    """``parts`` as they come, with a progress line per part (a large store's day takes minutes)."""
    customers = 0
    for part in parts:
        customers += part["customer_id"].nunique()
        context.log.info(f"{day}: lists of {customers:,} customers built")
        yield part


recommend_assets = [candidate_models, model_evaluation, champion, recommendations]
