"""The recommend group's daily steps over the warehouse and the artifact store (no Dagster import).

For day D, in dependency order:

1. :func:`train_day`: every candidate fitted on the last :data:`TRAINING_WINDOW_DAYS` days of interactions up
   to D, stored as D's bundle; SASRec warm-starts from D-1's bundle (retrained on one weekday, or when the
   served lists' click-through dropped (:func:`ml.feedback.online.ctr_drop`), carried over on the other days;
   trained from scratch when D-1 has no bundle).
2. :func:`evaluate_day`: D-1's bundle scored on the purchases of D (:data:`METRICS`).
3. :func:`champion_day`: the model to serve from D (:data:`CHAMPIONS`), from the last evaluated days, D-1's
   champion and the online verdicts (:func:`ml.feedback.online.online_verdicts`: a model whose exposed customers
   bought less than the control arm, interval below zero, is not served).
4. :func:`recommend_day_parts`: the champion's top-K for D+1 for every customer active in the last
   :data:`ACTIVE_DAYS` days (:data:`LISTS`).

Each returns the rows for its table and a summary (:mod:`ml.summary`); the assets write, export and attach them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, Field

from ml.artifacts import ArtifactStore
from ml.feedback.online import blocked_models, ctr_drop, online_verdicts
from ml.profiles.feature_tables import BASKET_ASSOCIATIONS
from ml.recommend.bundles import BUNDLES, CandidateModels, load_bundle
from ml.recommend.champion import choose_champion, regression_verdict
from ml.recommend.experiment import CONTROL, CONTROL_SHARE, TREATMENT, arms, list_ids
from ml.recommend.interactions import (
    active_customers,
    read_purchases,
    read_served_history,
    read_training_log,
)
from ml.recommend.scoring import served_histories
from ml.recommend.serving import REASON_KINDS, recommend
from ml.summary import summary
from ml.warehouse import markdown_table, table_exists

TRAINING_WINDOW_DAYS = 90
ACTIVE_DAYS = 30
CHAMPION_LOOKBACK_DAYS = 30
"""Evaluated days the champion gate reads (it judges the last 7 evaluated ones among them)."""
METRICS = "recommend.daily_metrics"
CHAMPIONS = "recommend.champion_history"
LISTS = "outputs.recommendations"


class RecommendSettings(BaseModel):
    sasrec_time_budget_seconds: float | None = Field(
        default=300.0,
        gt=0,
        description=(
            "Training budget of a SASRec retrain in seconds (early stopping usually ends it sooner; when the budget "
            "ends it, the bundle's note says so, and a re-run may keep another epoch). None: no budget, re-runs "
            "give identical models."
        ),
    )
    sasrec_retrain_weekday: int = Field(
        default=0,
        ge=0,
        le=6,
        description="Weekday (0 = Monday) on which SASRec retrains; other days carry the last weights over.",
    )
    top_k: int = Field(default=20, ge=1, description="Recommendations kept per customer.")
    champion_margin: float = Field(
        default=0.05,
        ge=0,
        description="A challenger must beat popularity's NDCG@10 by this fraction over the last evaluated days.",
    )
    online_gate_days: int = Field(
        default=7,
        ge=1,
        description=(
            "Mature exposure days the online gate pools: a model whose exposed customers bought less than the "
            "control arm over them (95% interval below zero) is not served."
        ),
    )
    retrain_on_ctr_drop: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description=(
            "SASRec also retrains off its weekday when the treatment arm's click-through on the latest mature day "
            "falls more than this fraction below its mean over the 7 days before."
        ),
    )
    pinned_model: str | None = Field(
        default=None,
        description=(
            "Ops override: serve this candidate to the treatment arm whatever the gate says (the gate's own choice "
            "is kept in the reason). For incidents, and for benchmarks that compare serving policies."
        ),
    )
    control_share: float = Field(
        default=CONTROL_SHARE,
        ge=0,
        lt=1,
        description=(
            "Share of customers in the control arm: a fixed hashed group served the popularity list, so the "
            "champion's uplift is measured against it inside the same days."
        ),
    )


def train_day(
    con: duckdb.DuckDBPyConnection,
    store: ArtifactStore,
    day: date,
    settings: RecommendSettings,
    items: pd.DataFrame | None = None,
) -> CandidateModels | None:
    """Fit and store day ``day``'s bundle (None: no interactions in the window yet). ``items``: the catalogue
    (:func:`ml.recommend.interactions.read_items`)."""
    from ml.recommend.training import train_candidates

    data = read_training_log(con, day - timedelta(days=TRAINING_WINDOW_DAYS - 1), day)
    if not data.events:
        return None
    previous = load_bundle(store, day - timedelta(days=1))
    retrain, reason = retrain_decision(con, day, previous is not None, settings)
    return train_candidates(
        data,
        day,
        store,
        items=items,
        warm_start_from=previous,
        retrain_sasrec=retrain,
        retrain_reason=reason,
        sasrec_time_budget=settings.sasrec_time_budget_seconds,
    )


def retrain_decision(
    con: duckdb.DuckDBPyConnection, day: date, has_previous: bool, settings: RecommendSettings
) -> tuple[bool, str]:
    """Whether SASRec retrains on ``day`` and why: no weights to carry over, its weekday, or a drop of the served
    lists' click-through (:func:`ml.feedback.online.ctr_drop`); the other candidates refit every day anyway."""
    if not has_previous:
        return True, "no previous bundle to carry weights over"
    if day.weekday() == settings.sasrec_retrain_weekday:
        return True, "weekly retrain day"
    return ctr_drop(con, day, drop=settings.retrain_on_ctr_drop)


