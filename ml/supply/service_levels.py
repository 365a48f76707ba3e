"""``supply.service_levels``: the service level per demand class that would have met a fill-rate target lately.

The plan's policy is replayed day by day over the last windows on the forecasts stored each day and the actual
demand (:func:`ml.inventory.tuning.recent_service_levels`); out of sample, the levels set one window earlier are
replayed over the days since (:func:`realised_fill`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from ml.inventory.tuning import ForwardReplay, ReplayInputs, recent_service_levels
from ml.summary import summary
from ml.supply.demand import demand_history
from ml.supply.forecasting import FORECASTS
from ml.supply.planning import ORDER_CYCLE_DAYS, TUNED_LEVELS
from ml.warehouse import markdown_table, table_exists


class ServiceLevelSettings(BaseModel):
    target_fill_rate: float = Field(
        default=0.95, gt=0, le=1, description="Unit fill rate the replayed policy must reach over the window."
    )
    window_days: int = Field(
        default=28,
        ge=7,
        description="Demand days replayed, ending on D (fewer, down to 7, while fewer daily forecasts are stored).",
    )
    n_windows: int = Field(
        default=2,
        ge=1,
        description=(
            "Consecutive windows of window_days (as many full ones as the stored forecasts cover) over which the "
            "levels must reach the target (see fill_rule): steadier levels from one day to the next."
        ),
    )
    fill_rule: Literal["every_window", "pooled"] = Field(
        default="pooled",
        description=(
            "every_window: the target on each window (follows the hardest recent month; the safer choice when "
            "the target must hold); pooled: on the units of all windows together (leaner; a hard month is offset "
            "by an easy one). docs/benchmarks/forecast.md says how the default was chosen."
        ),
    )
    order_cycle_days: int = Field(
        default=ORDER_CYCLE_DAYS, ge=1, description="As in the plan: days of demand an order covers beyond s."
    )


@dataclass
class TunedDay:
    rows: pd.DataFrame
    """The day's rows of :data:`~ml.supply.planning.TUNED_LEVELS` (empty when nothing could be tuned)."""
    summary: dict
    fill_rate: float | None = None
    """The newest window's replayed fill rate at the tuned levels (None when nothing was tuned)."""
    reached: bool | None = None
    """Whether the levels reach the target by the fill rule (None when nothing was tuned)."""
    realised: dict = field(default_factory=dict)
    """:func:`realised_fill`'s numbers ({} until levels set a window ago can be replayed)."""


