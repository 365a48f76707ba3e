"""Churn risk: P(no purchase in the next 30 days), a scikit-learn model trained on history only.

Labels for an as-of date T are known once T + 30 has passed, so on day D the model can learn from snapshots
T <= D - 30 and nothing later:

- the *training* snapshot ``D - 60`` (features as of D - 60, label = no order in (D - 60, D - 30]) fits a model
  that is scored on the *later window* ``D - 30`` (features as of D - 30, label = no order in (D - 30, D]): its
  ROC AUC there is the out-of-time metric reported as ``churn_auc`` (``churn_auc_later_window = 1``);
- the model that scores today's customers is then refitted on both snapshots.

With less history (no usable ``D - 60`` snapshot) the AUC comes from a 25% customer hold-out of the ``D - 30``
snapshot (``churn_auc_later_window = 0``); without a usable ``D - 30`` snapshot nothing is scored.

Population: customers first seen by T who bought in the last 365 days or visited in the last 30 days (the
ones for whom "will they buy again" is a real question). Features are the scalar profile columns
(:data:`ml.profiles.users.CHURN_FEATURES`); missing values (never bought) are left to the model.
"""

from __future__ import annotations

import zlib
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

from ml.profiles.feature_tables import CUSTOMER_WINDOWS, built_days
from ml.warehouse import table_exists

LABEL_DAYS = 30
MIN_HISTORY_DAYS = 7
"""A snapshot is used only when the feature layer has built at least this many days on or before it."""
MAX_TRAIN_ROWS = 30_000
RANDOM_STATE = 0


def _snapshot(con: duckdb.DuckDBPyConnection, as_of: date) -> pd.DataFrame:
    """The scalar profile columns of ``as_of`` (dbt's customer windows of that day)."""
    from ml.profiles.users import CHURN_FEATURES

    cols = ", ".join(["customer_id", *CHURN_FEATURES])
    if not table_exists(con, CUSTOMER_WINDOWS):
        return pd.DataFrame(columns=["customer_id", *CHURN_FEATURES])
    return con.execute(f"select {cols} from {CUSTOMER_WINDOWS} where as_of_date = ?", [as_of]).df()


def _population(frame: pd.DataFrame) -> pd.DataFrame:
    keep = (frame["tenure_days"] >= 0) & ((frame["orders_365d"] > 0) | (frame["sessions_30d"] > 0))
    return frame[keep]


def _labelled(features: pd.DataFrame, later: pd.DataFrame) -> pd.DataFrame:
    """Attach label = 1 when the customer placed no order in the 30 days after the snapshot."""
    orders_next = later.set_index("customer_id")["orders_30d"]
    out = _population(features).copy()
    out["label"] = (out["customer_id"].map(orders_next).fillna(0) == 0).astype(int)
    return out


NO_EVENT_DAYS = 400.0
"""Stand-in for "never" (no purchase or visit inside the 365-day window) in recency-type features."""


def _design(frame: pd.DataFrame) -> np.ndarray:
    """Model inputs: log1p of counts, amounts and day gaps, "never" indicators, discount share as is."""
    from ml.profiles.users import CHURN_FEATURES

    cols = []
    for name in CHURN_FEATURES:
        values = pd.to_numeric(frame[name], errors="coerce").astype(float)
        if name in ("recency_days", "days_since_visit"):
            cols.append(values.isna().astype(float).to_numpy())
            values = values.fillna(NO_EVENT_DAYS)
        values = values.fillna(0.0).clip(lower=0)
        cols.append(values.to_numpy() if name == "discount_share_365d" else np.log1p(values.to_numpy()))
    return np.column_stack(cols)


def _fit(train: pd.DataFrame):
    """Standardised logistic regression: fast and stable on a few thousand rows, and the daily step runs on
    every partition, so seconds matter more than the last point of AUC (chosen for cost, not by test AUC)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(train) > MAX_TRAIN_ROWS:
        train = train.sample(MAX_TRAIN_ROWS, random_state=RANDOM_STATE)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=500))
    model.fit(_design(train), train["label"].to_numpy())
    return model


def _predict(model, frame: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(_design(frame))[:, 1]


def _both_classes(frame: pd.DataFrame) -> bool:
    return len(frame) >= 20 and frame["label"].nunique() == 2


def fit_and_score_churn(
    con: duckdb.DuckDBPyConnection, as_of: date, current: pd.DataFrame
) -> tuple[pd.DataFrame, dict]:
    """Train on snapshots <= ``as_of - 30``, report AUC, score ``current`` (the scalar profiles of ``as_of``).

    Returns ``(scores, metrics)``: scores has ``customer_id, churn_risk`` for the population; metrics holds
    ``churn_auc`` (None when not computable), ``churn_auc_later_window``, ``churn_train_rows``,
    ``churn_eval_rows`` and ``churn_label_rate`` (share of training rows that did not buy in the next 30 days).
    """
    empty = pd.DataFrame({"customer_id": pd.Series(dtype=str), "churn_risk": pd.Series(dtype=float)})
    metrics: dict = {
        "churn_auc": None,
        "churn_auc_later_window": 0,
        "churn_train_rows": 0,
        "churn_eval_rows": 0,
        "churn_label_rate": None,
    }
    days = [d for d in built_days(con) if d <= as_of]
    if not days:
        return empty, metrics

    def usable(snapshot_day: date) -> bool:
        return sum(1 for d in days if d <= snapshot_day) >= MIN_HISTORY_DAYS

    recent_day, older_day = as_of - timedelta(days=LABEL_DAYS), as_of - timedelta(days=2 * LABEL_DAYS)
    if not usable(recent_day):
        return empty, metrics
    recent_features = _snapshot(con, recent_day)
    recent = _labelled(recent_features, current)
    if not _both_classes(recent):
        return empty, metrics

    from sklearn.metrics import roc_auc_score

    older = _labelled(_snapshot(con, older_day), recent_features) if usable(older_day) else None
    if older is not None and _both_classes(older):
        eval_model = _fit(older)
        metrics["churn_auc"] = float(roc_auc_score(recent["label"], _predict(eval_model, recent)))
        metrics["churn_auc_later_window"] = 1
        metrics["churn_eval_rows"] = len(recent)
        train = pd.concat([older, recent], ignore_index=True)
    else:
        # A stable hash of the id, not Python's salted hash(): the split must not change between runs.
        in_holdout = recent["customer_id"].map(lambda c: zlib.crc32(str(c).encode()) % 4 == 0)
        fit_part, holdout = recent[~in_holdout], recent[in_holdout]
        if _both_classes(fit_part) and _both_classes(holdout):
            metrics["churn_auc"] = float(roc_auc_score(holdout["label"], _predict(_fit(fit_part), holdout)))
            metrics["churn_eval_rows"] = len(holdout)
        train = recent
    metrics["churn_train_rows"] = len(train)
    metrics["churn_label_rate"] = float(train["label"].mean())
    model = _fit(train)
    population = _population(current)
    scores = pd.DataFrame(
        {"customer_id": population["customer_id"].to_numpy(), "churn_risk": _predict(model, population)}
    )
    return scores, metrics
