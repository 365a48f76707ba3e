"""Entry points for the daily pipeline (the Dagster assets call these; nothing here imports Dagster).

- :func:`forecast_for_origin`: the ``demand_forecast`` asset for day D: fit on demand up to D, forecast D+1..D+h
  with mean and quantiles (per ``unique_id``; a warehouse is part of the id, e.g. ``"SKU|WH1"``, or pass
  ``group_col`` to forecast each warehouse's panel separately);
- :func:`backtest`: the ``forecast_backtest`` asset: once actuals arrive, the accuracy of forecasts made k days
  earlier (overall and by step), as plain numbers that plot over partitions;
- :func:`candidates` / :func:`default_model`: the production model, the same one the benchmark scores;
  :func:`fast_model`: the same selection rule over the vectorised local models only (no gradient boosting), for
  the daily step when the SKU count makes the full model too slow.

Platform-facing (the shapes of the dbt marts; what the ``supply`` assets call):

- :func:`demand_from_mart`: ``fct_daily_sku_demand`` (``sku, demand_date, units, revenue, n_orders,
  is_zero_filled``) -> the long frame the models read;
- :func:`daily_forecast`: forecast for day D from the mart up to D: one row per SKU (and warehouse when
  ``warehouse_shares`` is given) and day D+1..D+h with ``mean, q50, q90`` and the model name;
- :func:`backtest_for_day`: once day D's actuals exist, the accuracy of the forecasts made k days earlier
  (one row per k: WAPE, bias, pinball, coverage, RMSSE/WRMSSE), numbers that plot over partitions.

The replenishment plan and stock-out alerts are :func:`ml.inventory.plan_from_marts` (or the lower-level
:func:`ml.inventory.replenishment_plan`) and :func:`ml.inventory.stockout_alerts`, fed with the frame
:func:`daily_forecast` returns.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ml.forecast.base import Forecaster, ShortHistoryError
from ml.forecast.baselines import TSB, CrostonSBA, MovingAverage, Naive, SeasonalNaive
from ml.forecast.classify import classify_panel
from ml.forecast.ensemble import SelectedEnsemble
from ml.forecast.gbm import GlobalGBM
from ml.forecast.metrics import (
    bias,
    coverage,
    mase_per_series,
    naive_scales,
    pinball_loss,
    rmsse_per_series,
    wape,
)
from ml.forecast.metrics import weighted_mean as _wmean
from ml.forecast.panel import DS, ID, Y, to_panel
from ml.forecast.quantiles import history_dispersion, nb1_quantile

MART_COLUMNS = ("sku", "demand_date", "units", "revenue", "n_orders")


def candidates(
    kind: str = "generic", season_length: int = 6, horizon: int = 28, covariates=()
) -> dict[str, callable]:
    """Candidate factories for the ensemble, with the covariates a source offers.

    Online Retail: ``orders`` is a past-only flow and ``price`` a past-only level (tiered prices move with order
    size, so a future price is not known). Other sources: every numeric covariate except ``revenue`` is taken as
    known in advance (a planned price or promotion).
    """
    if kind == "online_retail":
        gbm_kw = dict(past_covariates=("orders",), known_covariates=(), price="price")
    else:
        known = tuple(c for c in covariates if c not in ("revenue", "orders"))
        past = ("orders",) if "orders" in covariates else ()
        gbm_kw = dict(
            past_covariates=past, known_covariates=known, price="price" if "price" in known else None
        )
    return {
        "gbm": lambda: GlobalGBM(horizon=horizon, season_length=season_length, **gbm_kw),
        "tsb": lambda: TSB(),
        "tsb_slow": lambda: TSB(alpha_d=0.05, alpha_p=0.05),
        "croston_sba": lambda: CrostonSBA(),
        "moving_average_28": lambda: MovingAverage(28),
        "naive": lambda: Naive(),
        "seasonal_naive": lambda: SeasonalNaive(season_length),
    }


def default_model(
    kind: str = "generic", season_length: int = 6, horizon: int = 28, covariates=(), n_origins: int = 4
) -> Forecaster:
    """The class-routed ensemble over :func:`candidates`, chosen on ``n_origins`` rolling validation origins."""
    cands = candidates(kind, season_length, horizon, covariates)
    covs = tuple(dict.fromkeys(c for f in cands.values() for c in f().covariates))
    return SelectedEnsemble(cands, horizon=horizon, n_origins=n_origins, covariates=covs)


def fast_model(season_length: int = 6, horizon: int = 28, n_origins: int = 4) -> Forecaster:
    """Class-routed selection over the vectorised local models (TSB, Croston-SBA, moving average, naive, seasonal
    naive), chosen and calibrated on ``n_origins`` rolling validation origins: 10k SKUs in seconds."""
    cands = {k: v for k, v in candidates("generic", season_length, horizon).items() if k != "gbm"}
    return SelectedEnsemble(
        cands, horizon=horizon, n_origins=n_origins, name="fast_ensemble", member_quantiles=False
    )


def forecast_for_origin(
    demand: pd.DataFrame,
    origin,
    horizon: int = 28,
    model: Forecaster | None = None,
    future: pd.DataFrame | None = None,
    kind: str = "generic",
    season_length: int = 6,
) -> pd.DataFrame:
    """Forecast ``horizon`` periods after ``origin`` from ``demand`` (long ``unique_id, ds, y`` + covariates).

    Rows after ``origin`` are dropped before fitting, so a backfill of an old partition gives the forecast that
    would have been made that day. ``future`` optionally gives the forecast dates (and known covariates);
    otherwise the calendar continues at its usual step. Returns ``origin, unique_id, ds, step, mean, q50, q90``.
    """
    covs = [c for c in demand.columns if c not in (ID, DS, Y) and pd.api.types.is_numeric_dtype(demand[c])]
    model = model or default_model(kind, season_length, horizon, covs)
    out = model.fit(demand, origin=origin).predict(horizon, future=future)
    out.insert(0, "origin", origin)
    return out


def backtest(
    forecast: pd.DataFrame,
    actuals: pd.DataFrame,
    history: pd.DataFrame | None = None,
    weights: pd.Series | None = None,
) -> tuple[dict, pd.DataFrame]:
    """Accuracy of a forecast frame (from :func:`forecast_for_origin`) against the actuals that have arrived.

    Only forecast dates on or before the last actual date are scored; a SKU with no row on a scored date sold
    nothing that day. ``history`` (demand up to the origin) enables the scaled metrics (RMSSE, WRMSSE, MASE);
    ``weights`` (by ``unique_id``, e.g. revenue) weights WRMSSE, else all SKUs count equally. Returns the overall
    metrics and a frame of metrics by ``step`` (days ahead).
    """
    last = actuals[DS].max()
    fc = forecast[forecast[DS] <= last]
    if fc.empty:
        return {"n_points": 0}, pd.DataFrame()
    act = actuals.groupby([ID, DS], as_index=False)[Y].sum()
    df = fc.merge(act, on=[ID, DS], how="left").fillna({Y: 0.0})
    overall = _point_metrics(df)
    if history is not None:
        ids = np.sort(df[ID].unique())
        hp = to_panel(history[history[ID].isin(ids)])
        pos = pd.Index(hp.ids).get_indexer(ids)
        steps = np.sort(df["step"].unique())
        wide = df.pivot_table(index=ID, columns="step", values=[Y, "mean"]).reindex(ids)
        y, m = wide[Y].reindex(columns=steps).to_numpy(), wide["mean"].reindex(columns=steps).to_numpy()
        hist = np.full((len(ids), hp.n_periods), np.nan)
        hist[pos >= 0] = hp.y[pos[pos >= 0]]
        s1, s2 = naive_scales(hist)
        w = np.ones(len(ids)) if weights is None else weights.reindex(ids).fillna(0).to_numpy(dtype=float)
        r = rmsse_per_series(y, m, s2)
        overall.update(
            WRMSSE=_wmean(r, w),
            RMSSE=_wmean(r, np.ones(len(ids))),
            MASE=_wmean(mase_per_series(y, m, s1), np.ones(len(ids))),
        )
    by_step = pd.DataFrame([{"step": k, **_point_metrics(g)} for k, g in df.groupby("step")])
    return overall, by_step


def _point_metrics(df: pd.DataFrame) -> dict:
    y, m = df[Y].to_numpy(dtype=float), df["mean"].to_numpy(dtype=float)
    out = {"n_points": len(df), "WAPE": wape(y, m), "bias": bias(y, m)}
    for q, col in ((0.5, "q50"), (0.9, "q90")):
        if col in df:
            out[f"pinball{int(q * 100)}"] = float(pinball_loss(y, df[col].to_numpy(dtype=float), q).mean())
    if "q90" in df:
        out["coverage90"] = coverage(y, df["q90"].to_numpy(dtype=float))
    return out


# -- platform-facing: the shapes of the dbt marts ------------------------------------------------------------
REVERSED_COLUMNS = {"units": "units_reversed_same_day", "revenue": "revenue_reversed_same_day"}
"""The mart's columns for the part of each measure that the same customer undid on the same day."""


