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
from ml.inventory.policy import interval_sum

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


def replay(
    demand: np.ndarray,
    policy: Policy,
    lead_time,
    initial_on_hand: np.ndarray,
    price: np.ndarray | None = None,
) -> ReplayResult:
    """Replay ``demand`` ``(n, T)`` under ``policy`` (see the module docstring); units are whole items."""
    n, t = demand.shape
    lt = np.broadcast_to(np.asarray(lead_time, dtype=int), (n,))
    price = np.ones(n) if price is None else np.asarray(price, dtype=float)
    on_hand = np.asarray(initial_on_hand, dtype=float).copy()
    pipeline = np.zeros((n, t + int(lt.max()) + 2))
    served_tot = lost_tot = 0.0
    stockout_days = orders = 0
    inv_units = inv_value = 0.0
    rows = np.arange(n)
    for d in range(t):
        on_hand += pipeline[:, d]
        dem = demand[:, d]
        served = np.minimum(on_hand, dem)
        lost = dem - served
        on_hand -= served
        served_tot += served.sum()
        lost_tot += lost.sum()
        stockout_days += int((lost > 0).sum())
        inv_units += on_hand.sum()
        inv_value += (on_hand * price).sum()
        position = on_hand + pipeline[:, d + 1 :].sum(axis=1)
        s, big_s = policy(d)
        qty = np.where(position <= s, np.ceil(np.maximum(big_s - position, 0.0)), 0.0)
        pipeline[rows, d + lt + 1] += qty
        orders += int((qty > 0).sum())
    demand_tot = float(demand.sum())
    return ReplayResult(
        fill_rate=served_tot / demand_tot if demand_tot > 0 else float("nan"),
        stockout_days=stockout_days,
        stockout_day_share=stockout_days / max(n * t, 1),
        avg_inventory_units=inv_units / t,
        avg_inventory_value=inv_value / t,
        orders=orders,
        lost_units=float(lost_tot),
        demand_units=demand_tot,
    )


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
    item ``d + 1``, made with that day's demand known and nothing later.

    The quantile is NB1 with dispersion ``phi``, or, where ``ratio`` (per series) is finite, ``ratio`` times the
    forecast mean: an empirical quantile of the SKU's own demand over such intervals relative to its mean
    (:func:`ml.inventory.policy.empirical_ratio_quantile`).
    """
    refreshed = not isinstance(forecast, np.ndarray)

    def pol(d: int):
        mean, start = (forecast[d + 1], 0) if refreshed else (forecast, d + 1)
        n = mean.shape[0]
        lt = np.broadcast_to(np.asarray(lead_time, dtype=int), (n,))
        mu_p = interval_sum(mean, start, lt + review)
        s = nb1_quantile(mu_p, phi, service_level)
        if ratio is not None:
            s = np.where(np.isfinite(ratio), np.nan_to_num(ratio) * mu_p, s)
        return s, s + interval_sum(mean, start, np.full(n, order_cycle))

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
        s = mu * (lt + review) + cover_days * mu
        return s, s + mu * order_cycle

    return pol


def initial_stock(policy: Policy) -> np.ndarray:
    """A running policy's stock at the start: its order-up-to level for the first day."""
    return np.ceil(policy(-1)[1])
