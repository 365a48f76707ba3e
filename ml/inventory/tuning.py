"""Choosing service levels on replayed validation windows (never on the window being judged).

A policy parameter (the cycle service level of the forecast policy, the cover days of the naive one) is tuned by
replaying windows before the origin: the smallest value on a grid whose replay reaches the target fill rate on
every window (or over all windows together: :func:`reaches`). :func:`levels_by_class` then refines one level
into one per demand class by marginal analysis: a unit of safety stock buys more fill on some classes than on
others (an erratic SKU's tail is short, a lumpy SKU's is a few huge orders), so one level for all SKUs holds
more stock than needed for the same total fill rate.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import reduce

import numpy as np
import pandas as pd

from ml.forecast.quantiles import history_dispersion
from ml.inventory.policy import implied_dispersion
from ml.inventory.simulate import (
    ForecastIntervals,
    ReplayResult,
    ReplaySums,
    SeriesReplay,
    forecast_policy,
    initial_stock,
    naive_policy,
    replay,
    replay_series,
)

FILL_RULES = ("every_window", "pooled")
"""How several windows' replays must reach the fill-rate target: each of them, or their units together."""


def reaches(results: Sequence[ReplayResult], target: float, rule: str = "every_window") -> bool:
    """Whether replays of several windows reach ``target``: ``every_window``, the worst window's fill rate (a
    level that holds in the hardest recent month); ``pooled``, the units served over all windows together (what
    the windows add up to: a hard month is offset by an easy one)."""
    if rule == "every_window":
        return min(r.fill_rate for r in results) >= target
    if rule == "pooled":
        demand = sum(r.demand_units for r in results)
        return demand <= 0 or 1.0 - sum(r.lost_units for r in results) / demand >= target
    raise ValueError(f"unknown fill rule {rule!r}; one of {FILL_RULES}")


def smallest_feasible(
    grid: Sequence, run: Callable, windows: Sequence, target: float, rule: str = "every_window"
):
    """``(value, results)``: the first ``grid`` value whose ``run(value, window)`` reaches ``target`` fill rate
    over the windows by ``rule`` (:func:`reaches`; else the last value), with the per-window results.

    Found by bisection: a higher service level or a longer cover holds more stock at every decision, so the fill
    rate rises along the grid and the values reaching the target are a tail of it. That takes about log2(n)
    replays per window instead of up to n (the naive cover grid has 161 values), and the same answer wherever
    the fill rate does rise along the grid.
    """
    results: dict[int, list] = {}

    def feasible(i: int) -> bool:
        if i not in results:
            results[i] = [run(grid[i], w) for w in windows]
        return reaches(results[i], target, rule)

    lo, hi = 0, len(grid) - 1
    if not feasible(hi):
        return grid[hi], results[hi]
    while lo < hi:
        mid = (lo + hi) // 2
        if feasible(mid):
            hi = mid
        else:
            lo = mid + 1
    return grid[lo], results[lo]


def class_levels(level, classes: Sequence) -> dict:
    """The service level of each of ``classes``: ``level`` itself when it is one number, else from a dict demand
    class -> level (a class it does not name gets the highest level in it: the cautious choice)."""
    if not isinstance(level, dict):
        return dict.fromkeys(classes, level)
    top = max(level.values())
    return {c: level.get(c, top) for c in classes}


def per_series_levels(level, classes: Sequence):
    """The service level of each series (:func:`class_levels`): ``level`` itself when it is one number."""
    if not isinstance(level, dict):
        return level
    by_class = class_levels(level, set(classes))
    return np.array([by_class[c] for c in classes], dtype=float)


class ClassReplays:
    """A window's replay at any service level, one number or a dict demand class -> level, from one replay per
    uniform level at most.

    Tuning replays the same window at many levels (a grid, then class-by-class moves). SKUs do not interact in
    the replay, so a policy giving each class its own level scores as the sum of each class's totals in the
    uniform replay at that class's level (:class:`ml.inventory.simulate.ReplaySums`): the moves cost additions
    instead of replays. ``replay_at(level)`` replays the window with one level for all SKUs.
    """

    def __init__(self, replay_at: Callable[[float], SeriesReplay], classes: Sequence):
        self.replay_at = replay_at
        self.classes = np.asarray(classes, dtype=object)
        self.names = sorted(set(self.classes))
        self._sums: dict[float, dict] = {}

    def _at(self, level: float) -> dict:
        if level not in self._sums:
            series = self.replay_at(level)
            self._sums[level] = {c: series.sums(self.classes == c) for c in self.names}
        return self._sums[level]

    def by_class(self, level) -> dict[str, ReplaySums]:
        """Each class's sums at its level (:func:`class_levels`)."""
        return {c: self._at(lvl)[c] for c, lvl in class_levels(level, self.names).items()}

    def __call__(self, level) -> ReplayResult:
        """The replay at ``level``: the sum of its classes'."""
        return reduce(operator.add, self.by_class(level).values()).result()