def planning_demand(mart: pd.DataFrame) -> pd.DataFrame:
    """``fct_daily_sku_demand`` rows as the supply chain plans on them: ``units`` and ``revenue`` less the sales
    the same customer reversed on the same day (``units_reversed_same_day``, ``revenue_reversed_same_day``).

    Why: such a sale never took stock off the shelf. Online Retail's order 541431 (74,215 units of one SKU,
    cancelled minutes later) otherwise made that SKU's dispersion and safety stock absurd for months. The
    benchmark keeps DESIGN.md's protocol demand (``units`` as is). A partition built before the columns existed
    has NULLs there until it is re-materialised; those rows count as nothing reversed.
    """
    missing = [c for c in REVERSED_COLUMNS.values() if c not in mart.columns]
    if missing:
        raise ValueError(
            f"fct_daily_sku_demand frame lacks {missing}: the warehouse was built by an older version; "
            "re-materialise the marts (make backfill FROM=... TO=...)"
        )
    out = mart.copy()
    for measure, reversed_part in REVERSED_COLUMNS.items():
        out[measure] = out[measure] - out[reversed_part].fillna(0)
    return out


def demand_from_mart(mart: pd.DataFrame) -> pd.DataFrame:
    """``fct_daily_sku_demand`` rows -> ``unique_id, ds, y, revenue, orders, price`` for the models.

    The mart is zero-filled over trading days from each SKU's first sale, which is exactly the panel the models
    expect. ``price`` is the day's revenue per unit on selling days (NaN otherwise; the panel carries it forward).
    """
    missing = set(MART_COLUMNS) - set(mart.columns)
    if missing:
        raise ValueError(f"fct_daily_sku_demand frame lacks columns {sorted(missing)}")
    units = mart["units"].to_numpy(dtype=float)
    revenue = mart["revenue"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        price = np.where(units > 0, revenue / np.where(units > 0, units, 1.0), np.nan)
    return pd.DataFrame(
        {
            ID: mart["sku"].astype(str).to_numpy(),
            DS: pd.to_datetime(mart["demand_date"]).to_numpy(),
            Y: units,
            "revenue": revenue,
            "orders": mart["n_orders"].to_numpy(dtype=float),
            "price": price,
        }
    )


RECENT_DAYS = 224
"""Demand a SKU's class and its own dispersion are measured on (the plan and the service-level tuning alike)."""


def demand_classes_as_of(mart: pd.DataFrame, day, days: int = RECENT_DAYS) -> pd.Series:
    """:func:`demand_classes` of the ``days`` days of ``mart`` up to ``day`` (nothing later): the classes the
    plan gives the SKUs on ``day``."""
    dates = pd.to_datetime(mart["demand_date"])
    day = pd.Timestamp(day)
    return demand_classes(mart[(dates <= day) & (dates > day - pd.Timedelta(days=days))])


def demand_classes(mart: pd.DataFrame) -> pd.Series:
    """Demand class per SKU (ADI / CV², :mod:`ml.forecast.classify`) of ``fct_daily_sku_demand`` rows: a Series
    sku -> class (empty for an empty frame)."""
    if mart.empty:
        return pd.Series(dtype=object)
    classes = classify_panel(to_panel(demand_from_mart(mart)))
    return classes.set_index("unique_id")["demand_class"]


def sku_dispersion(mart: pd.DataFrame) -> pd.Series:
    """NB1 dispersion per SKU from its own ``fct_daily_sku_demand`` history (recent index of dispersion, at least
    1; :func:`ml.forecast.quantiles.history_dispersion`): a Series sku -> phi (empty for an empty frame)."""
    if mart.empty:
        return pd.Series(dtype=float)
    panel = to_panel(demand_from_mart(mart))
    return pd.Series(history_dispersion(panel.y), index=panel.ids.astype(str))


def next_periods(calendar: np.ndarray, h: int, lookback_days: int = 56) -> np.ndarray:
    """The next ``h`` dates of a trading calendar: calendar days after its end, skipping weekdays on which the
    shop did not trade in the last ``lookback_days`` (Online Retail never trades on Saturdays). A weekday counts
    as closed only once it has passed at least twice without trading, so a short history (the first days of a
    shop) forecasts every calendar day instead of guessing a weekly calendar from one or two dates."""
    cal = pd.DatetimeIndex(np.asarray(calendar))
    last = cal[-1]
    start = max(cal[0], last - pd.Timedelta(days=lookback_days - 1))
    recent = cal[cal >= start]
    passed = pd.date_range(start, last, freq="D").dayofweek.value_counts()
    closed = {d for d in range(7) if passed.get(d, 0) >= 2 and d not in set(recent.dayofweek)}
    open_days = set(range(7)) - closed
    out, day = [], last
    while len(out) < h:
        day = day + pd.Timedelta(days=1)
        if day.dayofweek in open_days:
            out.append(day)
    return pd.DatetimeIndex(out).to_numpy()


SELECTION_EPOCH = pd.Timestamp("2000-01-03")  # a Monday: weekly selections fall on Mondays


def selection_anchor(as_of, every_days: int = 7) -> pd.Timestamp:
    """The day whose model selection serves day ``as_of``: the last day on or before it on a fixed grid of
    ``every_days`` (Mondays for 7). A fixed grid, not "the newest selection on disk", so a partition gives the
    same forecast whatever order runs and backfills happen in."""
    days = (pd.Timestamp(as_of).normalize() - SELECTION_EPOCH).days
    return SELECTION_EPOCH + pd.Timedelta(days=(days // every_days) * every_days)


def history_fingerprint(demand: pd.DataFrame, up_to) -> str:
    """A short hash of the demand rows dated on or before ``up_to`` (order of rows and columns ignored): what a
    stored selection was fitted on, so a selection is only reused for the same history."""
    import hashlib

    part = demand[demand[DS] <= pd.Timestamp(up_to)]
    part = part[sorted(part.columns)].sort_values([ID, DS], kind="mergesort")
    hashes = pd.util.hash_pandas_object(part, index=False).to_numpy()
    return hashlib.sha256(hashes.tobytes()).hexdigest()[:12]


def stored_selection(
    model: Forecaster, demand: pd.DataFrame, as_of, folder, every_days: int = 7
) -> tuple[Forecaster, pd.Timestamp, dict]:
    """``model`` selected and trained on the demand up to the selection anchor of ``as_of`` (loaded from
    ``folder`` when an earlier day of the period already did it on the same history, else fitted and saved
    there), then updated with the demand up to ``as_of`` (``Forecaster.update``). Returns ``(model, anchor, info)``,
    ``info``: ``reused`` (loaded from ``folder``), ``history`` (the fingerprint) and ``replaced`` (how many stored
    selections of the same anchor, fitted on another history, the new one replaced).

    The stored file is keyed by the anchor, the model and :func:`history_fingerprint` of the demand up to the
    anchor. Why the fingerprint: when the history changes (late data re-landed, a mart rebuilt under a new rule
    such as net demand) a selection keyed by the day alone would keep serving models trained on the old history
    until its week ended. A new selection replaces the stale files of the same anchor and model.

    Everything it reads is dated on or before ``as_of``: the anchor is never after it.
    """
    import pickle
    import warnings
    from pathlib import Path

    anchor = selection_anchor(as_of, every_days)
    if demand.empty or demand[DS].min() > anchor:
        raise ShortHistoryError(f"no demand on or before the selection day {anchor.date()}")
    folder = Path(folder)
    stem = f"selection-{anchor.date()}-{model.name}"
    fingerprint = history_fingerprint(demand, anchor)
    path = folder / f"{stem}-{fingerprint}.pkl"
    stored = None
    if path.exists():
        try:
            with path.open("rb") as fh:
                stored = pickle.load(fh)
        except Exception as exc:  # written by an older version of the code, or damaged: select again
            msg = f"{path.name} could not be loaded ({type(exc).__name__}: {exc}); selecting again"
            warnings.warn(msg, stacklevel=2)
    reused, replaced = stored is not None, 0
    if reused:
        model = stored
    else:
        model.fit(demand, origin=anchor)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            pickle.dump(model.for_storage(), fh)
        tmp.replace(path)  # atomic: a concurrent reader sees the whole file or none
        # Selections of this anchor fitted on another history (and the unkeyed name older versions wrote).
        for stale in [*folder.glob(f"{stem}-{'[0-9a-f]' * 12}.pkl"), folder / f"{stem}.pkl"]:
            if stale != path and stale.exists():
                stale.unlink(missing_ok=True)
                replaced += 1
    covs = tuple(c for c in model.covariates if c in demand.columns)
    model.update(to_panel(demand, covariates=covs, origin=pd.Timestamp(as_of)))
    return model, anchor, {"reused": reused, "history": fingerprint, "replaced": replaced}


def daily_forecast(
    mart: pd.DataFrame,
    as_of,
    horizon: int = 28,
    model: Forecaster | str = "fast",
    warehouse_shares: pd.DataFrame | None = None,
    season_length: int = 6,
    n_origins: int = 4,
    selection_dir=None,
    reselect_every_days: int = 7,
) -> pd.DataFrame:
    """The ``demand_forecast`` asset for day ``as_of`` (D) from ``fct_daily_sku_demand``.

    Reads only rows with ``demand_date <= D``; forecasts the next ``horizon`` trading days (:func:`next_periods`).
    ``model``: ``"fast"`` (:func:`fast_model`, the daily default: 10k SKUs in seconds), ``"full"``
    (:func:`default_model`, with the global gradient-boosting model: minutes) or any :class:`Forecaster`.
    ``warehouse_shares`` (``sku, warehouse_id, share``; shares of a SKU sum to 1, e.g. from
    :func:`ml.inventory.warehouse_shares`) splits each SKU's forecast by warehouse: means scale by the share and
    quantiles come from the thinned negative binomial (a share ``s`` of NB1(mean, phi) demand is
    NB1(s * mean, 1 + s * (phi - 1))), not from scaling the quantiles, which would understate small warehouses.
    ``selection_dir``: select and train once per ``reselect_every_days`` (:func:`stored_selection`; the models
    are kept there) and only update with the newest demand on the other days: on Online Retail's 2,808 SKUs the
    full ensemble's selection takes about 50 s on a quiet machine (the benchmark table), an update about a
    second. Without it the model is selected afresh every day. The frame's ``attrs["selection"]`` says which
    day's selection served, whether it was reused and the history it was fitted on (:func:`stored_selection`).

    Returns ``origin_date, sku, [warehouse_id,] forecast_date, step, mean, q50, q90, model``.
    """
    as_of = pd.Timestamp(as_of)
    demand = demand_from_mart(mart)
    demand = demand[demand[DS] <= as_of]
    if isinstance(model, str):
        if model == "fast":
            model = fast_model(season_length, horizon, n_origins)
        elif model == "full":
            model = default_model(
                "online_retail", season_length, horizon, ("revenue", "orders", "price"), n_origins
            )
        else:
            raise ValueError(f"unknown model {model!r}: 'fast', 'full' or a Forecaster")
    selection = {"selected_on": str(as_of.date()), "reused": False}
    try:
        if selection_dir is None:
            model.fit(demand)
        else:
            model, anchor, info = stored_selection(model, demand, as_of, selection_dir, reselect_every_days)
            selection = {"selected_on": str(anchor.date()), **info}
    except ShortHistoryError:
        # The store's first weeks cannot hold a validation window: serve TSB (the strongest single model on
        # intermittent demand in the benchmark) until they can, under a name that says so.
        model = TSB()
        model.fit(demand)
        model.name = "tsb_short_history"
    cal = next_periods(model.panel_.calendar, horizon)
    fc = model.predict_panel(horizon, future_calendar=cal)
    out = fc.to_frame().rename(columns={ID: "sku", DS: "forecast_date"})
    out.insert(0, "origin_date", as_of)
    out["model"] = model.name
    if warehouse_shares is not None:
        out = split_by_warehouse(out, warehouse_shares)
    out.attrs["selection"] = selection
    return out


def split_by_warehouse(forecast: pd.DataFrame, shares: pd.DataFrame) -> pd.DataFrame:
    """Split a SKU-level forecast frame (``sku, step, mean, q50, q90, ...``) by ``shares``
    (``sku, warehouse_id, share``): means scale by the share; each quantile is that of the thinned negative
    binomial NB1(s * mean, 1 + s * (phi - 1)), ``phi`` implied by the SKU's own ``mean``/``q90``."""
    from ml.inventory.policy import implied_dispersion

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


def backtest_for_day(forecasts: pd.DataFrame, mart: pd.DataFrame, day, lags=(1, 7, 14, 28)) -> pd.DataFrame:
    """The ``forecast_backtest`` asset for day D: accuracy of the forecasts made ``k`` periods before D.

    ``forecasts``: stacked :func:`daily_forecast` outputs (``origin_date, sku, forecast_date, step, mean, q50,
    q90``; SKU-level rows); ``mart``: ``fct_daily_sku_demand`` up to at least D. For each ``k`` the origin is the
    ``k``-th trading day before D (the latest available origin on or before it), and its forecasts are scored
    on every date in ``(origin, D]``: all the actuals that have arrived. WRMSSE is weighted by each SKU's revenue
    in the 28 trading days up to the origin, and the scales come from the history up to the origin, as in the
    benchmark. Returns one row per ``k``: ``day, lag, origin_date, n_points, WAPE, bias, pinball50, pinball90,
    coverage90, RMSSE, WRMSSE, MASE`` (a lag with no forecast yields no row).
    """
    day = pd.Timestamp(day)
    demand = demand_from_mart(mart)
    cal = np.sort(demand.loc[demand[DS] <= day, DS].unique())
    fc_all = forecasts.rename(columns={"sku": ID, "forecast_date": DS})
    fc_all = fc_all[fc_all[DS] <= day]
    origins = np.sort(pd.to_datetime(fc_all["origin_date"]).unique())
    rows = []
    for k in lags:
        if len(cal) <= k:
            continue
        target = cal[-1 - k]
        avail = origins[origins <= target]
        if not len(avail):
            continue
        origin = avail[-1]
        fc = fc_all[pd.to_datetime(fc_all["origin_date"]) == origin]
        acts = demand[(demand[DS] > origin) & (demand[DS] <= day)]
        hist = demand[demand[DS] <= origin]
        recent = np.sort(hist[DS].unique())[-28:]
        weights = hist[hist[DS].isin(recent)].groupby(ID)["revenue"].sum()
        overall, _ = backtest(fc, acts[[ID, DS, Y]], history=hist[[ID, DS, Y]], weights=weights)
        rows.append({"day": day, "lag": int(k), "origin_date": pd.Timestamp(origin), **overall})
    return pd.DataFrame(rows)