class StoredForecasts:
    """The stored forecasts the replays read (:data:`FORECASTS`' ``as_of_date, sku, horizon_day, mean, q90``), kept
    between the days one run tunes: consecutive days share all but one of their decision days, and a day's
    forecasts are every SKU times 28 days ahead (millions of rows over the windows of a real shop), so a day after
    the first reads only the days it adds. The replays index the rows by their keys, so their order is free."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.frame: pd.DataFrame | None = None
        self.first: date | None = None
        self.last: date | None = None

    def between(self, first: date, last: date) -> pd.DataFrame:
        """The rows made on ``first`` .. ``last`` (both included)."""
        if self.frame is None or first < self.first or last < self.last:
            self.frame = self._read(first, last)
        else:
            kept = self.frame[self.frame["as_of_date"] >= pd.Timestamp(first)]
            start = max(self.last + timedelta(days=1), first)  # a jump past the kept days skips the gap
            added = self._read(start, last) if last >= start else kept.iloc[:0]
            self.frame = pd.concat([kept, added], ignore_index=True)
        self.first, self.last = first, last
        return self.frame

    def _read(self, first: date, last: date) -> pd.DataFrame:
        return self.con.execute(
            f"SELECT as_of_date, sku, horizon_day, mean, q90 FROM {FORECASTS} "
            "WHERE as_of_date <= ? AND as_of_date >= ?",
            [last, first],
        ).df()


def _forecasts_for_replay(
    con: duckdb.DuckDBPyConnection,
    day: date,
    trading: np.ndarray,
    settings: ServiceLevelSettings,
    stored: StoredForecasts | None = None,
) -> pd.DataFrame:
    """The stored forecasts of the replay's decision days: the last ``window_days * n_windows + 1`` trading
    days at most (every horizon day: the forecast's implied dispersion averages over them)."""
    if not len(trading) or not table_exists(con, FORECASTS):
        return pd.DataFrame()
    first = trading[-min(len(trading), settings.window_days * settings.n_windows + 1)]
    return (stored or StoredForecasts(con)).between(pd.Timestamp(first).date(), day)


def realised_fill(
    con: duckdb.DuckDBPyConnection,
    inputs: ReplayInputs | None,
    demand: pd.DataFrame,
    products: pd.DataFrame,
    trading: np.ndarray,
    settings: ServiceLevelSettings,
) -> dict:
    """Out of sample: the levels tuned ``window_days`` trading days before D, replayed over the days since (up to
    D, nothing later) exactly as they were tuned (``inputs``: the day's replay forecasts and ``demand``, made
    ready; None when there are none). {} until such levels and forecasts exist."""
    from ml.forecast.marts import demand_classes_as_of

    days = settings.window_days
    if len(trading) < days + 1 or inputs is None or not table_exists(con, TUNED_LEVELS):
        return {}
    set_on = pd.Timestamp(trading[-(days + 1)])
    stored = con.execute(f"SELECT * FROM {TUNED_LEVELS} WHERE as_of_date = ?", [set_on.date()]).df()
    if stored.empty:
        return {}
    forward = ForwardReplay.from_inputs(inputs, products, order_cycle=settings.order_cycle_days)
    window = forward.window(set_on, days, demand_classes_as_of(demand, set_on))  # the plan's classes that day
    if window is None:
        return {}
    result = forward.run(
        window, dict(zip(stored["demand_class"], stored["service_level"].astype(float), strict=True))
    )
    out = {
        "realised_levels_set_on": str(set_on.date()),
        "realised_fill_rate": float(result.fill_rate),
        "realised_avg_inventory_units": float(result.avg_inventory_units),
        "realised_target_met": bool(result.fill_rate >= float(stored["target_fill_rate"].iloc[0])),
    }
    # the yardstick out of sample too: the naive cover tuned that day (NaN while it could not be tuned)
    naive = forward.run_naive(window, stored["naive_cover_days"].iloc[0])
    if naive is not None:
        out |= {
            "realised_naive_fill_rate": float(naive.fill_rate),
            "realised_naive_avg_inventory_units": float(naive.avg_inventory_units),
        }
        if naive.avg_inventory_units:
            out["realised_inventory_vs_naive"] = float(
                result.avg_inventory_units / naive.avg_inventory_units - 1
            )
    return out


def tune_day(
    con: duckdb.DuckDBPyConnection,
    day: date,
    settings: ServiceLevelSettings,
    products: pd.DataFrame,
    stored: StoredForecasts | None = None,
) -> TunedDay:
    """Tune the levels of ``day`` and replay the levels set a window ago (``products``: ``dim_products``'s ``sku,
    lead_time_days, price``; ``stored``: the forecasts kept from the day before, when one run tunes several)."""
    from ml.forecast.marts import demand_classes_as_of

    demand = demand_history(con, day)
    trading = np.sort(pd.to_datetime(demand["demand_date"]).unique())
    forecasts = _forecasts_for_replay(con, day, trading, settings, stored)
    # made ready once for the tuning's windows and the out-of-sample replay
    inputs = ReplayInputs(forecasts, demand) if len(forecasts) and len(demand) else None
    result = recent_service_levels(
        forecasts,
        demand,
        products,
        demand_classes_as_of(demand, day),  # the classes the plan uses on the day
        target=settings.target_fill_rate,
        window_days=settings.window_days,
        n_windows=settings.n_windows,
        order_cycle=settings.order_cycle_days,
        fill_rule=settings.fill_rule,
        inputs=inputs,
    )
    realised = realised_fill(con, inputs, demand, products, trading, settings)
    if isinstance(result, str):
        return TunedDay(
            rows=pd.DataFrame(), summary=summary(0, {"note": result, **realised}), realised=realised
        )
    rows = pd.DataFrame(
        {
            "as_of_date": pd.Timestamp(day).date(),
            "demand_class": list(result.levels),
            "service_level": list(result.levels.values()),
            "uniform_level": result.uniform_level,
            "window_start": result.window[0],
            "window_end": result.window[1],
            "target_fill_rate": settings.target_fill_rate,
            # the yardstick's cover, so the days after can replay it too (NaN until it can be tuned)
            "naive_cover_days": np.nan if result.naive_cover_days is None else result.naive_cover_days,
        }
    )
    ours, uniform, naive = result.by_class, result.uniform, result.naive
    metrics = {
        "window": f"{result.window[0]} .. {result.window[1]}",  # the newest; the numbers below are its
        "windows_replayed": int(result.n_windows),
        "fill_rule": settings.fill_rule,
        "skus_replayed": int(result.n_skus),
        "replay_fill_rate": float(ours.fill_rate),
        "replay_avg_inventory_units": float(ours.avg_inventory_units),
        "uniform_level": float(result.uniform_level),
        "uniform_avg_inventory_units": float(uniform.avg_inventory_units),
        **realised,
    }
    if naive is not None:  # the yardstick needs 28 days of demand before the window
        metrics |= {
            "naive_cover_days": float(result.naive_cover_days),
            "naive_fill_rate": float(naive.fill_rate),
            "naive_avg_inventory_units": float(naive.avg_inventory_units),
        }
        if naive.avg_inventory_units:
            metrics["inventory_vs_naive"] = float(ours.avg_inventory_units / naive.avg_inventory_units - 1)
    return TunedDay(
        rows=rows,
        # where the stock sits and what it buys, per class, against the naive cover on the same SKUs
        summary=summary(len(rows), metrics, {"levels": markdown_table(result.classes, 4)}),
        fill_rate=float(ours.fill_rate),
        reached=bool(result.reached),
        realised=realised,
    )


def replay_check(days: dict[date, TunedDay], settings: ServiceLevelSettings) -> tuple[bool, dict]:
    """Whether every day tuned reached the target by the fill rule, and the numbers behind it: days tuned, the
    days that missed (with the newest window's fill rate, for the planner) and, out of sample, how many days the
    levels set a window earlier fell short since."""
    tuned = {d: t for d, t in days.items() if t.reached is not None}
    missed = {d.isoformat(): t.fill_rate for d, t in tuned.items() if not t.reached}
    realised = [t.realised["realised_fill_rate"] for t in days.values() if t.realised]
    return not missed, {
        "days_tuned": len(tuned),
        "days_missing_target": len(missed),
        "days_realised": len(realised),
        "days_realised_below_target": sum(f < settings.target_fill_rate for f in realised),
        **({"missed": missed} if missed else {}),
    }