def mean_stock(results) -> float:
    return float(np.mean([r.avg_inventory_units for r in results]))


def levels_by_class(
    grid: Sequence[float],
    run: Callable,
    windows: Sequence,
    target: float,
    start: float,
    classes: Sequence[str],
    max_rounds: int = 20,
    progress: Callable[[str], None] | None = None,
    rule: str = "every_window",
):
    """``(levels, results)``: one service level per class, from ``start`` for all, by greedy moves on ``grid``.

    ``run(levels, window)`` replays a window with ``levels`` (class -> level). A move lowers one class by a grid
    step, or lowers one class and raises another (stock shifted to where it buys more fill); the move kept in
    each round is the one with the least mean stock over the windows among those still reaching ``target`` (by
    ``rule``, :func:`reaches`), and only if it holds less stock than the current levels. Stops when no move
    helps.
    """
    grid = list(grid)
    levels = {c: start for c in classes}
    best = [run(levels, w) for w in windows]
    for round_ in range(max_rounds):
        moves = []
        for down in classes:
            i = grid.index(levels[down])
            if i == 0:
                continue
            moves.append({down: grid[i - 1]})
            for up in classes:
                j = grid.index(levels[up])
                if up != down and j + 1 < len(grid):
                    moves.append({down: grid[i - 1], up: grid[j + 1]})
        found = None
        for move in moves:
            trial = {**levels, **move}
            res = [run(trial, w) for w in windows]
            if reaches(res, target, rule) and mean_stock(res) < mean_stock(found[1] if found else best):
                found = (trial, res)
        if found is None:
            break
        levels, best = found
        if progress:
            progress(f"round {round_ + 1}: {levels}, mean stock {mean_stock(best):,.0f}")
    return levels, best


# Cycle service levels tried (fine near 1: lumpy SKUs need the far tail) and naive cover days.
ALPHA_GRID = (0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9997, 0.9998, 0.9999)
COVER_GRID = tuple(float(c) for c in np.arange(0, 80.5, 0.5))
NAIVE_WINDOW = 28  # days in the naive policy's moving average


@dataclass
class RecentTuning:
    """What :func:`recent_service_levels` found: the levels, and the replays that justify them (the newest
    window's, when several were replayed)."""

    window: tuple  # first and last demand day of the newest window
    n_windows: int
    n_skus: int
    uniform_level: float
    levels: dict  # demand class -> service level
    by_class: ReplayResult  # the policy at ``levels``
    uniform: ReplayResult  # the policy at ``uniform_level`` for all SKUs
    naive_cover_days: float | None
    naive: ReplayResult | None  # moving-average demand plus a fixed cover, tuned to the same target
    classes: pd.DataFrame  # the newest window per demand class (:func:`class_table`)
    # whether ``levels`` reach the target over all the windows replayed, by the tuning's fill rule
    reached: bool


@dataclass
class _Window:
    """One replay window: its SKUs, the daily forecasts read at its decision days, its demand and products."""

    days: pd.DatetimeIndex  # decision days t_0 .. t_k; demand days are t_1 .. t_k
    means: list
    phi: np.ndarray
    history: np.ndarray
    demand: np.ndarray
    lead: np.ndarray
    price: np.ndarray
    classes: np.ndarray
    intervals: ForecastIntervals
    """What the policy reads of ``means`` at the replay's order cycle (the same at every level it is replayed at)."""


