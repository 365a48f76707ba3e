"""People: candidate recommenders trained daily, evaluated on the next day, a champion gate, and the lists.

* ``recommend/candidate_models`` (D): every candidate fitted on events up to the end of D, saved as a versioned
  bundle under ``$DATA_DIR/artifacts/recommend/candidates-D`` (data window, params, versions, train seconds in
  its manifest). The cheap models refit daily; SASRec retrains on Mondays (and whenever there is no earlier
  bundle), warm-started from the previous week's weights, and is carried over unchanged in between: its
  quality moves slowly while a retrain costs minutes at medium scale.
* ``recommend/model_evaluation`` (E): the bundle of E-1 scored on the purchases of E (HR/NDCG/recall@10/20,
  coverage, cold-user and cold-item slices), into ``recommend.daily_metrics``; NDCG@10 per model plots over
  partitions.
* ``recommend/champion`` (D): the model to serve from the last evaluated days, with the blocking check
  ``champion_gate``: it warns, visibly, when no challenger beats popularity by the margin and a fallback is
  served, and fails (blocking the lists) only when nothing can be served.
* ``recommend/recommendations`` (D): top-K for D+1 for every customer active in the last 30 days, with score,
  rank, model version and a reason that cites a real item of the customer's history (``outputs.recommendations``,
  exported as Parquet for the read API).
"""

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from ml.exports import write_export
from ml.warehouse import markdown_table
from orchestration.defs.automation import DOWNSTREAM_AUTOMATION
from orchestration.defs.supply.assets import replace_day
from orchestration.partitions import DAILY_WAREHOUSE_WRITER, partition_days
from orchestration.resources import DataFilesResource, WarehouseResource

OWNERS = ["team:personalisation"]
GROUP = "recommend"
TRAINING_WINDOW_DAYS = 90
ACTIVE_DAYS = 30
PREVIOUS_DAY = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
"""Evaluation of day E reads the models trained on E-1."""


class RecommendConfig(dg.Config):
    sasrec_time_budget_seconds: float = Field(
        default=300.0,
        description="Training budget of a SASRec retrain in seconds (early stopping usually ends it sooner).",
    )
    sasrec_retrain_weekday: int = Field(
        default=0,
        description="Weekday (0 = Monday) on which SASRec retrains; other days carry the last weights over.",
    )
    top_k: int = Field(default=20, description="Recommendations kept per customer.")
    champion_margin: float = Field(
        default=0.05,
        description="A challenger must beat popularity's NDCG@10 by this fraction over the last evaluated days.",
    )
    bundle_retention_days: int = Field(
        default=28,
        ge=2,
        description=(
            "Days of candidate bundles kept on disk, back from the last day a recommendations run serves; older "
            "ones are deleted after it (about 80 MB a day on Online Retail). Re-running an older day rebuilds its "
            "bundle with candidate_models."
        ),
    )


def _events(con, first: date, last: date) -> pd.DataFrame:
    return con.execute(
        "SELECT customer_id, sku, event_ts, event_type, region FROM marts.fct_events "
        "WHERE event_date BETWEEN ? AND ? AND customer_id IS NOT NULL",
        [first, last],
    ).df()


def _purchases(con, first: date, last: date) -> pd.DataFrame:
    """Purchases as interactions: sale lines of orders (the real data has no clickstream, only orders)."""
    return con.execute(
        "SELECT customer_id, sku, order_ts AS event_ts, 'purchase' AS event_type, region "
        "FROM marts.fct_order_items WHERE order_date BETWEEN ? AND ? AND is_sale AND customer_id IS NOT NULL",
        [first, last],
    ).df()


def interactions(con, first: date, last: date) -> pd.DataFrame:
    """Views and carts from the clickstream plus purchases from the order lines, deduplicated."""
    events = _events(con, first, last)
    events = events[events["event_type"] != "purchase"]
    frame = pd.concat([events, _purchases(con, first, last)], ignore_index=True)
    frame["event_ts"] = pd.to_datetime(frame["event_ts"], utc=True)
    return frame


def _items(con) -> pd.DataFrame:
    return con.execute("SELECT sku, title, description, category, brand FROM marts.dim_products").df()


def _bundles_root(files: DataFilesResource) -> Path:
    return files.path("artifacts", "recommend")


