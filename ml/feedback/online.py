"""Online metrics of the served lists and the uplift of the treatment arm over the control arm.

The unit is the exposed customer (``marts.fct_exposed_customers``: one row per customer, day, placement and list
version). A metric is a ratio of sums over customers: click-through and add-to-cart per impression, conversion,
revenue and margin per exposed customer-day. Intervals come from a bootstrap over customers (each arm resampled
on its own, a customer's days kept together), so they account for the customer being the unit that was assigned.

Day D measures the exposures of D-1 (:data:`MATURITY_DAYS`): a sale is credited to an impression up to 24 hours
later, so D-1's credit is complete once D's marts are built, while D's is not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

from ml.sources.schema import EXPERIMENT_ARMS
from ml.summary import summary
from ml.warehouse import markdown_table, table_exists

EXPOSURES = "marts.fct_exposed_customers"
ONLINE_METRICS = "feedback.online_metrics"
ONLINE_UPLIFT = "feedback.online_uplift"
MATURITY_DAYS = 1
"""Days between an exposure and the run that measures it: the attribution window (24 h) must have closed."""
TREATMENT, CONTROL = EXPERIMENT_ARMS
RECOMMENDER_PLACEMENT = "for_you"
"""Where the recommender's lists are shown: what the champion gate and the retrain trigger judge (the category
pages' experiment has its own placement, ``category_page``, and is only reported)."""
RESAMPLES = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class Metric:
    name: str
    numerator: str
    denominator: str | None
    """``None``: per exposed customer-day (the customer's number of exposure days)."""
    description: str


METRICS: tuple[Metric, ...] = (
    Metric("ctr", "clicks", "impressions", "clicks per impression"),
    Metric("cart_rate", "carts", "impressions", "add-to-carts per impression"),
    Metric(
        "conversion", "converted", None, "share of exposed customer-days with a purchase credited to the list"
    ),
    Metric(
        "credited_revenue", "credited_revenue", None, "revenue credited to the list per exposed customer-day"
    ),
    Metric(
        "credited_margin", "credited_margin", None, "margin credited to the list per exposed customer-day"
    ),
    Metric("revenue", "revenue", None, "everything the exposed customer bought that day, per customer-day"),
    Metric("margin", "margin", None, "margin of everything bought that day, per exposed customer-day"),
)
METRIC_BY_NAME = {m.name: m for m in METRICS}
GATE_METRIC = "revenue"
"""What the champion gate compares: all purchases of exposed customers, attributed or not, so a list that only
claims credit for what customers would have bought anyway cannot pass for uplift."""

_VERSION = re.compile(r"^(?P<name>.+?)-\d{4}-\d{2}-\d{2}(-[0-9a-f]{8})?$")


def model_name(model_version: str) -> str:
    """``ease-2025-01-09-1a2b3c4d`` -> ``ease`` (:func:`ml.recommend.bundles.bundle_version`), ``oracle-2025-01-09``
    -> ``oracle``; other strings as they are."""
    match = _VERSION.match(str(model_version))
    return match["name"] if match else str(model_version)


def read_exposures(con: duckdb.DuckDBPyConnection, start: date, end: date) -> pd.DataFrame:
    """Rows of :data:`EXPOSURES` with ``start <= exposure_date <= end``, plus ``model_name``."""
    if not table_exists(con, EXPOSURES):
        return pd.DataFrame()
    rows = con.execute(
        f"SELECT * FROM {EXPOSURES} WHERE exposure_date BETWEEN ? AND ? "
        "ORDER BY exposure_date, placement, customer_id, model_version",
        [start, end],
    ).df()
    rows["exposure_date"] = pd.to_datetime(rows["exposure_date"]).dt.date
    rows["converted"] = rows["converted"].astype(float)
    rows["model_name"] = [model_name(v) for v in rows["model_version"]]
    return rows


def _per_customer(rows: pd.DataFrame, metric: Metric) -> tuple[np.ndarray, np.ndarray]:
    """Numerator and denominator summed per customer (a customer's days stay together when resampled)."""
    den = rows[metric.denominator] if metric.denominator else pd.Series(1.0, index=rows.index)
    grouped = pd.DataFrame({"customer_id": rows["customer_id"], "num": rows[metric.numerator], "den": den})
    sums = grouped.groupby("customer_id", sort=True)[["num", "den"]].sum()
    return sums["num"].to_numpy(float), sums["den"].to_numpy(float)


def _ratio(num: np.ndarray, den: np.ndarray) -> float:
    total = den.sum()
    return float(num.sum() / total) if total > 0 else float("nan")


def metric_value(rows: pd.DataFrame, metric: Metric) -> float:
    """``metric`` over ``rows`` (a ratio of sums over customers; NaN when its denominator is 0)."""
    return _ratio(*_per_customer(rows, metric))


