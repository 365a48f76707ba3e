"""The champion gate: which candidate serves, judged on the last evaluated days against popularity offline and,
once it has served, on what its exposed customers bought against the control arm online."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

BASELINE = "popularity"


def choose_champion(
    history_of_daily_metrics: pd.DataFrame,
    margin: float = 0.05,
    previous_champion: str | None = None,
    metric: str = "NDCG@10",
    last_days: int = 7,
    min_days: int = 3,
    baseline: str = BASELINE,
    blocked: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The model to serve: the best challenger that beats ``baseline`` by ``margin`` on the last evaluated days.

    ``history_of_daily_metrics`` has one row per (``date``, ``model``) with the ``metric`` column (what
    :func:`evaluate_next_day` returned, flattened). A challenger qualifies when, over the last ``last_days``
    evaluated dates, its mean ``metric`` is at least ``(1 + margin)`` times the baseline's and it was evaluated
    on at least ``min_days`` of them. Otherwise the previous champion is kept if it still does at least as well as
    the baseline on those days, else the baseline itself is served. The reason says which case applied.

    ``blocked`` maps a model to why it may not serve (the online verdict: its exposed customers bought less than
    the control arm): a blocked model is neither promoted nor kept. The baseline is never blocked, it is the
    control's own list.
    """
    blocked = {m: why for m, why in (blocked or {}).items() if m != baseline}
    if previous_champion in blocked:
        previous_champion = None
    df = history_of_daily_metrics
    if df.empty or baseline not in set(df["model"]):
        return {
            "champion": previous_champion or baseline,
            "reason": "no evaluated days yet",
            "beats_baseline": False,
            "window": [],
        }
    dates = sorted(df.loc[df["model"] == baseline, "date"].unique())[-last_days:]
    window = df[df["date"].isin(dates)]
    means = window.groupby("model")[metric].mean()
    days = window.groupby("model")["date"].nunique()
    base = float(means[baseline])
    bar = base * (1.0 + margin)
    qualified = means[(means.index != baseline) & (means >= bar) & (days >= min(min_days, len(dates)))]
    qualified = qualified[[m for m in qualified.index if means[m] > base and m not in blocked]]
    info = {
        "window": [str(d) for d in dates],
        "means": {m: round(float(v), 6) for m, v in means.items()},
        "blocked": dict(blocked),
    }
    held_back = "".join(f"; {m} blocked online: {why}" for m, why in sorted(blocked.items()))
    if len(qualified):
        best = str(qualified.idxmax())
        reason = (
            f"{best} mean {metric} {means[best]:.4f} over {len(dates)} day(s) beats {baseline} "
            f"{base:.4f} by {means[best] / base - 1 if base > 0 else float('inf'):.1%} (margin {margin:.0%})"
        )
        choice = {"champion": best, "reason": reason, "beats_baseline": True}
    elif previous_champion and previous_champion in means.index and means[previous_champion] >= base:
        reason = (
            f"no challenger clears {baseline} by {margin:.0%}; keeping previous champion {previous_champion} "
            f"({means[previous_champion]:.4f} vs {base:.4f})"
        )
        choice = {"champion": previous_champion, "reason": reason, "beats_baseline": False}
    else:
        reason = f"no model clears {baseline} ({base:.4f}) by {margin:.0%} over {len(dates)} day(s): serving {baseline}"
        choice = {"champion": baseline, "reason": reason, "beats_baseline": False}
    return {**choice, "reason": choice["reason"] + held_back, **info}


def regression_verdict(
    latest: Mapping[str, Any] | None, metric: str = "NDCG@10", baseline: str = BASELINE
) -> str | None:
    """Why a champion may not serve today, or None: on its latest evaluated day, the paired bootstrap interval
    of its per-customer ``metric`` minus the baseline's (``ml.recommend.evaluation``) lies wholly below zero.

    The window mean that chose it can still be high while the latest version has broken; one noisy day is not
    enough (the interval must exclude zero), a model that is clearly worse than the baseline on the latest
    purchases is. ``latest`` is that day's metrics row of the champion (None: nothing to judge)."""
    if not latest or latest.get("model") == baseline:
        return None
    hi = latest.get(f"{metric}_vs_{baseline}_hi")
    lo = latest.get(f"{metric}_vs_{baseline}_lo")
    if hi is None or pd.isna(hi) or hi >= 0:
        return None
    return (
        f"{latest['model']} is worse than {baseline} on {latest.get('date')}: {metric} difference "
        f"{lo:+.4f}..{hi:+.4f} (95% interval over customers)"
    )