def training_summary(bundle: CandidateModels, store: ArtifactStore) -> dict:
    """The bundle's version, data window, models with their train seconds, and where it is stored (path, size,
    content hash)."""
    manifest = bundle.manifest
    window = manifest.get("data_window", {})
    models = pd.DataFrame(
        [
            {
                "model": n,
                "version": m["version"],
                "train_seconds": m["train_seconds"],
                "note": m.get("note", ""),
            }
            for n, m in manifest.get("models", {}).items()
        ]
    )
    artifact = store.info(BUNDLES, bundle.as_of)
    return summary(
        metrics={
            "version": manifest.get("version", ""),
            "sasrec_retrained": bool(manifest.get("retrain_sasrec", False)),
            "sasrec_retrain_reason": manifest.get("retrain_reason", ""),
            "warm_start_from": manifest.get("warm_start_from") or "",
            "train_seconds": float(manifest.get("train_seconds", 0.0)),
            "catalogue_items": int(window.get("catalogue_items", 0)),
            "customers": int(window.get("customers", 0)),
            "bundle_size_bytes": artifact.size_bytes,
        },
        markdown={"models": markdown_table(models)},
        json={"data_window": window, "bundle": artifact.as_metadata()},
    )


def evaluate_day(con: duckdb.DuckDBPyConnection, store: ArtifactStore, day: date) -> pd.DataFrame:
    """The day's rows of :data:`METRICS`: every candidate of D-1's bundle scored on the purchases of ``day``
    (one row per model; empty when D-1 has no bundle)."""
    from ml.recommend.evaluation import evaluate_next_day, flatten_metrics

    yesterday = day - timedelta(days=1)
    bundle = load_bundle(store, yesterday)
    if bundle is None:
        return pd.DataFrame()
    purchases = read_purchases(con, day, day)
    # the evaluated customers are the day's buyers: only what scoring reads of their histories is read
    buyers = purchases["customer_id"].unique()
    history = read_served_history(con, day - timedelta(days=TRAINING_WINDOW_DAYS), yesterday, buyers)
    metrics = evaluate_next_day(bundle, history, purchases)
    return flatten_metrics(pd.Timestamp(day).date(), metrics).rename(columns={"date": "eval_date"})