def _prepare(forecasts: pd.DataFrame, demand: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stored forecasts with typed keys, and the demand as a sku x trading-day grid."""
    fc = forecasts.assign(
        as_of_date=pd.to_datetime(forecasts["as_of_date"]), sku=forecasts["sku"].astype(str)
    )
    dem = demand.assign(demand_date=pd.to_datetime(demand["demand_date"]), sku=demand["sku"].astype(str))
    grid = dem.pivot_table(index="sku", columns="demand_date", values="units", aggfunc="sum", fill_value=0.0)
    return fc, grid


class ReplayInputs:
    """Stored forecasts and demand made ready once for every replay of a day (the tuning's windows and the
    out-of-sample replay): typed keys, the demand as a sku x trading-day grid, and the forecasts' days and SKUs
    as integer codes, so a window picks its rows by integer lookups instead of string lookups over every row (a
    real shop's windows hold millions)."""

    def __init__(self, forecasts: pd.DataFrame, demand: pd.DataFrame):
        self.fc, self.grid = _prepare(forecasts, demand)
        self.day_codes, self.days = pd.factorize(self.fc["as_of_date"], sort=True)
        self.sku_codes, self.skus = pd.factorize(self.fc["sku"], sort=True)
        self.horizons = self.fc["horizon_day"].to_numpy(dtype=int)
        self.means = self.fc["mean"].to_numpy(dtype=float)
        self.q90 = self.fc["q90"].to_numpy(dtype=float)
        self.made = set(self.days)
        """The days with stored forecasts."""

    def skus_on(self, day) -> set:
        """The SKUs forecast on ``day``."""
        at = self.days.get_indexer([pd.Timestamp(day)])[0]
        if at < 0:
            return set()
        return set(self.skus[np.unique(self.sku_codes[self.day_codes == at])])


def _positions(uniques, wanted) -> np.ndarray:
    """For each of ``uniques``, its position in ``wanted`` (-1 when absent), with one -1 appended so that the
    code -1 (a missing key) looks up -1 too."""
    positions = np.full(len(uniques) + 1, -1)
    found = pd.Index(uniques).get_indexer(wanted)
    positions[found[found >= 0]] = np.arange(len(wanted))[found >= 0]
    return positions


def _replay_window(
    inputs: ReplayInputs, decision_days, products, classes, default_lead_time, order_cycle: int
) -> _Window | None:
    grid = inputs.grid
    skus = np.array(sorted(inputs.skus_on(decision_days[0]) & set(grid.index)))
    if len(skus) == 0:
        return None
    # The window's forecasts as one (day, sku, horizon) array: one pass over the rows instead of a pivot per day.
    d = _positions(inputs.days, decision_days)[inputs.day_codes]
    i = _positions(inputs.skus, skus)[inputs.sku_codes]
    rows = (d >= 0) & (i >= 0)
    d, i, h = d[rows], i[rows], inputs.horizons[rows] - 1
    mean, q90 = (np.zeros((len(decision_days), len(skus), h.max() + 1)) for _ in range(2))
    mean[d, i, h] = inputs.means[rows]
    q90[d, i, h] = inputs.q90[rows]
    means = list(mean)
    g = grid.reindex(skus)
    history = g.loc[:, : decision_days[0]].to_numpy(dtype=float)
    # As the plan does: the larger of the forecast's dispersion and the SKU's own history's.
    implied = implied_dispersion(means[0], q90[0])
    prod = (
        products.assign(sku=products["sku"].astype(str)).drop_duplicates("sku").set_index("sku").reindex(skus)
    )
    lead = (
        pd.to_numeric(prod.get("lead_time_days"), errors="coerce")
        .fillna(default_lead_time)
        .astype(int)
        .to_numpy()
    )
    return _Window(
        days=decision_days,
        means=means,
        intervals=ForecastIntervals.of(means, lead, order_cycle=order_cycle),
        phi=np.maximum(implied, history_dispersion(history)),
        history=history,
        demand=g.loc[:, decision_days[1:]].to_numpy(dtype=float),
        lead=lead,
        price=pd.to_numeric(prod.get("price"), errors="coerce").fillna(1.0).to_numpy(dtype=float),
        classes=classes.rename(index=str).reindex(skus).fillna("unclassified").to_numpy(dtype=object),
    )


def _replay_naive(w: _Window, cover: float, order_cycle: int) -> ReplayResult:
    """The yardstick on a window: a moving average of the last NAIVE_WINDOW days plus ``cover`` days of it."""
    return _replay_naive_series(w, cover, order_cycle).sums().result()


def _replay_naive_series(w: _Window, cover: float, order_cycle: int) -> SeriesReplay:
    pol = naive_policy(w.history, w.demand, w.lead, cover, window=NAIVE_WINDOW, order_cycle=order_cycle)
    return replay_series(w.demand, pol, w.lead, initial_stock(pol), w.price)


def class_table(levels: dict, ours: dict, naive: SeriesReplay | None, classes: np.ndarray) -> pd.DataFrame:
    """Per demand class on one window: SKUs, demand, the tuned level, fill rate and average stock, and the naive
    cover's fill rate and stock on the same SKUs (where stock sits, and what it buys)."""
    rows = []
    for c, sums in ours.items():
        r = sums.result()
        row = {
            "demand_class": c,
            "skus": sums.n_series,
            "demand_units": r.demand_units,
            "service_level": class_levels(levels, [c])[c],
            "fill_rate": r.fill_rate,
            "avg_stock_units": r.avg_inventory_units,
        }
        if naive is not None:
            nr = naive.sums(classes == c).result()
            row |= {"naive_fill_rate": nr.fill_rate, "naive_avg_stock_units": nr.avg_inventory_units}
        rows.append(row)
    return pd.DataFrame(rows)


def recent_service_levels(
    forecasts: pd.DataFrame,
    demand: pd.DataFrame,
    products: pd.DataFrame,
    classes: pd.Series,
    target: float = 0.95,
    window_days: int = 28,
    n_windows: int = 1,
    min_window_days: int = 7,
    order_cycle: int = 7,
    default_lead_time: int = 7,
    fill_rule: str = "every_window",
    inputs: ReplayInputs | None = None,
) -> RecentTuning | str:
    """Service levels per demand class that would have reached ``target`` fill rate over the shop's last days.

    Replays the last ``window_days`` demand days (fewer, down to ``min_window_days``, when fewer daily forecasts
    are stored) exactly as the plan runs: at the end of each day the (s, S) policy reads that day's stored
    forecast; orders arrive after the product's lead time; lost sales. With ``n_windows`` > 1, that many
    consecutive windows of ``window_days`` ending on the last day (as many full ones as the stored forecasts
    cover) must reach the target by ``fill_rule`` (:func:`reaches`: each of them, the default, or their units
    together), which steadies the levels from one day to the next. The levels are the
    smallest uniform one reaching the target (:func:`smallest_feasible`), refined per class
    (:func:`levels_by_class`); a naive moving-average cover policy tuned to the same target is the yardstick
    (when 28 days of demand precede every window; else ``naive`` is None).

    ``forecasts``: ``supply.demand_forecast`` rows (``as_of_date, sku, horizon_day, mean, q90``) up to the
    window's end; ``demand``: ``fct_daily_sku_demand`` rows (``sku, demand_date, units``) up to it;
    ``products``: ``dim_products`` (``sku, lead_time_days, price``); ``classes``: sku -> demand class (a SKU
    without one is tuned as ``unclassified``); ``inputs``: the same forecasts and demand already made ready (when
    the caller replays them again). Returns a reason string when there is too little to replay.
    """
    if forecasts.empty or demand.empty:
        return "no stored forecasts or demand to replay"
    inputs = inputs if inputs is not None else ReplayInputs(forecasts, demand)
    days, made = inputs.grid.columns, inputs.made
    # The replayable demand days: the latest run of consecutive trading days whose previous day has a forecast,
    # and a forecast on the last day too (its order is placed, though nothing after it is replayed).
    k = 0
    while k < min(window_days * n_windows, len(days) - 1) and days[-1 - k] in made and days[-2 - k] in made:
        k += 1
    if k < min_window_days:
        return f"{k} replayable days with stored forecasts (need at least {min_window_days})"
    # Newest window first: the last min(k, window_days) days, then older full windows while the run lasts.
    spans, end = [], len(days) - 1
    while end - (len(days) - 1 - k) >= (window_days if spans else min_window_days):
        length = min(window_days, end - (len(days) - 1 - k))
        spans.append(days[end - length : end + 1])
        end -= length
    windows = [
        w
        for w in (_replay_window(inputs, d, products, classes, default_lead_time, order_cycle) for d in spans)
        if w
    ]
    if not windows:
        return "no SKU has both a forecast and demand in the window"

    def replay_at(w: _Window, level: float) -> SeriesReplay:
        pol = forecast_policy(w.intervals, w.phi, w.lead, level)
        return replay_series(w.demand, pol, w.lead, initial_stock(pol), w.price)

    replays = {id(w): ClassReplays(lambda level, w=w: replay_at(w, level), w.classes) for w in windows}

    def ours(w: _Window, level):
        return replays[id(w)](level)

    naive_series: dict[tuple, SeriesReplay] = {}  # the newest window's is kept for the per-class table

    def naive(w: _Window, cover):
        naive_series[id(w), cover] = _replay_naive_series(w, cover, order_cycle)
        return naive_series[id(w), cover].sums().result()

    uniform_level, uniform = smallest_feasible(
        ALPHA_GRID, lambda a, w: ours(w, a), windows, target, fill_rule
    )
    all_classes = sorted(set().union(*(set(w.classes) for w in windows)))
    levels, by_class = levels_by_class(
        ALPHA_GRID, lambda a, w: ours(w, a), windows, target, uniform_level, all_classes, rule=fill_rule
    )
    cover = naive_result = None
    if all(ForwardReplay.naive_possible(w) for w in windows):
        cover, naive_result = smallest_feasible(
            COVER_GRID, lambda c, w: naive(w, c), windows, target, fill_rule
        )
    newest = windows[0]
    return RecentTuning(
        window=(newest.days[1].date(), newest.days[-1].date()),
        n_windows=len(windows),
        n_skus=len(newest.classes),
        uniform_level=uniform_level,
        levels=levels,
        by_class=by_class[0],
        uniform=uniform[0],
        naive_cover_days=cover,
        naive=naive_result[0] if naive_result else None,
        classes=class_table(
            levels,
            replays[id(newest)].by_class(levels),
            naive_series.get((id(newest), cover)),
            newest.classes,
        ),
        reached=reaches(by_class, target, fill_rule),
    )


class ForwardReplay:
    """Service levels replayed over the trading days *after* the day they were chosen on: the out-of-sample test
    of :func:`recent_service_levels` (which only ever looks back).

    The same replay as the tuning (the stored daily forecasts, each product's lead time, lost sales, the policy
    starting at its order-up-to level), on the window whose first decision is the end of ``day`` and whose
    ``n_days`` demand days follow it; every decision day needs a stored forecast.
    """

    def __init__(
        self,
        forecasts: pd.DataFrame,
        demand: pd.DataFrame,
        products: pd.DataFrame,
        order_cycle: int = 7,
        default_lead_time: int = 7,
    ):
        self._start(ReplayInputs(forecasts, demand), products, order_cycle, default_lead_time)

    @classmethod
    def from_inputs(
        cls, inputs: ReplayInputs, products: pd.DataFrame, order_cycle: int = 7, default_lead_time: int = 7
    ) -> ForwardReplay:
        """From forecasts and demand already made ready (their forecasts may start before a window, which reads
        only its own decision days')."""
        forward = cls.__new__(cls)
        forward._start(inputs, products, order_cycle, default_lead_time)
        return forward

    def _start(self, inputs: ReplayInputs, products: pd.DataFrame, order_cycle: int, default_lead_time: int):
        self.inputs = inputs
        self.grid, self.made = inputs.grid, inputs.made
        self.products = products
        self.order_cycle = order_cycle
        self.default_lead_time = default_lead_time

    def window(self, day, n_days: int, classes: pd.Series) -> _Window | None:
        """The window after ``day`` (None when fewer than ``n_days`` trading days with forecasts follow it)."""
        days = self.grid.columns
        start = days.searchsorted(pd.Timestamp(day))
        decision = days[start : start + n_days + 1]
        if start >= len(days) or days[start] != pd.Timestamp(day) or len(decision) < n_days + 1:
            return None
        if not all(d in self.made for d in decision):
            return None
        return _replay_window(
            self.inputs, decision, self.products, classes, self.default_lead_time, self.order_cycle
        )

    def run(self, window: _Window, level) -> ReplayResult:
        """Replay ``window`` at ``level``: one number, or demand class -> level (a class it does not name gets its
        highest level, as in the tuning)."""
        policy = forecast_policy(
            window.intervals,
            window.phi,
            window.lead,
            per_series_levels(level, window.classes),
        )
        return replay(window.demand, policy, window.lead, initial_stock(policy), window.price)

    def run_naive(self, window: _Window, cover: float | None) -> ReplayResult | None:
        """Replay ``window`` with the naive moving-average policy at ``cover`` days. None when there is no cover
        (None or NaN: a stored day the tuning had none for) or fewer than NAIVE_WINDOW days of demand precede
        the window."""
        if cover is None or pd.isna(cover) or not self.naive_possible(window):
            return None
        return _replay_naive(window, float(cover), self.order_cycle)

    @staticmethod
    def naive_possible(window: _Window) -> bool:
        """Whether NAIVE_WINDOW days of demand precede ``window`` (the moving average needs them)."""
        return window.history.shape[1] >= NAIVE_WINDOW
