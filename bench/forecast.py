"""Demand-forecast benchmark: our models against statsforecast and mlforecast peers under docs/PROTOCOLS.md's protocol.

    python -m bench.forecast --data data/online_retail/online_retail.csv.gz --out forecast.json

    # the second edition (both years; docs/benchmarks/forecast.md):
    python -m bench.forecast --data data/online_retail/online_retail.csv.gz \\
        --year-before data/online_retail_ii/online_retail_ii_2009_2010.parquet \\
        --validation-days 2010-10-06,2010-11-08,2011-07-31,2011-09-02,2011-10-05 \\
        --level-factor-days 2010-10-06,2010-11-08 \\
        --score-history-from 2010-12-01 --out forecast_two_years.json

``--data`` is the Online Retail CSV (recognised by its columns) or a generic long CSV ``unique_id, ds, y`` with
optional numeric covariates (``price``, ``promo``: treated as known in advance). The protocol (origin, scope,
weights) is :mod:`ml.forecast.protocol`; metrics are :mod:`ml.forecast.metrics`.

Our models give the quantile levels the platform serves (``ml.forecast.daily.SERVED_QUANTILES``: 0.5 .. 0.99),
each scored for coverage (``coverage50`` .. ``coverage99``). Models: ours are unprefixed (the class-routed ``ensemble`` and its members, each member with quantile levels
calibrated on the same validation origins, plus ``fast_ensemble``, the same rule over the local models only, which
is what the daily step runs by default, and ``zero``). With ``--year-before`` (or when named), ``ensemble_yoy``
is the same rule with the global model's year-before features (``gbm_yoy``) and the level factor fitted on the
``--level-factor-days`` origins; ``ensemble_yoy_no_level`` is it without the factor and ``ensemble_level`` the
plain ensemble with its own factor from the same origins (the two ablations). Peers are ``statsforecast:<Model>`` and
``mlforecast:lightgbm_tweedie`` (the ``bench`` extra; skipped with a note when not installed).

Peer quantiles: SeasonalNaive and AutoETS give statsforecast's own 80% interval, whose upper bound is the 0.9
quantile (and the point forecast the 0.5 one). The intermittent models (CrostonOptimized, ADIDA, IMAPA, TSB) have
no intervals of their own, and LightGBM none either: their ``q`` is the point forecast plus the series' empirical
``q``-quantile of in-sample one-step residuals (``y - fitted``), clipped at zero (a per-series conformal
quantile). Peers fit on the in-scope series only (a local model does not depend on other series; the LightGBM
peer sees the same 2,808 series as everyone is scored on); everything runs single-threaded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ml.forecast.baselines import Zero  # noqa: E402
from ml.forecast.classify import CLASSES, adi_cv2, classify  # noqa: E402
from ml.forecast.daily import SERVED_QUANTILES  # noqa: E402
from ml.forecast.ensemble import SelectedEnsemble  # noqa: E402
from ml.forecast.metrics import bootstrap_intervals, evaluate  # noqa: E402
from ml.forecast.models import candidates, fast_model  # noqa: E402
from ml.forecast.panel import Panel  # noqa: E402
from ml.forecast.protocol import (  # noqa: E402
    HORIZON,
    MIN_AGE,
    RECENT,
    SEASON_LENGTH,
    WEIGHT_WINDOW,
    Split,
    load_panel,
    make_split,
    read_demand_csv,
    read_online_retail_years,
)

STATSFORECAST_MODELS = ("SeasonalNaive", "CrostonOptimized", "ADIDA", "IMAPA", "TSB", "AutoETS")
LGBM_NAME = "mlforecast:lightgbm_tweedie"
OURS = (
    "ensemble",
    "ensemble_yoy",
    "ensemble_yoy_no_level",
    "ensemble_level",
    "gbm_yoy",
    "fast_ensemble",
    "gbm",
    "tsb",
    "tsb_slow",
    "croston_sba",
    "moving_average_28",
    "naive",
    "seasonal_naive",
    "zero",
)


# Experimental candidates: the production GBM with other settings (``GlobalGBM`` keyword arguments).
EXTRA_CANDIDATES = {
    "gbm_wrmsse": {"weighting": "wrmsse"},
    "gbm_wrmsse_sqrt": {"weighting": "wrmsse_sqrt"},
    "gbm_recency": {"anchor_half_life": 60.0},
    "gbm_last_peak": {"peak_months": (11, 12)},
    "gbm_last_peak_recency": {"peak_months": (11, 12), "anchor_half_life": 60.0},
}


# Configurations that need a year of history before the validation origins (the second edition).
YEAR_BEFORE_CONFIGS = ("ensemble_yoy", "ensemble_yoy_no_level", "ensemble_level", "gbm_yoy")


def _yoy(model):
    """The production GBM with the year-before features (protocol, second edition: configuration 2)."""
    model.year_before = True
    model.name = "gbm_yoy"
    return model


def _variant(model, name: str):
    for key, value in EXTRA_CANDIDATES[name].items():
        setattr(model, key, value)
    model.name = name
    return model


# -- peers ------------------------------------------------------------------------------------------------
def _long_int(panel: Panel, ids, origin: int) -> pd.DataFrame:
    """Training frame for the peers: in-scope series, integer period index as ``ds`` (trading days are irregular)."""
    sub = panel.subset(ids)
    y = sub.y[:, : origin + 1]
    rows, cols = np.nonzero(~np.isnan(y))
    return pd.DataFrame({"unique_id": sub.ids[rows], "ds": cols.astype(np.int64), "y": y[rows, cols]})


def _residual_quantiles(fitted: pd.DataFrame, col: str, ids, levels) -> dict[float, np.ndarray]:
    """Per-series empirical quantiles of in-sample residuals ``y - fitted`` (NaN fitted values skipped)."""
    r = (fitted["y"] - fitted[col]).to_numpy()
    g = pd.DataFrame({"unique_id": fitted["unique_id"].to_numpy(), "r": r}).dropna()
    out = {}
    for q in levels:
        s = g.groupby("unique_id")["r"].quantile(q)
        out[q] = s.reindex(ids).fillna(0.0).to_numpy()
    return out


def _matrix(fc: pd.DataFrame, col: str, ids, h: int) -> np.ndarray:
    wide = fc.pivot(index="unique_id", columns="ds", values=col).reindex(ids)
    return wide.to_numpy()[:, :h]


def run_statsforecast(split: Split, season_length: int, names) -> dict[str, dict]:
    from statsforecast import StatsForecast
    from statsforecast import models as sfm

    h, ids = split.horizon, split.ids
    train = _long_int(split.panel, ids, split.origin)
    builders = {
        "SeasonalNaive": lambda: sfm.SeasonalNaive(season_length=season_length),
        "CrostonOptimized": lambda: sfm.CrostonOptimized(),
        "ADIDA": lambda: sfm.ADIDA(),
        "IMAPA": lambda: sfm.IMAPA(),
        "TSB": lambda: sfm.TSB(alpha_d=0.1, alpha_p=0.1),
        "AutoETS": lambda: sfm.AutoETS(season_length=season_length),
    }
    native = {"SeasonalNaive", "AutoETS"}
    out = {}
    for name in names:
        t0 = time.perf_counter()
        model = builders[name]()
        sf = StatsForecast(models=[model], freq=1, n_jobs=1)
        if name in native:
            fc = sf.forecast(df=train, h=h, level=[80])
            mean = _matrix(fc, name, ids, h)
            quant = {0.5: mean, 0.9: _matrix(fc, f"{name}-hi-80", ids, h)}
        else:
            fc = sf.forecast(df=train, h=h, fitted=True)
            mean = _matrix(fc, name, ids, h)
            rq = _residual_quantiles(sf.forecast_fitted_values(), name, ids, (0.5, 0.9))
            quant = {q: mean + rq[q][:, None] for q in (0.5, 0.9)}
        out[f"statsforecast:{name}"] = {"mean": mean, "quantiles": quant, "seconds": time.perf_counter() - t0}
    return out


def run_mlforecast(split: Split) -> dict[str, dict]:
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean

    h, ids = split.horizon, split.ids
    t0 = time.perf_counter()
    train = _long_int(split.panel, ids, split.origin)
    model = lgb.LGBMRegressor(
        objective="tweedie", num_threads=1, verbose=-1, n_estimators=300, learning_rate=0.05
    )
    mlf = MLForecast(
        models={"lgbm": model},
        freq=1,
        lags=[1, 2, 3, 4, 5, 6, 7, 14, 28],
        lag_transforms={
            1: [RollingMean(window_size=6), RollingMean(window_size=28)],
            6: [RollingMean(window_size=6)],
        },
        num_threads=1,
    )
    train["sku"] = train["unique_id"].astype("category")
    mlf.fit(train, static_features=["sku"], fitted=True)
    fc = mlf.predict(h)
    mean = np.clip(_matrix(fc, "lgbm", ids, h), 0, None)
    rq = _residual_quantiles(mlf.forecast_fitted_values(), "lgbm", ids, (0.5, 0.9))
    quant = {q: mean + rq[q][:, None] for q in (0.5, 0.9)}
    return {LGBM_NAME: {"mean": mean, "quantiles": quant, "seconds": time.perf_counter() - t0}}


# -- scoring ----------------------------------------------------------------------------------------------
def _round(d: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


def _scored(values: np.ndarray) -> np.ndarray:
    """A forecast as it is scored: missing values count as 0, negatives as 0 (demand cannot be negative)."""
    return np.clip(np.nan_to_num(values), 0, None)


def score(split: Split, mean, quantiles, classes, scale_from=None) -> tuple[dict, dict]:
    """Overall metrics and the same per demand class (weights renormalised inside each class); the scales come
    from the history since ``scale_from`` (all of it by default)."""
    actual, hist, w = split.actual(), split.history(scale_from), split.weights
    quantiles = {q: _scored(v) for q, v in quantiles.items()}
    mean = _scored(mean)
    overall = _round(evaluate(actual, mean, hist, w, quantiles))
    by = {}
    for cls in CLASSES:
        m = classes == cls
        if m.any():
            r = evaluate(actual[m], mean[m], hist[m], w[m], {q: v[m] for q, v in quantiles.items()})
            r["weight_share"] = float(w[m].sum() / w.sum()) if w.sum() > 0 else float("nan")
            by[cls] = _round(r)
    return overall, by


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {cpu or platform.processor()}, {os.cpu_count()} cores, single thread"


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for p in ("numpy", "pandas", "scikit-learn", "scipy", "statsforecast", "mlforecast", "lightgbm"):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    return out


def resolve_models(requested: list[str]) -> tuple[list[str], list[str], bool]:
    """Split ``--models`` into (our names, statsforecast names, whether to run the LightGBM peer)."""
    req = set(requested)
    all_ = "all" in req
    ours = [m for m in OURS if all_ or "ours" in req or m in req]
    sf = [m for m in STATSFORECAST_MODELS if all_ or "peers" in req or f"statsforecast:{m}" in req]
    lg = all_ or "peers" in req or LGBM_NAME in req
    unknown = (
        req
        - {"all", "ours", "peers", LGBM_NAME}
        - set(OURS)
        - {f"statsforecast:{m}" for m in STATSFORECAST_MODELS}
    )
    if unknown:
        raise SystemExit(f"unknown models: {sorted(unknown)}")
    return ours, sf, lg


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.forecast", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data", required=True, help="Online Retail CSV(.gz) or a long CSV unique_id, ds, y [+covariates]"
    )
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--season-length", type=int, default=SEASON_LENGTH)
    ap.add_argument("--horizon", type=int, default=HORIZON)
    ap.add_argument("--n-origins", type=int, default=4, help="rolling validation origins for model selection")
    ap.add_argument(
        "--year-before",
        default=None,
        help="Online Retail II's first sheet (Parquet): with the Online Retail CSV as --data, both years as the "
        "platform replays them (protocol, second edition)",
    )
    ap.add_argument(
        "--validation-days",
        type=lambda v: [pd.Timestamp(d) for d in v.split(",") if d],
        default=None,
        help="comma-separated validation origin dates for our ensembles, instead of --n-origins rolling ones",
    )
    ap.add_argument(
        "--level-factor-days",
        type=lambda v: [pd.Timestamp(d) for d in v.split(",") if d],
        default=None,
        help="validation days (among --validation-days) whose pooled actuals over forecasts give the level "
        "factor of ensemble_yoy and ensemble_level (the second edition: the 2010-peak origins)",
    )
    ap.add_argument(
        "--score-history-from",
        type=pd.Timestamp,
        default=None,
        help="the scoring rules read the history from this date only: the scope (a SKU's first sale), the "
        "RMSSE/MASE scales and the demand classes (the second edition keeps the first edition's 2010-12-01 so "
        "that figures compare); the models still see everything. Default: the whole history",
    )
    ap.add_argument(
        "--models",
        nargs="+",
        default=["all"],
        help=f"'all' (default), 'ours', 'peers', or names: {', '.join(OURS)}, "
        f"{', '.join('statsforecast:' + m for m in STATSFORECAST_MODELS)}, {LGBM_NAME}",
    )
    ap.add_argument(
        "--max-validation-bias",
        type=lambda v: None if v == "none" else float(v),
        default=0.05,
        help="the ensemble's bias gate on validation (default 0.05; 'none' turns it off)",
    )
    ap.add_argument(
        "--extra-candidates",
        nargs="*",
        default=[],
        choices=sorted(EXTRA_CANDIDATES),
        help="variants added to the ensemble's candidate pool (selection on validation decides) and reported",
    )
    ap.add_argument(
        "--bootstrap",
        type=int,
        default=2000,
        help="resamples of the series for the intervals of WRMSSE, bias and the ratio to the best peer",
    )
    args = ap.parse_args(argv)
    ours, sf_names, run_lgbm = resolve_models(args.models)
    if not args.year_before:  # the year-before configurations need a second year; run them when named only
        ours = [m for m in ours if m not in YEAR_BEFORE_CONFIGS or m in args.models]
    ours = [*ours, *args.extra_candidates]

    t_start = time.perf_counter()
    if args.year_before:
        df, kind = read_online_retail_years(args.data, args.year_before), "online_retail"
    else:
        df, kind = read_demand_csv(args.data)
    panel = load_panel(df, kind)
    split = make_split(panel, horizon=args.horizon)
    if args.score_history_from is not None:
        # scope and weights as an edition whose data began on that date would have them
        shorter = make_split(panel.since(args.score_history_from), horizon=args.horizon)
        assert shorter.origin_ds == split.origin_ds
        split = Split(panel, split.origin, args.horizon, shorter.ids, shorter.weights)
    train = split.train()
    cal = split.test_calendar
    hist = split.history(args.score_history_from)
    classes = classify(*adi_cv2(hist))
    print(
        f"{kind}: {panel.n_series} series, {len(split.ids)} in scope, origin {split.origin_ds}",
        file=sys.stderr,
    )

    results: dict[str, dict] = {}
    selection = None
    if "zero" in ours:
        t0 = time.perf_counter()
        fc = Zero().fit_panel(train).predict_panel(args.horizon, cal).subset(split.ids)
        results["zero"] = {"mean": fc.mean, "quantiles": fc.quantiles, "seconds": time.perf_counter() - t0}
    if "fast_ensemble" in ours:
        # What the daily step runs by default (the same rule over the local models only, no gradient boosting).
        t0 = time.perf_counter()
        fast = fast_model(args.season_length, args.horizon, args.n_origins, SERVED_QUANTILES)
        fast.max_validation_bias = args.max_validation_bias
        fast.validation_days = tuple(args.validation_days) if args.validation_days else None
        fc = fast.fit_panel(train).predict_panel(args.horizon, cal).subset(split.ids)
        results["fast_ensemble"] = {
            "mean": fc.mean,
            "quantiles": fc.quantiles,
            "seconds": time.perf_counter() - t0,
        }
    fcov = {
        k: v[:, split.origin + 1 : split.origin + 1 + args.horizon]
        for k, v in panel.subset(train.ids).covariates.items()
    }
    covs = list(train.covariates)

    def run_ensemble(name: str, cands: dict, level_factor_days=None) -> dict:
        """Select and fit one class-routed ensemble; record it and its members; return it and its selection."""
        t0 = time.perf_counter()
        ens = SelectedEnsemble(
            cands,
            quantiles=SERVED_QUANTILES,
            horizon=args.horizon,
            n_origins=args.n_origins,
            max_validation_bias=args.max_validation_bias,
            validation_days=args.validation_days,
            level_factor_days=level_factor_days,
            name=name,
        )
        ens.fit_panel(train)
        fc = ens.predict_panel(args.horizon, future_calendar=cal, future_covariates=fcov).subset(split.ids)
        total = time.perf_counter() - t0
        if name in ours:
            results[name] = {"mean": fc.mean, "quantiles": fc.quantiles, "seconds": total}
        # A member's seconds: its mean fit + predict time at one origin (what a standalone run would cost).
        val_seconds = {n: sum(r.seconds[n] for r in ens.records_) for n in ens.candidates}
        refit = total - sum(val_seconds.values())
        for member, mfc in ens.member_forecasts_.items():
            if member in ours and member not in results:
                s = mfc.subset(split.ids)
                results[member] = {
                    "mean": s.mean,
                    "quantiles": s.quantiles,
                    "seconds": val_seconds[member] / max(len(ens.records_), 1),
                }
        summary = ens.selection_summary()
        summary["seconds_total"] = round(total, 1)
        summary["seconds_refit_all_members"] = round(refit, 1)
        print(f"{name} done in {total:.0f}s; weights {summary['weights']}", file=sys.stderr)
        return ens, summary

    def with_level_factor(ens, factor: float, name: str) -> None:
        """The fitted ensemble's forecast under another level factor (quantiles follow the scaled mean)."""
        t0 = time.perf_counter()
        ens.level_factor_ = factor
        fc = ens.predict_panel(args.horizon, future_calendar=cal, future_covariates=fcov).subset(split.ids)
        results[name] = {"mean": fc.mean, "quantiles": fc.quantiles, "seconds": time.perf_counter() - t0}

    cands = candidates(kind, args.season_length, args.horizon, covs)
    needs_plain = [m for m in ours if m not in ("zero", "fast_ensemble", *YEAR_BEFORE_CONFIGS)]
    if needs_plain or "ensemble_level" in ours:
        for name in args.extra_candidates:
            cands[name] = lambda n=name, base=cands["gbm"]: _variant(base(), n)
        ens, selection = run_ensemble("ensemble", cands)
        if "ensemble_level" in ours:
            factor = ens.level_factor(args.level_factor_days)
            with_level_factor(ens, factor, "ensemble_level")
            selection["ensemble_level_factor"] = round(factor, 4)
    if {"ensemble_yoy", "ensemble_yoy_no_level", "gbm_yoy"} & set(ours):
        yoy = dict(cands)
        yoy.pop("gbm")
        for name in args.extra_candidates:
            yoy.pop(name, None)
        yoy["gbm_yoy"] = lambda base=cands["gbm"]: _yoy(base())
        ens_yoy, yoy_selection = run_ensemble("ensemble_yoy", yoy, args.level_factor_days)
        if "ensemble_yoy_no_level" in ours:
            with_level_factor(ens_yoy, 1.0, "ensemble_yoy_no_level")
        if selection is None:
            selection = {}
        selection["ensemble_yoy"] = yoy_selection

    notes = []
    missing = [m for m in ("statsforecast", "mlforecast", "lightgbm") if importlib.util.find_spec(m) is None]
    if missing and (sf_names or run_lgbm):
        notes.append(
            f"peers not run: {', '.join(missing)} not installed (the 'bench' extra: statsforecast==2.1.1 "
            "mlforecast==1.1.0 lightgbm==4.7.0; statsforecast 2.1.1 needs pandas<3, so use a separate venv)"
        )
        print(f"NOTE: {notes[-1]}; scoring our models only", file=sys.stderr)
        sf_names = sf_names if "statsforecast" not in missing else []
        run_lgbm = run_lgbm and not ({"mlforecast", "lightgbm"} & set(missing))
    peer_jobs = [
        (f"statsforecast:{n}", lambda n=n: run_statsforecast(split, args.season_length, [n]))
        for n in sf_names
    ]
    if run_lgbm:
        peer_jobs.append((LGBM_NAME, lambda: run_mlforecast(split)))
    for name, job in peer_jobs:
        try:
            results.update(job())
        except ImportError as e:  # the bench extra is optional
            notes.append(f"{name} skipped: {e}")
            print(notes[-1], file=sys.stderr)
        except Exception as e:  # one failing peer must not lose the whole run; the JSON says what failed
            notes.append(f"{name} failed: {type(e).__name__}: {e}")
            print(notes[-1], file=sys.stderr)

    models, by_class = {}, {}
    for name, r in results.items():
        overall, by = score(split, r["mean"], r["quantiles"], classes, args.score_history_from)
        overall["seconds"] = round(r["seconds"], 1)
        models[name] = overall
        by_class[name] = by
        print(
            f"{name:34s} WRMSSE {overall['WRMSSE']:.4f} bias {overall['bias']:+.3f} "
            f"cov90 {overall['coverage90']:.3f} {overall['seconds']:.1f}s",
            file=sys.stderr,
        )

    # One test window of one shop: how much of the ranking is the draw of SKUs (paired over models).
    peers = [n for n in models if ":" in n]
    best_peer = min(peers, key=lambda n: models[n]["WRMSSE"]) if peers else None
    uncertainty = bootstrap_intervals(
        split.actual(),
        {name: _scored(r["mean"]) for name, r in results.items()},
        split.history(args.score_history_from),
        split.weights,
        reference=best_peer,
        n_boot=args.bootstrap,
    )
    for name, vs in uncertainty.get("vs_reference", {}).items():
        if ":" not in name:
            lo, hi = vs["WRMSSE_ratio"]
            print(
                f"{name:34s} WRMSSE / {best_peer}: 95% interval {lo:.3f}..{hi:.3f}, "
                f"lower in {vs['share_better']:.0%} of resamples",
                file=sys.stderr,
            )

    out = {
        "dataset": Path(args.data).name if kind == "generic" else "online_retail",
        "protocol": {
            "kind": kind,
            "season_length": args.season_length,
            "horizon": args.horizon,
            "origin_rule": "last training period = horizon periods before the end; single origin",
            "scope": f"first period >= {MIN_AGE} before the origin and demand in the last {RECENT} training periods",
            "weights": f"revenue in the last {WEIGHT_WINDOW} training periods",
            "validation_origins": [str(d.date()) for d in args.validation_days]
            if args.validation_days
            else args.n_origins,
            "score_history_from": str(args.score_history_from.date())
            if args.score_history_from is not None
            else None,
            "data": [Path(args.data).name] + ([Path(args.year_before).name] if args.year_before else []),
            "max_validation_bias": args.max_validation_bias,
            "level_factor_origins": [str(d.date()) for d in args.level_factor_days or ()],
        },
        "n_series": int(len(split.ids)),
        "origin": str(pd.Timestamp(split.origin_ds).date())
        if kind == "online_retail"
        else str(split.origin_ds),
        "test_periods": [str(cal[0]), str(cal[-1])],
        "machine": machine(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": versions(),
        "class_counts": {c: int((classes == c).sum()) for c in CLASSES},
        "models": models,
        "by_class": by_class,
        "selection": selection,
        "uncertainty": uncertainty,
        "notes": notes,
        "seconds_total": round(time.perf_counter() - t_start, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=_json_default))
    return out


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


if __name__ == "__main__":
    main()
