"""Day-by-day replay of a replenishment policy against actual demand (lost sales).

Timeline of day ``d`` (0-based within the replay window):

1. orders due today arrive (an order placed at the end of day ``d`` arrives at the start of day ``d + L + 1``,
   i.e. ``L`` full days are served without it);
2. demand is served from stock; what cannot be served is lost (no backorders: a web shop customer buys
   elsewhere);
3. at the end of the day the policy looks at the inventory position (on hand + on order) and orders
   ``S - position`` when the position is at or below ``s``.

The policy is any callable ``(day, position) -> (s, S)`` per series, so the forecast-driven policy and the naive
one are replayed by the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ml.forecast.quantiles import nb1_quantile
from ml.inventory.policy import interval_sum, naive_cover_levels

Policy = Callable[[int], tuple[np.ndarray, np.ndarray]]


@dataclass
class ReplayResult:
    fill_rate: float
    stockout_days: int
    stockout_day_share: float
    avg_inventory_units: float
    avg_inventory_value: float
    orders: int
    lost_units: float
    demand_units: float

    def as_dict(self) -> dict:
        return {k: (round(float(v), 4) if isinstance(v, float) else int(v)) for k, v in self.__dict__.items()}


@dataclass
class ReplaySums:
    """A replay's sums over some of its series. Series do not interact in the replay (each has its own stock,
    orders and lost sales), so the sums of a set of series add up, and a policy that gives each demand class its
    own level can be scored from replays at one level each (:class:`ml.inventory.tuning.ClassReplays`)."""

    n_series: int
    n_days: int
    served: float
    lost: float
    stockout_days: int
    orders: int
    inv_units: float
    inv_value: float

    def __add__(self, other: ReplaySums) -> ReplaySums:
        assert self.n_days == other.n_days, "sums of different windows do not add up"
        return ReplaySums(
            self.n_series + other.n_series,
            self.n_days,
            *(getattr(self, f) + getattr(other, f) for f in _ADDITIVE),
        )

    def result(self) -> ReplayResult:
        demand = self.served + self.lost
        return ReplayResult(
            fill_rate=self.served / demand if demand > 0 else float("nan"),
            stockout_days=int(self.stockout_days),
            stockout_day_share=self.stockout_days / max(self.n_series * self.n_days, 1),
            avg_inventory_units=self.inv_units / self.n_days,
            avg_inventory_value=self.inv_value / self.n_days,
            orders=int(self.orders),
            lost_units=float(self.lost),
            demand_units=float(demand),
        )


_ADDITIVE = ("served", "lost", "stockout_days", "orders", "inv_units", "inv_value")


@dataclass
class SeriesReplay:
    """A replay's totals per series (arrays of length n), for :meth:`sums` over any subset."""

    n_days: int
    served: np.ndarray
    lost: np.ndarray
    stockout_days: np.ndarray
    orders: np.ndarray
    inv_units: np.ndarray
    inv_value: np.ndarray

    def sums(self, mask: np.ndarray | None = None) -> ReplaySums:
        take = slice(None) if mask is None else np.asarray(mask, dtype=bool)
        n = len(self.served) if mask is None else int(take.sum())
        return ReplaySums(n, self.n_days, *(float(getattr(self, f)[take].sum()) for f in _ADDITIVE))


def replay_series(
    demand: np.ndarray,
    policy: Policy,
    lead_time,
    initial_on_hand: np.ndarray,
    price: np.ndarray | None = None,
) -> SeriesReplay:
    """Replay ``demand`` ``(n, T)`` under ``policy`` (see the module docstring); units are whole items. Totals
    per series; :func:`replay` adds them up."""
    n, t = demand.shape
    lt = np.broadcast_to(np.asarray(lead_time, dtype=int), (n,))
    price = np.ones(n) if price is None else np.asarray(price, dtype=float)
    on_hand = np.asarray(initial_on_hand, dtype=float).copy()
    pipeline = np.zeros((n, t + int(lt.max()) + 2))
    served_tot, lost_tot, inv_units, inv_value = (np.zeros(n) for _ in range(4))
    stockout_days, orders = (np.zeros(n, dtype=int) for _ in range(2))
    rows = np.arange(n)
    for d in range(t):
        on_hand += pipeline[:, d]
        dem = demand[:, d]
        served = np.minimum(on_hand, dem)
        lost = dem - served
        on_hand -= served
        served_tot += served
        lost_tot += lost
        stockout_days += lost > 0
        inv_units += on_hand
        inv_value += on_hand * price
        position = on_hand + pipeline[:, d + 1 :].sum(axis=1)
        s, big_s = policy(d)
        qty = np.where(position <= s, np.ceil(np.maximum(big_s - position, 0.0)), 0.0)
        pipeline[rows, d + lt + 1] += qty
        orders += qty > 0
    return SeriesReplay(t, served_tot, lost_tot, stockout_days, orders, inv_units, inv_value)


