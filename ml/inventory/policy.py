"""Replenishment from forecast quantiles: safety stock, reorder point, order quantity, stock-out risk, suppliers.

The policy is a periodic-review (s, S) policy reviewed every period:

- **protection interval** = lead time ``L`` + review period ``R`` (1 period: reviewed daily);
- **reorder point** ``s`` = the ``alpha`` quantile of demand over the protection interval (``alpha`` = target
  cycle service level: the probability of no stock-out between placing an order and the next one arriving);
- **safety stock** = ``s`` minus the mean demand over the protection interval;
- **order-up-to** ``S`` = ``s`` + mean demand over the order cycle (default 6 periods, a trading week), so an
  order is placed about once a cycle instead of every day;
- **order quantity** = ``S - inventory position`` when the position (on hand + on order) is at or below ``s``.

Lead-time demand distribution: daily forecasts come as a mean and quantiles. A negative binomial with variance
``phi * mean`` (NB1) is closed under addition for a common ``phi``, so the sum of daily demands over any interval
is NB1 with the summed mean and the same ``phi``; ``phi`` is the value implied by the forecast's own 0.9
quantile (:func:`implied_dispersion`), so calibration done on the forecast carries over to the plan. For a
textbook check, :func:`safety_stock_normal` and :func:`reorder_point_normal` implement ``z * sigma * sqrt(L)``.

**Stock-out risk within the lead time** = ``P(demand over L > inventory position)``: an order placed now arrives
only after ``L``, so nothing but what is on hand or already on order can serve those periods. When that risk
exceeds ``1 - alpha`` with the primary supplier, :func:`choose_supplier` looks for an alternate whose shorter lead
time brings the risk back under ``1 - alpha`` (the cheapest such one; else the fastest).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ml.forecast import quantiles
from ml.forecast.quantiles import nb1_quantile

PHI_GRID = np.exp(np.linspace(0.0, np.log(5000.0), 80))


# -- textbook formulas ------------------------------------------------------------------------------------
def safety_stock_normal(service_level: float, sigma_daily, lead_time) -> np.ndarray:
    """Textbook safety stock ``z_alpha * sigma_d * sqrt(L)`` (normal, i.i.d. daily demand)."""
    z = stats.norm.ppf(service_level)
    return z * np.asarray(sigma_daily, dtype=float) * np.sqrt(np.asarray(lead_time, dtype=float))


def reorder_point_normal(service_level: float, mean_daily, sigma_daily, lead_time) -> np.ndarray:
    """Textbook reorder point ``mu_d * L + z_alpha * sigma_d * sqrt(L)``."""
    return np.asarray(mean_daily, dtype=float) * np.asarray(lead_time, dtype=float) + safety_stock_normal(
        service_level, sigma_daily, lead_time
    )


# -- from forecasts ---------------------------------------------------------------------------------------
def implied_dispersion(mean: np.ndarray, q90: np.ndarray, tau: float = 0.9) -> np.ndarray:
    """Per-series NB1 ``phi`` whose ``tau`` quantile best matches the forecast's (averaged over the horizon).

    ``mean`` and ``q90`` are ``(n, h)``. A grid search (``phi`` from 1 to 5000) on the horizon averages keeps it
    cheap and monotone; series with no demand forecast get ``phi = 1``.
    """
    m = np.nanmean(np.asarray(mean, dtype=float), axis=1)
    q = np.nanmean(np.asarray(q90, dtype=float), axis=1)
    grid_q = nb1_quantile(np.broadcast_to(m, (len(PHI_GRID), len(m))), PHI_GRID[:, None], tau)  # (grid, n)
    best = np.argmin(np.abs(grid_q - q[None, :]), axis=0)
    return np.where(m > 0, PHI_GRID[best], 1.0)


def nearest_level(levels, service_level: float) -> float:
    """The served quantile level closest to ``service_level`` on the log-odds scale (where tail levels such as
    0.95 and 0.99 are far apart): the quantile a service level should read its dispersion from, instead of
    extrapolating from q90."""
    levels = np.asarray(sorted(levels), dtype=float)
    if not len(levels):
        raise ValueError("no quantile levels to choose from")
    target = np.log(service_level / (1.0 - service_level))
    return float(levels[np.argmin(np.abs(np.log(levels / (1.0 - levels)) - target))])


def empirical_ratio_quantile(
    history: np.ndarray, length: int, service_level: float, lookback: int = 224, min_windows: int = 28
) -> np.ndarray:
    """Per series: the ``service_level`` quantile of demand over ``length`` consecutive periods divided by its
    mean, from the last ``lookback`` periods of ``history`` ``(n, T)`` (NaN before a series starts).

    A reorder point ``ratio * forecast mean over the interval`` then carries the SKU's own lumpiness (how much of
    its demand comes in rare big orders) instead of a negative binomial's tail. NaN where the series has fewer
    than ``min_windows`` complete intervals or sold nothing (callers fall back to NB1 there).
    """
    h = np.asarray(history, dtype=float)[:, -lookback:]
    n, t = h.shape
    out = np.full(n, np.nan)
    if t < length:
        return out
    cs = np.hstack([np.zeros((n, 1)), np.cumsum(np.nan_to_num(h), axis=1)])
    live = np.hstack([np.zeros((n, 1)), np.cumsum(~np.isnan(h), axis=1)])
    sums = cs[:, length:] - cs[:, :-length]
    complete = (live[:, length:] - live[:, :-length]) == length
    sums = np.where(complete, sums, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (new SKUs) become NaN, handled below
        mean = np.nanmean(sums, axis=1)
        q = np.nanquantile(sums, service_level, axis=1)
    ok = (complete.sum(axis=1) >= min_windows) & (mean > 0)
    out[ok] = q[ok] / mean[ok]
    return out


def interval_sum(mean: np.ndarray, start: int, length) -> np.ndarray:
    """Sum of forecast means over periods ``start .. start + length - 1`` (0-based), per series.

    ``length`` may differ by series. Periods past the forecast horizon repeat the mean of its last 6 periods,
    so a lead time longer than the horizon still gets a demand estimate.
    """
    mean = np.asarray(mean, dtype=float)
    n, h = mean.shape
    length = np.broadcast_to(np.asarray(length, dtype=int), (n,))
    tail = mean[:, -min(6, h) :].mean(axis=1)
    need = start + int(length.max()) if n else 0
    if need > h:
        mean = np.hstack([mean, np.repeat(tail[:, None], need - h, axis=1)])
    cs = np.hstack([np.zeros((n, 1)), np.cumsum(mean, axis=1)])
    return cs[np.arange(n), start + length] - cs[:, start]


def nb1_sf(x: np.ndarray, mean: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """``P(D > x)`` for D ~ NB1(mean, phi) (Poisson at phi = 1); 0 where the mean is 0."""
    x, mean, phi = (np.asarray(a, dtype=float) for a in np.broadcast_arrays(x, mean, phi))
    out = np.zeros_like(mean)
    pos = mean > 0
    out[pos] = quantiles.nb1_sf(np.floor(x[pos]), mean[pos], phi[pos])
    return out


def expected_shortage(x: np.ndarray, mean: np.ndarray, phi: np.ndarray, cap: int = 20000) -> np.ndarray:
    """``E[(D - x)^+]`` for D ~ NB1: ``mean - sum_{k < x} P(D > k)`` (exact for integer stock up to ``cap``)."""
    x = np.clip(np.floor(np.asarray(x, dtype=float)), 0, cap).astype(int)
    mean = np.asarray(mean, dtype=float)
    phi = np.asarray(phi, dtype=float)
    out = mean.copy()
    for i in np.nonzero((x > 0) & (mean > 0))[0]:
        k = np.arange(x[i])
        out[i] = mean[i] - nb1_sf(k, np.full(len(k), mean[i]), np.full(len(k), phi[i])).sum()
    return np.clip(out, 0.0, None)


@dataclass
class Supplier:
    name: str
    lead_time: int
    unit_cost: float = 1.0


def plan(
    mean: np.ndarray,
    phi: np.ndarray,
    lead_time,
    position,
    service_level: float = 0.95,
    review: int = 1,
    order_cycle: int = 6,
    start: int = 0,
    min_order_qty=None,
) -> dict[str, np.ndarray]:
    """Replenishment quantities per series from daily forecast means ``(n, h)`` and NB1 dispersions ``(n,)``.

    ``position`` is the inventory position (on hand + on order) now; ``start`` is the first forecast period that
    is still in the future (0 when the forecast was made today). With ``min_order_qty``, the reorder point of a
    series whose minimum order lasts more than a cycle is :func:`minimum_order_reorder_point`'s (the order
    quantity itself is not rounded here). Returns ``lead_time_demand`` (mean over L), ``lead_time_q`` (its
    ``service_level`` quantile), ``safety_stock``, ``reorder_point``, ``order_up_to``, ``order_qty`` and
    ``stockout_risk`` (within the lead time, with the current position).
    """
    lt = np.broadcast_to(np.asarray(lead_time, dtype=int), (mean.shape[0],))
    pos = np.asarray(position, dtype=float)
    mu_l = interval_sum(mean, start, lt)
    mu_p = interval_sum(mean, start, lt + review)
    mu_c = interval_sum(mean, start, np.full_like(lt, order_cycle))
    s = nb1_quantile(mu_p, phi, service_level)
    if min_order_qty is not None:
        s = minimum_order_reorder_point(s, mu_p, mu_c, phi, min_order_qty)
    big_s = s + mu_c
    order = np.where(pos <= s, np.ceil(big_s - pos), 0.0)
    return {
        "lead_time_demand": mu_l,
        "lead_time_q": nb1_quantile(mu_l, phi, service_level),
        "safety_stock": s - mu_p,
        "reorder_point": s,
        "order_up_to": big_s,
        "order_qty": np.clip(order, 0, None),
        "stockout_risk": nb1_sf(pos, mu_l, phi),
    }


def choose_supplier(
    mean: np.ndarray,
    phi: np.ndarray,
    position,
    suppliers: list[Supplier],
    service_level: float = 0.95,
    start: int = 0,
) -> pd.DataFrame:
    """Per series: the supplier to order from and the stock-out risk within its lead time.

    ``suppliers[0]`` is the primary. If the risk of a stock-out before the primary's order can arrive exceeds
    ``1 - service_level``, an alternate with a shorter lead time is chosen: the cheapest one that brings the risk
    within that bound, else the fastest. The risk counts only stock already on hand or on order.
    """
    pos = np.asarray(position, dtype=float)
    n = mean.shape[0]
    risks = np.stack(
        [nb1_sf(pos, interval_sum(mean, start, np.full(n, s.lead_time)), phi) for s in suppliers]
    )
    limit = 1.0 - service_level
    chosen = np.zeros(n, dtype=int)
    at_risk = risks[0] > limit
    order = sorted(range(1, len(suppliers)), key=lambda j: (suppliers[j].unit_cost, suppliers[j].lead_time))
    fastest = min(range(len(suppliers)), key=lambda j: (suppliers[j].lead_time, suppliers[j].unit_cost))
    for i in np.nonzero(at_risk)[0]:
        ok = [j for j in order if suppliers[j].lead_time < suppliers[0].lead_time and risks[j, i] <= limit]
        chosen[i] = ok[0] if ok else fastest
    return pd.DataFrame(
        {
            "primary_risk": risks[0],
            "supplier": [suppliers[j].name for j in chosen],
            "supplier_lead_time": [suppliers[j].lead_time for j in chosen],
            "supplier_risk": risks[chosen, np.arange(n)],
            "alternate": chosen != 0,
        }
    )


def replenishment_plan(
    forecast: pd.DataFrame,
    stock: pd.DataFrame,
    suppliers: list[Supplier],
    service_level: float = 0.95,
    order_cycle: int = 6,
) -> pd.DataFrame:
    """The plan table for the daily asset: one row per ``unique_id`` (and ``warehouse`` when given).

    ``forecast``: long frame from a forecaster (``unique_id``, ``step`` or ``ds``, ``mean``, ``q90``; optional
    ``warehouse``). ``stock``: ``unique_id`` (+ ``warehouse``), ``on_hand``, ``on_order`` and optional ``price``.
    Lead times come from ``suppliers[0]`` (primary), alternates from the rest.
    """
    keys = ["unique_id"] + (["warehouse"] if "warehouse" in forecast.columns else [])
    order_col = "step" if "step" in forecast.columns else "ds"
    fc = forecast.sort_values([*keys, order_col])
    mean = fc.pivot_table(index=keys, columns=order_col, values="mean", sort=True)
    q90 = fc.pivot_table(index=keys, columns=order_col, values="q90", sort=True).reindex(mean.index)
    st = stock.set_index(keys).reindex(mean.index)
    on_hand = st["on_hand"].fillna(0).to_numpy(dtype=float)
    on_order = st["on_order"].fillna(0).to_numpy(dtype=float) if "on_order" in st else np.zeros(len(st))
    price = st["price"].fillna(0).to_numpy(dtype=float) if "price" in st else np.ones(len(st))
    m = mean.to_numpy(dtype=float)
    phi = implied_dispersion(m, q90.to_numpy(dtype=float))
    pos = on_hand + on_order
    p = plan(m, phi, suppliers[0].lead_time, pos, service_level, order_cycle=order_cycle)
    sup = choose_supplier(m, phi, pos, suppliers, service_level)
    short = expected_shortage(pos, p["lead_time_demand"], phi)
    out = mean.index.to_frame(index=False)
    out["on_hand"], out["on_order"], out["phi"] = on_hand, on_order, phi
    for k, v in p.items():
        out[k] = v
    out = pd.concat([out, sup.drop(columns=["primary_risk"])], axis=1)
    out["expected_shortage"] = short
    out["revenue_at_risk"] = short * price
    return out


def stockout_alerts(
    plan_table: pd.DataFrame, service_level: float = 0.95, top: int | None = None
) -> pd.DataFrame:
    """SKUs whose stock-out risk within the lead time exceeds ``1 - service_level``, by revenue at risk.

    A plan with a ``service_level`` column (per-class levels) is judged row by row against its own level.
    """
    level = plan_table.get("service_level", service_level)
    at = plan_table[plan_table["stockout_risk"] > 1 - level]
    at = at.sort_values(["revenue_at_risk", "stockout_risk"], ascending=False)
    return at.head(top) if top else at


def plan_by_class(plan_table: pd.DataFrame) -> pd.DataFrame:
    """Per demand class of a plan (``demand_class``, ``service_level`` columns): rows, service level, rows and
    units to order, mean stock-out risk. Empty when the plan has no classes (one level for all SKUs)."""
    if "demand_class" not in plan_table or plan_table["demand_class"].isna().all():
        return pd.DataFrame()
    g = plan_table.assign(ordering=plan_table["order_qty"] > 0).groupby("demand_class", sort=True)
    return pd.DataFrame(
        {
            "rows": g.size(),
            "service_level": g["service_level"].first(),
            "rows_to_order": g["ordering"].sum(),
            "units_to_order": g["order_qty"].sum(),
            "mean_stockout_risk": g["stockout_risk"].mean(),
        }
    ).reset_index()


def naive_cover_levels(
    daily_demand: np.ndarray, lead_time, cover_days: float, review: int = 1, order_cycle: int = 6
) -> tuple[np.ndarray, np.ndarray]:
    """The naive cover policy's reorder point ``s`` and order-up-to ``S`` from an average daily demand: demand
    over the protection interval (lead time + review) plus ``cover_days`` of it as safety stock, and
    ``order_cycle`` days of it on top for ``S``. No forecast and no distribution: what a shop without a
    planning system does with its recent sales."""
    mu = np.asarray(daily_demand, dtype=float)
    s = mu * (np.asarray(lead_time, dtype=float) + review) + cover_days * mu
    return s, s + mu * order_cycle


# -- platform-facing: the shapes of the dbt marts ------------------------------------------------------------
def latest_snapshot(inventory: pd.DataFrame, as_of=None) -> pd.DataFrame:
    """The last ``fct_inventory_daily`` row per ``sku, warehouse_id`` on or before ``as_of`` (all when None)."""
    inv = inventory.copy()
    inv["snapshot_date"] = pd.to_datetime(inv["snapshot_date"])
    if as_of is not None:
        inv = inv[inv["snapshot_date"] <= pd.Timestamp(as_of)]
    inv = inv.sort_values("snapshot_date")
    return inv.groupby(["sku", "warehouse_id"], as_index=False).tail(1).reset_index(drop=True)


def _snapshot_window(inventory: pd.DataFrame, as_of, window_days: int) -> pd.DataFrame:
    """The ``fct_inventory_daily`` rows of the ``window_days`` up to ``as_of`` (the latest snapshot when None)."""
    inv = inventory.copy()
    inv["snapshot_date"] = pd.to_datetime(inv["snapshot_date"])
    end = pd.Timestamp(as_of) if as_of is not None else inv["snapshot_date"].max()
    return inv[(inv["snapshot_date"] <= end) & (inv["snapshot_date"] > end - pd.Timedelta(days=window_days))]


def warehouse_shares(inventory: pd.DataFrame, as_of=None, window_days: int = 28) -> pd.DataFrame:
    """``sku, warehouse_id, share`` from ``fct_inventory_daily.units_sold`` over the ``window_days`` up to
    ``as_of``; a SKU that sold nothing there is split evenly over the warehouses that stock it."""
    win = _snapshot_window(inventory, as_of, window_days)
    if win.empty:
        win = latest_snapshot(inventory, as_of).assign(units_sold=0.0)
    g = win.groupby(["sku", "warehouse_id"], as_index=False)["units_sold"].sum()
    tot = g.groupby("sku")["units_sold"].transform("sum")
    n = g.groupby("sku")["units_sold"].transform("size")
    g["share"] = np.where(tot > 0, g["units_sold"] / tot.where(tot > 0, 1.0), 1.0 / n)
    return g[["sku", "warehouse_id", "share"]]


def mean_daily_sales(inventory: pd.DataFrame, as_of=None, window_days: int = 28) -> pd.DataFrame:
    """``sku, warehouse_id, daily_sales``: ``fct_inventory_daily.units_sold`` averaged over the snapshot days of the
    ``window_days`` up to ``as_of`` (fewer while the shop's history is shorter); the naive cover policy's demand."""
    win = _snapshot_window(inventory, as_of, window_days)
    days = max(win["snapshot_date"].nunique(), 1)
    g = win.groupby(["sku", "warehouse_id"], as_index=False)["units_sold"].sum()
    g["daily_sales"] = g.pop("units_sold").astype(float) / days
    return g


def split_by_warehouse(forecast: pd.DataFrame, shares: pd.DataFrame) -> pd.DataFrame:
    """Split a SKU-level forecast frame (``sku, step, mean, q50, q90, ...``) by ``shares``
    (``sku, warehouse_id, share``): means scale by the share; each quantile is that of the thinned negative
    binomial NB1(s * mean, 1 + s * (phi - 1)), ``phi`` implied by the SKU's own ``mean``/``q90``."""
    fc = forecast.astype({"sku": str})
    wide_mean = fc.pivot_table(index="sku", columns="step", values="mean", sort=True)
    wide_q90 = fc.pivot_table(index="sku", columns="step", values="q90", sort=True).reindex(wide_mean.index)
    phi = pd.Series(implied_dispersion(wide_mean.to_numpy(), wide_q90.to_numpy()), index=wide_mean.index)
    sh = shares[["sku", "warehouse_id", "share"]].astype({"sku": str})
    out = fc.merge(sh, on="sku", how="inner")
    s = out.pop("share").to_numpy(dtype=float)
    out["mean"] = out["mean"].to_numpy(dtype=float) * s
    phi_w = 1.0 + s * (phi.reindex(out["sku"]).to_numpy() - 1.0)
    for col in [c for c in fc.columns if c.startswith("q") and c[1:].replace(".", "").isdigit()]:
        out[col] = nb1_quantile(out["mean"].to_numpy(), phi_w, float(col[1:]) / 100)
    first = [c for c in ("origin_date", "sku", "warehouse_id", "forecast_date", "step") if c in out.columns]
    return out[first + [c for c in out.columns if c not in first]].reset_index(drop=True)


def minimum_order_reorder_point(
    reorder_point: np.ndarray,
    interval_demand: np.ndarray,
    cycle_demand: np.ndarray,
    phi: np.ndarray,
    min_order_qty,
) -> np.ndarray:
    """Lower the reorder point where a minimum order quantity makes each order cover more than an order cycle.

    The service level is a cycle service level: the chance of no stock-out per order cycle, for an order of
    about a cycle's demand. An order rounded up to a minimum ``Q`` lasts ``Q / cycle demand`` cycles, so the
    same share of demand is lost (the same fill rate) when each such order may carry proportionally more
    expected shortage. Where ``Q`` exceeds the cycle's demand, the reorder point ``s`` becomes the smallest
    ``s'`` with ``E[(D - s')^+] <= E[(D - s)^+] x Q / cycle demand`` (``D`` ~ NB1 with mean ``interval_demand``,
    the demand over the protection interval). Without this, slow movers with large minimums reorder at the level
    of a fast mover and every early reorder buys months of stock.
    """
    s = np.array(reorder_point, dtype=float, copy=True)
    moq = np.broadcast_to(np.asarray(min_order_qty, dtype=float), s.shape)
    phi = np.broadcast_to(np.asarray(phi, dtype=float), s.shape)
    bound = (moq > cycle_demand) & (cycle_demand > 0) & (interval_demand > 0) & (s > 0)
    for i in np.flatnonzero(bound):
        one = (interval_demand[i : i + 1], phi[i : i + 1])
        allowed = expected_shortage(s[i : i + 1], *one)[0] * moq[i] / cycle_demand[i]
        lo, hi = 0, int(s[i])  # expected shortage falls with s: the smallest s within the allowance
        while lo < hi:
            mid = (lo + hi) // 2
            within = expected_shortage(np.array([float(mid)]), *one)[0] <= allowed
            lo, hi = (lo, mid) if within else (mid + 1, hi)
        s[i] = lo
    return s


def _units_over_need(order_qty: np.ndarray, min_order_qty: np.ndarray) -> np.ndarray:
    """Units a minimum order quantity adds to an order (0 where nothing is ordered)."""
    return np.where(order_qty > 0, np.maximum(min_order_qty - order_qty, 0.0), 0.0)


def plan_from_marts(
    forecast: pd.DataFrame,
    inventory: pd.DataFrame,
    products: pd.DataFrame,
    as_of=None,
    service_level: float = 0.95,
    order_cycle: int = 7,
    default_lead_time: int = 7,
    service_level_by_class: Mapping[str, float] | None = None,
    demand_class: pd.Series | None = None,
    dispersion: pd.Series | None = None,
    naive_cover_days: float | None = None,
) -> pd.DataFrame:
    """The ``replenishment_plan`` asset: one row per ``sku x warehouse_id``.

    - ``forecast``: :func:`ml.forecast.daily.daily_forecast` output (``sku, [warehouse_id,] step, mean, q90``);
      a SKU-level forecast is split over warehouses by :func:`warehouse_shares` of ``inventory``;
    - ``inventory``: ``fct_inventory_daily`` (``sku, warehouse_id, snapshot_date, on_hand, on_order,
      units_sold``): the snapshot on or before ``as_of`` is the stock now;
    - ``products``: ``dim_products`` (``sku, price, supplier_id, lead_time_days, min_order_qty, alt_supplier_id,
      alt_lead_time_days, alt_min_order_qty``); a missing lead time (Online Retail has none) is ``default_lead_time``.

    Per row: lead-time demand (mean and ``service_level`` quantile), safety stock, reorder point, order-up-to,
    order quantity (rounded up to the minimum order quantity of the supplier ordered from), stock-out risk within
    the primary's lead time (``P(demand over L > on hand + on order)``), the alternate's risk within its own lead
    time, and which supplier to order from (``use_alternate``, ``supplier_choice``):

    - ``stock-out risk``: the primary's risk exceeds ``1 - service_level`` and the alternate's is within it (a
      faster alternate prevents the stock-out the primary cannot);
    - ``minimum order``: the primary's minimum order quantity would put more than an order cycle of demand on the
      shelf beyond what the row needs, while the alternate overshoots less at no more risk (its stock-out risk
      within the bound or no higher than the primary's). Minimums are why slow movers pile up stock: a minimum
      of 100 for a SKU that sells 0.3 a day at a warehouse is a year of cover;
    - otherwise the primary.

    An order from the alternate is sized on the alternate's lead time; ``min_order_qty`` is the minimum of the
    supplier ordered from and ``units_over_need`` what that minimum adds to the order. Where a minimum makes an
    order last more than a cycle, the reorder point is lowered to keep the fill rate of an unrounded order
    (:func:`minimum_order_reorder_point`).
    ``expected_shortage`` (units short within the lead time) times ``price`` is ``revenue_at_risk``, the ranking
    key of :func:`stockout_alerts`.

    ``service_level_by_class`` (demand class -> level) with ``demand_class`` (a Series sku -> class, e.g. from
    :func:`ml.forecast.classify.classify_panel`) gives each SKU its class's level (``service_level`` for the
    classes not named): stock goes where it buys the most fill (``bench.inventory --service-levels by_class``
    finds such levels on replayed validation windows). Each row reports its ``demand_class`` and
    ``service_level``.

    ``dispersion`` (sku -> NB1 phi from the SKU's own demand history, :func:`ml.forecast.marts.sku_dispersion`)
    widens the lead-time demand where history is lumpier than the forecast's q90 says: the plan uses the larger
    of the two, thinned to the warehouse's share (``1 + share * (phi - 1)``). A 0.9 quantile says little about the
    far tail that a high service level needs; the replenishment benchmark could not reach a 95% fill rate at any
    level with the q90-implied dispersion alone.

    ``naive_cover_days`` orders by the naive cover policy instead (the baseline the plan is measured against):
    each row's average daily sales over the last 28 snapshot days (:func:`mean_daily_sales`) through
    :func:`naive_cover_levels` with the primary's lead time and ``order_cycle``, from the primary supplier, raised
    to its minimum. The forecast then sets nothing but the risk columns (``stockout_risk``, ``expected_shortage``,
    ``revenue_at_risk``, and ``lead_time_demand`` and ``lead_time_q`` over the primary's lead time): they describe
    the stock, whichever rule orders.
    """
    named = {"service_level": service_level} | {
        f"service_level_by_class[{c}]": v for c, v in (service_level_by_class or {}).items()
    }
    bad = {k: v for k, v in named.items() if not 0 < v < 1}
    if bad:
        # a quantile at 1 is infinite stock; 95 for 0.95 is a typo worth stopping on, not planning
        raise ValueError(f"service levels must lie strictly between 0 and 1, got {bad}")
    inv = latest_snapshot(inventory, as_of)
    shares = warehouse_shares(inventory, as_of)
    if "warehouse_id" not in forecast.columns:
        forecast = split_by_warehouse(forecast, shares)
    keys = ["sku", "warehouse_id"]
    fc = forecast.astype({"sku": str})
    mean = fc.pivot_table(index=keys, columns="step", values="mean", sort=True)
    q90 = fc.pivot_table(index=keys, columns="step", values="q90", sort=True).reindex(mean.index)
    out = mean.index.to_frame(index=False)
    st = inv.astype({"sku": str}).set_index(keys).reindex(mean.index)
    out["on_hand"] = st["on_hand"].fillna(0).to_numpy(dtype=float)
    out["on_order"] = st["on_order"].fillna(0).to_numpy(dtype=float)
    prod = products.astype({"sku": str}).drop_duplicates("sku").set_index("sku").reindex(out["sku"])

    def col(name, default):
        if name not in prod:
            return np.full(len(out), default, dtype=float)
        return pd.to_numeric(prod[name], errors="coerce").fillna(default).to_numpy(dtype=float)

    lead = col("lead_time_days", default_lead_time).astype(int)
    alt_lead = col("alt_lead_time_days", np.nan)
    moq = col("min_order_qty", 0.0)
    alt_moq = col("alt_min_order_qty", np.nan)
    # an alternate's unknown minimum is no reason to move
    alt_moq = np.where(np.isfinite(alt_moq), alt_moq, moq)
    price = col("price", 1.0)
    m = mean.to_numpy(dtype=float)
    phi = implied_dispersion(m, q90.to_numpy(dtype=float))
    if dispersion is not None:
        share = (
            shares.astype({"sku": str}).set_index(keys)["share"].reindex(mean.index).fillna(1.0).to_numpy()
        )
        hist = dispersion.rename(index=str).reindex(out["sku"]).fillna(1.0).to_numpy(dtype=float)
        phi = np.maximum(phi, 1.0 + share * (hist - 1.0))
    pos = out["on_hand"].to_numpy() + out["on_order"].to_numpy()
    classes = (
        demand_class.rename(index=str).reindex(out["sku"]).to_numpy(dtype=object)
        if demand_class is not None
        else np.full(len(out), None, dtype=object)
    )
    levels = dict(service_level_by_class or {})
    service_level = np.array([levels.get(c, service_level) for c in classes], dtype=float)
    primary = plan(m, phi, lead, pos, service_level, order_cycle=order_cycle, min_order_qty=moq)
    limit = 1.0 - service_level
    has_alt = np.isfinite(alt_lead) & (alt_lead != lead)
    alt_l = np.where(has_alt, alt_lead, lead).astype(int)
    alternate = plan(m, phi, alt_l, pos, service_level, order_cycle=order_cycle, min_order_qty=alt_moq)
    alt_safe = has_alt & (alternate["stockout_risk"] <= limit)
    at_risk = primary["stockout_risk"] > limit
    over_primary = _units_over_need(primary["order_qty"], moq)
    over_alternate = _units_over_need(alternate["order_qty"], alt_moq)
    cycle_demand = primary["order_up_to"] - primary["reorder_point"]
    for_risk = at_risk & alt_safe
    no_riskier = has_alt & (alternate["stockout_risk"] <= np.maximum(primary["stockout_risk"], limit))
    for_minimum = ~for_risk & no_riskier & (over_primary > cycle_demand) & (over_alternate < over_primary)
    use_alt = for_risk | for_minimum
    if naive_cover_days is not None:
        daily = (
            mean_daily_sales(inventory, as_of)
            .astype({"sku": str})
            .set_index(keys)["daily_sales"]
            .reindex(mean.index)
            .fillna(0.0)
            .to_numpy()
        )
        s_naive, big_s_naive = naive_cover_levels(daily, lead, naive_cover_days, order_cycle=order_cycle)
        primary = primary | {
            "safety_stock": naive_cover_days * daily,
            "reorder_point": s_naive,
            "order_up_to": big_s_naive,
            "order_qty": np.where(pos <= s_naive, np.ceil(big_s_naive - pos), 0.0).clip(0, None),
        }
        over_primary = _units_over_need(primary["order_qty"], moq)
        use_alt = for_risk = for_minimum = np.zeros(len(out), dtype=bool)
    out["phi"] = phi
    out["demand_class"] = pd.array(classes, dtype="string")  # VARCHAR in the warehouse even when all missing
    out["service_level"] = service_level
    out["lead_time_days"] = lead
    for k in ("lead_time_demand", "lead_time_q", "safety_stock", "reorder_point", "order_up_to"):
        out[k] = np.where(use_alt, alternate[k], primary[k])
    qty = np.where(use_alt, alternate["order_qty"], primary["order_qty"])
    out["min_order_qty"] = np.where(use_alt, alt_moq, moq)
    out["order_qty"] = np.where(qty > 0, np.maximum(qty, out["min_order_qty"]), 0.0)
    out["units_over_need"] = np.where(use_alt, over_alternate, over_primary)
    out["stockout_risk"] = primary["stockout_risk"]
    out["supplier_id"] = prod["supplier_id"].to_numpy() if "supplier_id" in prod else None
    out["alt_supplier_id"] = prod["alt_supplier_id"].to_numpy() if "alt_supplier_id" in prod else None
    out["alt_lead_time_days"] = alt_lead
    out["alt_stockout_risk"] = np.where(has_alt, alternate["stockout_risk"], np.nan)
    out["use_alternate"] = use_alt
    out["supplier_choice"] = np.select(
        [for_risk, for_minimum], ["stock-out risk", "minimum order"], default="primary"
    )
    out["order_from"] = np.where(use_alt, out["alt_supplier_id"], out["supplier_id"])
    out["price"] = price
    short = np.zeros(len(out))
    risky = primary["stockout_risk"] > 1e-4  # the rest has (numerically) nothing short
    short[risky] = expected_shortage(pos[risky], primary["lead_time_demand"][risky], phi[risky])
    out["expected_shortage"] = short
    out["revenue_at_risk"] = short * price
    return out