def evaluation_summary(table: pd.DataFrame) -> dict:
    """NDCG@10 and recall@20 per model (they plot over partitions) and the table of every metric."""
    if table.empty:
        return summary(0)
    metrics: dict = {}
    for row in table.to_dict(orient="records"):
        metrics[f"NDCG@10_{row['model']}"] = float(row.get("NDCG@10", 0.0))
        metrics[f"recall@20_{row['model']}"] = float(row.get("recall@20", 0.0))
    metrics["evaluated_users"] = int(table["users"].max())
    shown = [
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
    return summary(
        len(table), metrics, {"metrics": markdown_table(table[shown].sort_values("NDCG@10", ascending=False))}
    )


def previous_champion(con: duckdb.DuckDBPyConnection, day: date) -> str | None:
    """The champion chosen on the day before ``day`` (None before the first)."""
    if not table_exists(con, CHAMPIONS):
        return None
    rows = con.execute(
        f"SELECT champion FROM {CHAMPIONS} WHERE as_of_date = ?", [day - timedelta(days=1)]
    ).fetchall()
    return rows[0][0] if rows else None


def champion_day(
    con: duckdb.DuckDBPyConnection, store: ArtifactStore, day: date, settings: RecommendSettings
) -> tuple[pd.DataFrame, dict]:
    """The day's row of :data:`CHAMPIONS` and the choice (:func:`ml.recommend.champion.choose_champion`, plus
    ``servable``: whether the day's bundle exists to serve it)."""
    metrics = pd.DataFrame(columns=["date", "model", "NDCG@10"])
    if table_exists(con, METRICS):
        metrics = con.execute(
            f'SELECT eval_date AS date, model, "NDCG@10" FROM {METRICS} WHERE eval_date <= ? AND eval_date > ?',
            [day, day - timedelta(days=CHAMPION_LOOKBACK_DAYS)],
        ).df()
    verdicts = online_verdicts(con, day, window_days=settings.online_gate_days)
    blocked = blocked_models(verdicts)
    choice = choose_champion(
        metrics,
        margin=settings.champion_margin,
        previous_champion=previous_champion(con, day),
        blocked=blocked,
    )
    choice["online"] = verdicts
    if settings.pinned_model:
        choice["reason"] = (
            f"pinned to {settings.pinned_model} by ops; the gate would serve {choice['champion']}"
        )
        choice["champion"] = settings.pinned_model
    choice["servable"] = store.exists(BUNDLES, day.isoformat())
    choice["beats_baseline"] = bool(choice.get("beats_baseline", False))
    # The regression gate: a champion clearly worse than popularity on the latest evaluated day does not serve;
    # no lists are made for the day, and the last ones published keep serving (ops' pin is theirs to judge).
    regressed = (
        None if settings.pinned_model else regression_verdict(latest_evaluation(con, day, choice["champion"]))
    )
    choice["served"] = regressed is None
    if regressed:
        last = last_served_day(con, day)
        choice["reason"] += (
            f"; gate blocked serving: {regressed}; the lists of {last or 'no earlier day'} keep serving"
        )
    row = pd.DataFrame(
        [
            {
                "as_of_date": pd.Timestamp(day).date(),
                "champion": choice["champion"],
                "reason": choice["reason"],
                "beats_baseline": choice["beats_baseline"],
                "blocked_online": ", ".join(sorted(blocked)),
                "served": choice["served"],
            }
        ]
    )
    return row, choice


def latest_evaluation(con: duckdb.DuckDBPyConnection, day: date, model: str) -> dict | None:
    """``model``'s metrics on the latest day evaluated by ``day`` (None when there is none)."""
    if not table_exists(con, METRICS):
        return None
    rows = con.execute(
        f"SELECT * FROM {METRICS} WHERE model = ? AND eval_date <= ? ORDER BY eval_date DESC LIMIT 1",
        [model, day],
    ).df()
    if rows.empty:
        return None
    return rows.iloc[0].rename({"eval_date": "date"}).to_dict()


def last_served_day(con: duckdb.DuckDBPyConnection, day: date) -> date | None:
    """The latest day before ``day`` whose lists were made (its champion was not held back by the gate)."""
    if not table_exists(con, LISTS):
        return None
    found = con.execute(f"SELECT max(as_of_date) FROM {LISTS} WHERE as_of_date < ?", [day]).fetchall()
    return found[0][0]


def champion_served(con: duckdb.DuckDBPyConnection, day: date) -> tuple[str | None, bool]:
    """(champion, whether it serves) of ``day``; days recorded before the gate existed serve."""
    if not table_exists(con, CHAMPIONS):
        return None, False
    rows = con.execute(f"SELECT * FROM {CHAMPIONS} WHERE as_of_date = ?", [day]).df()
    if rows.empty:
        return None, False
    value = rows.iloc[0].get("served")
    return str(rows.iloc[0]["champion"]), True if value is None or pd.isna(value) else bool(value)


CUSTOMERS_PER_PART = 50_000
"""Customers whose lists are built and written at a time (:func:`recommend_day_parts`): a large store's day
(500k active customers) would otherwise hold every customer's history frames and lists at once."""


def recommend_day_parts(
    con: duckdb.DuckDBPyConnection,
    store: ArtifactStore,
    day: date,
    settings: RecommendSettings,
    items: pd.DataFrame | None = None,
    customers_per_part: int = CUSTOMERS_PER_PART,
) -> Iterator[pd.DataFrame]:
    """The day's rows of :data:`LISTS`, ``customers_per_part`` customers at a time (in customer order): top-K
    for D+1 for every customer active in the last :data:`ACTIVE_DAYS` days, with score, rank, model version,
    reason, experiment arm and list id (nothing without a champion or a bundle). The treatment arm gets the
    champion's list, the control arm (:mod:`ml.recommend.experiment`) the popularity list. A customer's list
    depends only on their own history, so the parts are the lists of one pass over every customer."""
    champion, serves = champion_served(con, day)
    bundle = load_bundle(store, day) if champion is not None and serves else None
    if bundle is None:
        return
    if champion not in bundle.names:
        raise ValueError(
            f"champion {champion!r} of {day} is not in the day's bundle (models: {bundle.names})"
        )
    first = day - timedelta(days=TRAINING_WINDOW_DAYS - 1)
    since = pd.Timestamp(day, tz="UTC") - pd.Timedelta(days=ACTIVE_DAYS - 1)
    customers = np.array(active_customers(con, first, day, since), dtype=object)
    together = basket_pairs(con, day, bundle.item_ids)
    target = pd.Timestamp(day + timedelta(days=1)).date()
    for start in range(0, len(customers), customers_per_part):
        part_customers = customers[start : start + customers_per_part]
        # the steps scoring keeps, collapsed in the warehouse, not the customers' whole 90-day log
        part_history = read_served_history(con, first, day, part_customers)
        arm = arms(part_customers, settings.control_share)
        served = []
        for arm_name, model_name in ((TREATMENT, champion), (CONTROL, "popularity")):
            group = part_customers[arm == arm_name]
            if len(group):
                lists = recommend(
                    bundle[model_name],
                    list(group),
                    served_histories(bundle, group, *part_history),
                    k=settings.top_k,
                    items=items,
                    together=together,
                )
                served.append(lists.assign(arm=arm_name))
        recs = pd.concat(served, ignore_index=True).sort_values(["customer_id", "rank"], ignore_index=True)
        recs["list_id"] = list_ids(target.isoformat(), recs["customer_id"], recs["model_version"])
        recs.insert(0, "as_of_date", pd.Timestamp(day).date())
        recs.insert(1, "target_date", target)
        yield recs


def basket_pairs(con: duckdb.DuckDBPyConnection, day: date, item_ids: np.ndarray) -> sp.csr_matrix:
    """``items x items`` of ``item_ids``: the lift of each pair bought in the same orders over the basket window
    ending on ``day`` (``goods/basket_associations``, antecedent -> consequent; 0 elsewhere), the evidence behind
    "bought together with X"."""
    n = len(item_ids)
    if not table_exists(con, BASKET_ASSOCIATIONS):
        return sp.csr_matrix((n, n), dtype=np.float32)
    pairs = con.execute(
        f"select antecedent, consequent, lift from {BASKET_ASSOCIATIONS} where as_of_date = ? and lift > 0",
        [day],
    ).df()
    index = pd.Index(item_ids)
    rows = index.get_indexer(pairs["antecedent"].astype(str).to_numpy())
    cols = index.get_indexer(pairs["consequent"].astype(str).to_numpy())
    known = (rows >= 0) & (cols >= 0)
    return sp.csr_matrix(
        (pairs["lift"].to_numpy(np.float32)[known], (rows[known], cols[known])),
        shape=(n, n),
        dtype=np.float32,
    )


def recommendations_summary(con: duckdb.DuckDBPyConnection, day: date) -> dict:
    """Customers served, distinct SKUs, the kinds of reasons given and a preview of the top three per customer,
    read from the day's stored rows of :data:`LISTS` (a large day is never loaded whole)."""
    counts = con.execute(
        f"""
        select
            count(*),
            count(distinct customer_id),
            count(distinct customer_id) filter (where arm = ?),
            count(distinct sku),
            coalesce(any_value(model_name) filter (where arm = ?), 'popularity')
        from {LISTS} where as_of_date = ?
        """,
        [CONTROL, TREATMENT, day],
    ).fetchone()
    rows, customers, control_customers, skus, model = counts
    if not rows:
        return summary(0)
    kinds = con.execute(
        f"""
        select coalesce(nullif(regexp_extract(reason, '^({"|".join(REASON_KINDS)})', 1), ''), 'other') as kind,
               count(*) as n
        from {LISTS} where as_of_date = ? group by kind order by n desc, kind
        """,
        [day],
    ).fetchall()
    preview = con.execute(
        f"""
        select customer_id, rank, sku, score, reason from {LISTS}
        where as_of_date = ? and rank <= 3 order by customer_id, rank limit 12
        """,
        [day],
    ).df()
    return summary(
        rows,
        metrics={
            "model": str(model),
            "customers": int(customers),
            "control_customers": int(control_customers),
            "distinct_skus": int(skus),
        },
        markdown={"preview": markdown_table(preview, max_rows=12)},
        json={"reasons": {kind: int(n) for kind, n in kinds}},
    )