def _bundle_dir(files: DataFilesResource, day: date) -> Path:
    from ml.recommend.platform import bundle_dir  # torch comes with it: not at definitions load

    return bundle_dir(_bundles_root(files), day)


@dg.asset(
    key=dg.AssetKey(["recommend", "candidate_models"]),
    group_name=GROUP,
    owners=OWNERS,
    kinds={"torch", "scikit-learn", "python"},
    description=(
        "Candidate recommenders fitted on the last 90 days of views, carts and purchases up to D: popularity "
        "(time-decayed), region popularity, ItemKNN, EASE, first-order transition, SASRec (Transformer; retrained "
        "weekly, warm-started), content (TF-IDF+SVD text) and a SASRec+content hybrid. Versioned bundle under "
        "`artifacts/recommend/candidates-D`."
    ),
    deps=[dg.AssetKey(["marts", m]) for m in ("fct_events", "fct_order_items", "dim_products")],
    automation_condition=DOWNSTREAM_AUTOMATION,
    **DAILY_WAREHOUSE_WRITER,
)
def candidate_models(
    context: dg.AssetExecutionContext,
    config: RecommendConfig,
    warehouse: WarehouseResource,
    files: DataFilesResource,
) -> dg.MaterializeResult:
    from ml.recommend.platform import previous_bundle, train_candidates

    days = partition_days(context)
    manifest: dict = {}
    with warehouse.connect() as con:
        items = _items(con)
        for i, day in enumerate(days, 1):
            data = interactions(con, day - timedelta(days=TRAINING_WINDOW_DAYS - 1), day)
            if data.empty:
                context.log.info(f"[{i}/{len(days)}] {day}: no interactions yet")
                continue
            previous = previous_bundle(_bundles_root(files), day)
            retrain = previous is None or day.weekday() == config.sasrec_retrain_weekday
            bundle = train_candidates(
                data,
                day,
                _bundles_root(files),
                items=items,
                warm_start_from=previous,
                retrain_sasrec=retrain,
                sasrec_time_budget=config.sasrec_time_budget_seconds,
            )
            manifest = bundle.manifest
            context.log.info(
                f"[{i}/{len(days)}] {day}: {len(bundle.names)} models on {len(data)} interactions "
                f"(SASRec {'retrained' if retrain else 'carried over'})"
            )
    metadata: dict = {"as_of": days[-1].isoformat(), "days_built": len(days)}
    if manifest:
        window_info = manifest.get("data_window", {})
        models = manifest.get("models", {})
        metadata |= {
            "bundle": dg.MetadataValue.path(str(_bundle_dir(files, days[-1]))),
            "version": manifest.get("version", ""),
            "sasrec_retrained": bool(manifest.get("retrain_sasrec", False)),
            "data_window": dg.MetadataValue.json(window_info),
            "models": dg.MetadataValue.md(
                markdown_table(
                    pd.DataFrame(
                        [
                            {"model": n, "version": m["version"], "train_seconds": m["train_seconds"]}
                            for n, m in models.items()
                        ]
                    )
                )
            ),
            "train_seconds": float(manifest.get("train_seconds", 0.0)),
            "catalogue_items": int(window_info.get("catalogue_items", 0)),
            "customers": int(window_info.get("customers", 0)),
        }
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    key=dg.AssetKey(["recommend", "model_evaluation"]),
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    description=(
        "Every candidate trained on E-1 scored on the purchases of E (platform protocol): HR, NDCG and recall at "
        "10 and 20, catalogue coverage, and the cold-user and cold-item slices (`recommend.daily_metrics`). The "
        "NDCG@10 of each model plots over partitions."
    ),
    deps=[
        dg.AssetDep(dg.AssetKey(["recommend", "candidate_models"]), partition_mapping=PREVIOUS_DAY),
        dg.AssetKey(["marts", "fct_order_items"]),
    ],
    automation_condition=DOWNSTREAM_AUTOMATION,
    **DAILY_WAREHOUSE_WRITER,
)
def model_evaluation(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, files: DataFilesResource
) -> dg.MaterializeResult:
    from ml.recommend.platform import evaluate_next_day, flatten_metrics, load_candidates

    days = partition_days(context)
    table = pd.DataFrame()
    with warehouse.connect() as con:
        for day in days:
            bundle_dir = _bundle_dir(files, day - timedelta(days=1))
            if not (bundle_dir / "manifest.json").exists():
                context.log.info(
                    f"{day}: no models trained on {day - timedelta(days=1)}; nothing to evaluate"
                )
                continue
            bundle = load_candidates(bundle_dir)
            history = interactions(con, day - timedelta(days=TRAINING_WINDOW_DAYS), day - timedelta(days=1))
            buys = _purchases(con, day, day)
            metrics = evaluate_next_day(bundle, history, buys)
            table = flatten_metrics(pd.Timestamp(day).date(), metrics).rename(columns={"date": "eval_date"})
            replace_day(con, "recommend.daily_metrics", table, "eval_date", day)
    metadata: dict = {"as_of": days[-1].isoformat(), "dagster/row_count": len(table)}
    if not table.empty:
        for row in table.to_dict(orient="records"):
            metadata[f"NDCG@10_{row['model']}"] = float(row.get("NDCG@10", 0.0))
            metadata[f"recall@20_{row['model']}"] = float(row.get("recall@20", 0.0))
        metadata["evaluated_users"] = int(table["users"].max())
        cols = [
            c
            for c in (
                "model",
                "HR@10",
                "NDCG@10",
                "recall@20",
                "coverage@10",
                "cold_users.NDCG@10",
                "cold_items.NDCG@10",
                "users",
            )
            if c in table.columns
        ]
        metadata["metrics"] = dg.MetadataValue.md(
            markdown_table(table[cols].sort_values("NDCG@10", ascending=False))
        )
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    key=dg.AssetKey(["recommend", "champion"]),
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    description=(
        "The model served from D: the best challenger whose NDCG@10 beats popularity by the margin over the last "
        "7 evaluated days, else the previous champion, else popularity (`recommend.champion_history`, with the "
        "reason). Gated by the blocking check `champion_gate`."
    ),
    deps=[dg.AssetKey(["recommend", "model_evaluation"])],
    automation_condition=DOWNSTREAM_AUTOMATION,
    **DAILY_WAREHOUSE_WRITER,
    check_specs=[
        dg.AssetCheckSpec(
            "champion_gate",
            asset=dg.AssetKey(["recommend", "champion"]),
            blocking=True,
            description="Warns when no challenger beats popularity by the margin (a fallback is served); fails, "
            "blocking the lists, only when no model can be served.",
        )
    ],
)
def champion(
    context: dg.AssetExecutionContext,
    config: RecommendConfig,
    warehouse: WarehouseResource,
    files: DataFilesResource,
):
    from ml.recommend.platform import choose_champion

    days = partition_days(context)
    choice: dict = {}
    with warehouse.connect() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS recommend")
        con.execute(
            "CREATE TABLE IF NOT EXISTS recommend.champion_history "
            "(as_of_date DATE, champion VARCHAR, reason VARCHAR, beats_baseline BOOLEAN)"
        )
        for day in days:
            has_metrics = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'recommend' "
                "AND table_name = 'daily_metrics'"
            ).fetchone()[0]
            metrics = (
                con.execute(
                    'SELECT eval_date AS date, model, "NDCG@10" FROM recommend.daily_metrics '
                    "WHERE eval_date <= ? AND eval_date > ?",
                    [day, day - timedelta(days=30)],
                ).df()
                if has_metrics
                else pd.DataFrame(columns=["date", "model", "NDCG@10"])
            )
            previous = con.execute(
                "SELECT champion FROM recommend.champion_history WHERE as_of_date < ? ORDER BY as_of_date DESC LIMIT 1",
                [day],
            ).fetchone()
            choice = choose_champion(
                metrics, margin=config.champion_margin, previous_champion=previous[0] if previous else None
            )
            bundle_ok = (_bundle_dir(files, day) / "manifest.json").exists()
            choice["servable"] = bundle_ok
            choice["beats_baseline"] = bool(choice.get("beats_baseline", False))
            replace_day(
                con,
                "recommend.champion_history",
                pd.DataFrame(
                    [
                        {
                            "as_of_date": pd.Timestamp(day).date(),
                            "champion": choice["champion"],
                            "reason": choice["reason"],
                            "beats_baseline": choice["beats_baseline"],
                        }
                    ]
                ),
                "as_of_date",
                day,
            )
    yield dg.MaterializeResult(
        metadata={
            "champion": choice.get("champion", ""),
            "reason": choice.get("reason", ""),
            "as_of": days[-1].isoformat(),
            "window_means": dg.MetadataValue.json(choice.get("means", {})),
        }
    )
    servable = choice.get("servable", False)
    yield dg.AssetCheckResult(
        check_name="champion_gate",
        passed=servable and choice.get("beats_baseline", False),
        severity=dg.AssetCheckSeverity.ERROR if not servable else dg.AssetCheckSeverity.WARN,
        metadata={
            "champion": choice.get("champion", ""),
            "reason": choice.get("reason", ""),
            "servable": servable,
        },
    )