def replay(
    demand: np.ndarray,
    policy: Policy,
    lead_time,
    initial_on_hand: np.ndarray,
    price: np.ndarray | None = None,
) -> ReplayResult:
    """Replay ``demand`` ``(n, T)`` under ``policy`` (see the module docstring); units are whole items."""
    return replay_series(demand, policy, lead_time, initial_on_hand, price).sums().result()


def forecast_policy(
    forecast,
    phi: np.ndarray,
    lead_time,
    service_level: float,
    review: int = 1,
    order_cycle: int = 6,
    ratio: np.ndarray | None = None,
) -> Policy:
    """(s, S) from forecasts: ``s`` = the ``service_level`` quantile of demand over lead time + review,
    ``S = s`` + mean demand over the order cycle.

    ``forecast`` is either one ``(n, h)`` mean made at the start of the window (at the end of day ``d`` the next
    periods are its columns from ``d + 1`` on; beyond the horizon the tail mean repeats, see ``interval_sum``), or
    a forecast refreshed every day: a sequence whose item ``k`` is the ``(n, h)`` mean made at the end of day
    ``k - 1`` (``k = 0``: at the origin), its first column the next day, so the end-of-day-``d`` decision reads
    item ``d + 1``, made with that day's demand known and nothing later; or the :class:`ForecastIntervals` of such
    a sequence, made with their own lead time, review and order cycle (the arguments' are then not read).

    The quantile is NB1 with dispersion ``phi``, or, where ``ratio`` (per series) is finite, ``ratio`` times the
    forecast mean: an empirical quantile of the SKU's own demand over such intervals relative to its mean
    (:func:`ml.inventory.policy.empirical_ratio_quantile`).
    """
    if isinstance(forecast, ForecastIntervals):
        return _refreshed_policy(forecast, phi, service_level, ratio)
    if not isinstance(forecast, np.ndarray):
        intervals = ForecastIntervals.of(forecast, lead_time, review=review, order_cycle=order_cycle)
        return _refreshed_policy(intervals, phi, service_level, ratio)

    def pol(d: int):
        mean, start = forecast, d + 1
        n = mean.shape[0]
        lt = np.broadcast_to(np.asarray(lead_time, dtype=int), (n,))
        mu_p = interval_sum(mean, start, lt + review)
        s = nb1_quantile(mu_p, phi, service_level)
        if ratio is not None:
            s = np.where(np.isfinite(ratio), np.nan_to_num(ratio) * mu_p, s)
        return s, s + interval_sum(mean, start, np.full(n, order_cycle))

    return pol


@dataclass(frozen=True)
class ForecastIntervals:
    """What a policy reads of forecasts refreshed every day: per forecast (item ``k`` made at the end of day
    ``k - 1``), the mean demand over the protection interval (lead time + review) and over the order cycle. The
    same at every service level, so a window replayed at many levels sums its forecasts once."""

    protection: np.ndarray
    """``(k, n)``: mean demand over lead time + review, from the first day each forecast covers."""
    cycle: np.ndarray
    """``(k, n)``: mean demand over the order cycle, likewise."""

    @classmethod
    def of(cls, forecasts, lead_time, review: int = 1, order_cycle: int = 6) -> ForecastIntervals:
        n = forecasts[0].shape[0]
        lt = np.broadcast_to(np.asarray(lead_time, dtype=int), (n,))
        return cls(
            protection=np.stack([interval_sum(mean, 0, lt + review) for mean in forecasts]),
            cycle=np.stack([interval_sum(mean, 0, np.full(n, order_cycle)) for mean in forecasts]),
        )


def _refreshed_policy(
    intervals: ForecastIntervals, phi: np.ndarray, service_level, ratio: np.ndarray | None
) -> Policy:
    """:func:`forecast_policy` on refreshed forecasts: every day's ``s`` in one quantile call, instead of one call
    for each day the replay asks for."""
    mu_p = intervals.protection
    s = nb1_quantile(mu_p, phi, service_level)  # phi and a per-series level broadcast along the days
    if ratio is not None:
        s = np.where(np.isfinite(ratio), np.nan_to_num(ratio) * mu_p, s)
    big_s = s + intervals.cycle

    def pol(d: int):
        return s[d + 1], big_s[d + 1]

    return pol


def naive_policy(
    history: np.ndarray,
    demand: np.ndarray,
    lead_time,
    cover_days: float,
    window: int = 28,
    review: int = 1,
    order_cycle: int = 6,
) -> Policy:
    """Moving-average demand (last ``window`` days, updated with each day's actual) times the protection
    interval, plus a fixed safety cover of ``cover_days`` days of average demand."""
    full = np.hstack([np.nan_to_num(history, nan=0.0), demand])
    h = history.shape[1]
    n = demand.shape[0]
    lt = np.broadcast_to(np.asarray(lead_time, dtype=float), (n,))

    def pol(d: int):
        mu = full[:, h + d + 1 - window : h + d + 1].mean(axis=1)
        return naive_cover_levels(mu, lt, cover_days, review, order_cycle)

    return pol


def initial_stock(policy: Policy) -> np.ndarray:
    """A running policy's stock at the start: its order-up-to level for the first day."""
    return np.ceil(policy(-1)[1])