def _bootstrap_ratios(
    num: np.ndarray, den: np.ndarray, rng: np.random.Generator, resamples: int
) -> np.ndarray:
    """``resamples`` ratios of sums over customers drawn with replacement (in chunks, to bound memory)."""
    out = np.empty(resamples)
    chunk = max(1, 2_000_000 // max(len(num), 1))
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, len(num), size=(min(chunk, resamples - start), len(num)))
        den_sums = den[idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + len(idx)] = np.where(den_sums > 0, num[idx].sum(axis=1) / den_sums, np.nan)
    return out


def compare_arms(
    treatment: pd.DataFrame,
    control: pd.DataFrame,
    metric: Metric,
    seed: int,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> dict:
    """Treatment and control values of ``metric``, their difference and its bootstrap interval, and the
    relative uplift (difference over control). Intervals are NaN when an arm has no customers."""
    t_num, t_den = _per_customer(treatment, metric)
    c_num, c_den = _per_customer(control, metric)
    t_value, c_value = _ratio(t_num, t_den), _ratio(c_num, c_den)
    low = high = float("nan")
    if len(t_num) and len(c_num) and resamples > 0:
        rng = np.random.default_rng(seed)
        differences = _bootstrap_ratios(t_num, t_den, rng, resamples) - _bootstrap_ratios(
            c_num, c_den, rng, resamples
        )
        tail = (1.0 - level) / 2.0
        low, high = (float(q) for q in np.nanquantile(differences, [tail, 1.0 - tail]))
    difference = t_value - c_value
    return {
        "metric": metric.name,
        "treatment_customers": len(t_num),
        "control_customers": len(c_num),
        "treatment": t_value,
        "control": c_value,
        "difference": difference,
        "ci_low": low,
        "ci_high": high,
        "relative_uplift": difference / c_value if c_value else float("nan"),
    }


def group_metrics(rows: pd.DataFrame) -> pd.DataFrame:
    """Every metric by exposure day, placement, model and arm, with exposed customers and impressions."""
    keys = ["exposure_date", "placement", "model_name", "model_version", "arm"]
    if rows.empty:
        return pd.DataFrame(columns=[*keys, "exposed_customers", "impressions", *(m.name for m in METRICS)])
    records = []
    for key, group in rows.groupby(keys, sort=True):
        record = dict(zip(keys, key, strict=True))
        record["exposed_customers"] = int(group["customer_id"].nunique())
        record["impressions"] = int(group["impressions"].sum())
        for metric in METRICS:
            record[metric.name] = metric_value(group, metric)
        records.append(record)
    return pd.DataFrame(records)


def uplift_table(rows: pd.DataFrame, seed: int, resamples: int = RESAMPLES) -> pd.DataFrame:
    """Treatment vs control for every metric and placement of ``rows`` (one or several days)."""
    records = []
    for placement, group in rows.groupby("placement", sort=True):
        treatment, control = group[group["arm"] == TREATMENT], group[group["arm"] == CONTROL]
        served = ", ".join(sorted(treatment["model_name"].unique()))
        for metric in METRICS:
            records.append(
                {"placement": placement, "treatment_model": served}
                | compare_arms(treatment, control, metric, seed, resamples)
            )
    return pd.DataFrame(records)


def online_metrics_day(
    con: duckdb.DuckDBPyConnection, day: date, resamples: int = RESAMPLES
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of :data:`ONLINE_METRICS` and :data:`ONLINE_UPLIFT` that run ``day`` measures: the exposures of
    ``day - MATURITY_DAYS``. Both are dated by ``as_of_date`` (the run) and carry ``exposure_date``."""
    exposed_on = day - timedelta(days=MATURITY_DAYS)
    rows = read_exposures(con, exposed_on, exposed_on)
    if rows.empty:
        return pd.DataFrame(), pd.DataFrame()
    as_of = pd.Timestamp(day).date()
    metrics = group_metrics(rows)
    metrics.insert(0, "as_of_date", as_of)
    uplift = uplift_table(rows, seed=exposed_on.toordinal(), resamples=resamples)
    uplift.insert(0, "as_of_date", as_of)
    uplift.insert(1, "exposure_date", exposed_on)
    return metrics, uplift


def uplift_values(
    uplift: pd.DataFrame, prefix: Callable[[dict], str], arm_names: tuple[str, str] = (TREATMENT, CONTROL)
) -> dict[str, float]:
    """Each row of an uplift table (:func:`compare_arms` records) as numbers that plot over partitions:
    ``<prefix>_<arm>`` for both arms, ``<prefix>_uplift`` and its interval bounds."""
    values = {}
    for row in uplift.to_dict(orient="records"):
        name = prefix(row)
        values[f"{name}_{arm_names[0]}"] = row["treatment"]
        values[f"{name}_{arm_names[1]}"] = row["control"]
        values[f"{name}_uplift"] = row["difference"]
        values[f"{name}_uplift_ci_low"] = row["ci_low"]
        values[f"{name}_uplift_ci_high"] = row["ci_high"]
    return values


def online_summary(metrics: pd.DataFrame, uplift: pd.DataFrame) -> dict:
    """For the UI: every metric of each arm and the uplift with its interval (they plot over partitions), the
    arm split, and both tables."""
    if metrics.empty:
        return summary(0)
    values: dict[str, float | int | str] = {"exposure_date": str(metrics["exposure_date"].iloc[0])}
    for arm in (TREATMENT, CONTROL):
        values[f"exposed_customers_{arm}"] = int(
            metrics.loc[metrics["arm"] == arm, "exposed_customers"].sum()
        )
    values |= uplift_values(
        uplift,
        lambda row: (
            row["metric"]
            if row["placement"] == RECOMMENDER_PLACEMENT
            else f"{row['placement']}_{row['metric']}"
        ),
    )
    shown = uplift[["placement", "metric", "treatment", "control", "difference", "ci_low", "ci_high"]]
    return summary(
        len(metrics),
        metrics=values,
        markdown={
            "uplift (treatment - control, 95% bootstrap interval over customers)": markdown_table(
                shown, float_digits=4
            ),
            "by model, placement and arm": markdown_table(
                metrics.drop(columns=["as_of_date", "exposure_date"]), float_digits=4
            ),
        },
    )


def online_verdicts(
    con: duckdb.DuckDBPyConnection,
    day: date,
    window_days: int = 7,
    metric: str = GATE_METRIC,
    resamples: int = RESAMPLES,
) -> dict[str, dict]:
    """For each model the treatment arm was served by on the mature exposure days of the last ``window_days``
    before ``day``: its ``metric`` against the control arm on the same days, pooled over customers.
    ``harmful`` is True when the whole 95% interval of the difference lies below zero. The metric is
    ``metric`` for every model."""
    last = day - timedelta(days=MATURITY_DAYS)
    rows = read_exposures(con, last - timedelta(days=window_days - 1), last)
    if rows.empty:
        return {}
    rows = rows[rows["placement"] == RECOMMENDER_PLACEMENT]
    verdicts = {}
    treatment = rows[rows["arm"] == TREATMENT]
    for name, served in treatment.groupby("model_name", sort=True):
        days = served["exposure_date"].unique()
        control = rows[(rows["arm"] == CONTROL) & rows["exposure_date"].isin(days)]
        result = compare_arms(
            served, control, METRIC_BY_NAME[metric], seed=last.toordinal(), resamples=resamples
        )
        result.pop("metric")
        result["days"] = len(days)
        result["harmful"] = bool(result["ci_high"] < 0)
        verdicts[str(name)] = result
    return verdicts


def blocked_models(verdicts: dict[str, dict]) -> dict[str, str]:
    """The models :func:`online_verdicts` found harmful, each with why (the champion gate's ``blocked``)."""
    return {
        name: (
            f"{GATE_METRIC} per exposed customer-day {v['difference']:+.2f} vs control "
            f"(95% CI {v['ci_low']:+.2f} to {v['ci_high']:+.2f}) over {v['days']} day(s)"
        )
        for name, v in verdicts.items()
        if v["harmful"]
    }


def ctr_drop(
    con: duckdb.DuckDBPyConnection,
    day: date,
    drop: float = 0.2,
    baseline_days: int = 7,
    min_baseline_days: int = 3,
) -> tuple[bool, str]:
    """Whether the served lists lost their pull: the treatment arm's click-through on the latest mature day is
    more than ``drop`` below its mean over the ``baseline_days`` before (needs ``min_baseline_days`` of them)."""
    last = day - timedelta(days=MATURITY_DAYS)
    rows = read_exposures(con, last - timedelta(days=baseline_days), last)
    if len(rows):
        rows = rows[(rows["arm"] == TREATMENT) & (rows["placement"] == RECOMMENDER_PLACEMENT)]
    if rows.empty or not (rows["exposure_date"] == last).any():
        return False, f"no treatment exposures on {last}"
    daily = rows.groupby("exposure_date")[["clicks", "impressions"]].sum()
    ctr = daily["clicks"] / daily["impressions"]
    latest, before = float(ctr.iloc[-1]), ctr.iloc[:-1]
    if len(before) < min_baseline_days:
        return False, f"{len(before)} earlier exposure day(s), need {min_baseline_days} to judge a drop"
    reference = float(before.mean())
    triggered = latest < (1.0 - drop) * reference
    verb = "fell" if triggered else "held"
    return triggered, (
        f"treatment CTR {latest:.2%} on {last} {verb} against {reference:.2%} over the {len(before)} days before "
        f"(retrain below {1 - drop:.0%} of it)"
    )