@dg.asset(
    key=dg.AssetKey(["recommend", "recommendations"]),
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "torch"},
    description=(
        "Top-K recommendations for D+1 for every customer active in the last 30 days, from the champion model: "
        "score, rank, model version and a readable reason citing a real item of the customer's history "
        "('bought together with X', 'similar to X you viewed', 'new in a category you like', 'popular in your "
        "region'). Never an item the customer already bought. `outputs.recommendations`, exported as Parquet."
    ),
    deps=[dg.AssetKey(["recommend", "champion"]), dg.AssetKey(["recommend", "candidate_models"])],
    automation_condition=DOWNSTREAM_AUTOMATION,
    **DAILY_WAREHOUSE_WRITER,
)
def recommendations(
    context: dg.AssetExecutionContext,
    config: RecommendConfig,
    warehouse: WarehouseResource,
    files: DataFilesResource,
) -> dg.MaterializeResult:
    from ml.recommend.platform import load_candidates, prune_bundles, recommend

    days = partition_days(context)
    recs = pd.DataFrame()
    champion_name = ""
    with warehouse.connect() as con:
        items = _items(con)
        for day in days:
            bundle_dir = _bundle_dir(files, day)
            row = con.execute(
                "SELECT champion FROM recommend.champion_history WHERE as_of_date = ?", [day]
            ).fetchone()
            if row is None or not (bundle_dir / "manifest.json").exists():
                context.log.info(f"{day}: no champion or no models; no recommendations")
                continue
            champion_name = row[0]
            bundle = load_candidates(bundle_dir)
            history = interactions(con, day - timedelta(days=TRAINING_WINDOW_DAYS - 1), day)
            active = history.loc[
                history["event_ts"] >= pd.Timestamp(day, tz="UTC") - pd.Timedelta(days=ACTIVE_DAYS - 1),
                "customer_id",
            ].unique()
            recs = recommend(bundle[champion_name], sorted(active), history, k=config.top_k, items=items)
            recs.insert(0, "as_of_date", pd.Timestamp(day).date())
            recs.insert(1, "target_date", pd.Timestamp(day + timedelta(days=1)).date())
            con.execute("CREATE SCHEMA IF NOT EXISTS outputs")
            replace_day(con, "outputs.recommendations", recs, "as_of_date", day)
            write_export(recs.drop(columns=["as_of_date"]), files.path("exports"), "recommendations", day)
            context.log.info(
                f"{day}: {recs['customer_id'].nunique()} customers × {config.top_k} from {champion_name}"
            )
    # Only after the lists: a range run evaluates and serves every day of the range from its bundle first.
    pruned = prune_bundles(_bundles_root(files), days[-1] - timedelta(days=config.bundle_retention_days - 1))
    if pruned:
        context.log.info(
            f"deleted {len(pruned)} candidate bundles older than the last {config.bundle_retention_days} days"
        )
    metadata: dict = {
        "as_of": days[-1].isoformat(),
        "dagster/row_count": len(recs),
        "model": champion_name,
        "bundles_pruned": len(pruned),
    }
    if not recs.empty:
        kinds = (
            recs["reason"].str.extract(r"^(bought together|similar to|new in|popular in)")[0].fillna("other")
        )
        metadata |= {
            "customers": int(recs["customer_id"].nunique()),
            "distinct_skus": int(recs["sku"].nunique()),
            "reasons": dg.MetadataValue.json(kinds.value_counts().to_dict()),
            "preview": dg.MetadataValue.md(
                markdown_table(
                    recs[recs["rank"] <= 3][["customer_id", "rank", "sku", "score", "reason"]], max_rows=12
                )
            ),
        }
    return dg.MaterializeResult(metadata=metadata)


recommend_assets = [candidate_models, model_evaluation, champion, recommendations]
