"""Replenishment policy replay: forecast-driven (s, S) against a naive moving-average policy, lost sales.

    python -m bench.inventory --data data/online_retail/online_retail.csv.gz --out inventory.json

Same data, origin and in-scope series as ``bench.forecast``. The test window (the last ``horizon`` periods) is
replayed day by day (:mod:`ml.inventory.simulate`) for both policies; both are tuned to the same target fill
rate on the ``--n-origins`` rolling validation windows before the origin (the forecast's own validation origins;
never on the test window):

- ours: the smallest cycle service level ``alpha`` on a grid whose replay reaches the target fill rate on every
  validation window, each with the forecast made at that window's origin;
- naive: moving-average demand (28 days) x (lead time + review) + a fixed cover of ``k`` days of average demand,
  ``k`` the smallest on a grid that reaches the target fill rate on every validation window.

Assumptions (Online Retail has no lead times, stock or suppliers): primary lead time ``--lead-time`` periods
(default 5 trading days), daily review, order cycle 6 periods (a trading week), lost sales, each policy starts
at its own order-up-to level with nothing on order, inventory valued at the SKU's last price before the origin.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.forecast import machine, versions  # noqa: E402
from ml.forecast.baselines import TSB  # noqa: E402
from ml.forecast.ensemble import SelectedEnsemble, _combine  # noqa: E402
from ml.forecast.protocol import (  # noqa: E402
    HORIZON,
    SEASON_LENGTH,
    load_panel,
    make_split,
    read_demand_csv,
    validation_origins,
)
from ml.forecast.quantiles import NegBinQuantiles, nb1_quantile  # noqa: E402
from ml.forecast.service import candidates  # noqa: E402
from ml.inventory.policy import Supplier, choose_supplier, implied_dispersion  # noqa: E402
from ml.inventory.simulate import forecast_policy, initial_stock, naive_policy, replay  # noqa: E402

# Cycle service levels tried when tuning (fine near 1: lumpy SKUs need the far tail).
ALPHA_GRID = (0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9997, 0.9998, 0.9999)
COVER_GRID = tuple(np.round(np.arange(0, 80.5, 0.5), 1))


def _dispersion(panel, ids, origin, mean, q90, mode: str) -> np.ndarray:
    """NB1 dispersion per SKU for the lead-time demand: implied by the forecast's q90 (``q90``), or the larger
    of that and the SKU's own recent index of dispersion (``max``): a q90 says little about the far tail that a
    high service level needs, and lumpy SKUs' history shows it."""
    phi = implied_dispersion(mean, q90)
    if mode == "max":
        hist = NegBinQuantiles().fit(panel.subset(ids).head(origin + 1)).phi_
        phi = np.maximum(phi, hist)
    return phi


def _forecasts(model: str, train, panel, split, kind, season_length, horizon, n_origins):
    """Test-window forecasts (mean, q90) for the in-scope series, and the same at each validation origin
    (``[(origin, ids, mean, q90)]``, oldest first): the ensemble's own validation origins, or the same rolling
    origins for a single model."""
    cal = split.test_calendar
    if model == "ensemble":
        ens = SelectedEnsemble(
            candidates(kind, season_length, horizon, list(train.covariates)),
            horizon=horizon,
            n_origins=n_origins,
        )
        ens.fit_panel(train)
        fc = ens.predict_panel(horizon, future_calendar=cal).subset(split.ids)
        vals = []
        for rec in ens.records_:
            vmean = np.zeros_like(rec.actual)
            vq90 = np.zeros_like(rec.actual)
            for cls, w in ens.weights_.items():
                sel = rec.classes == cls
                if cls == "all" or not sel.any():
                    continue
                vmean[sel] = _combine(rec.means, w)[sel]
                lvl = (ens.class_levels_.get(cls) or ens.global_levels_)[0.9]
                vq90[sel] = nb1_quantile(vmean[sel], rec.phi[sel, None], lvl)
            vals.append((rec.origin, rec.ids, vmean, vq90))
        return (fc.mean, fc.quantiles[0.9]), vals
    factories = candidates(kind, season_length, horizon, list(train.covariates))
    factories["tsb"] = TSB
    make = factories[model]
    fc = make().fit_panel(train).predict_panel(horizon, future_calendar=cal).subset(split.ids)
    vals = []
    for v in validation_origins(split.origin, n_origins, horizon, horizon):
        ids = make_split(panel, horizon=horizon, origin=v).ids
        vcal = panel.calendar[v + 1 : v + 1 + horizon]
        vfc = make().fit_panel(panel.head(v + 1)).predict_panel(horizon, future_calendar=vcal).subset(ids)
        vals.append((v, ids, vfc.mean, vfc.quantiles[0.9]))
    return (fc.mean, fc.quantiles[0.9]), vals


def _tune(grid, run, windows, target):
    """The first grid value whose replay reaches ``target`` fill rate on every validation window (else the
    last), with the per-window results."""
    for g in grid:
        res = [run(g, w) for w in windows]
        if min(r.fill_rate for r in res) >= target:
            return g, res
    return grid[-1], [run(grid[-1], w) for w in windows]


def _window(panel, ids, origin, horizon):
    sub = panel.subset(ids)
    return sub.y[:, : origin + 1], sub.filled()[:, origin + 1 : origin + 1 + horizon]


def _price(panel, ids, origin):
    if "price" not in panel.covariates:
        return np.ones(len(ids))
    return np.nan_to_num(panel.subset(ids).covariates["price"][:, origin], nan=0.0)


def _run_ours(mean, phi, demand, lead, alpha, cycle, price):
    pol = forecast_policy(mean, phi, lead, alpha, order_cycle=cycle)
    return replay(demand, pol, lead, initial_stock(pol), price)


def _run_naive(hist, demand, lead, cover, cycle, price):
    pol = naive_policy(hist, demand, lead, cover, order_cycle=cycle)
    return replay(demand, pol, lead, initial_stock(pol), price)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.inventory", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data", required=True, help="Online Retail CSV(.gz) or a long CSV unique_id, ds, y [+covariates]"
    )
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--horizon", type=int, default=HORIZON)
    ap.add_argument("--season-length", type=int, default=SEASON_LENGTH)
    ap.add_argument(
        "--lead-time", type=int, default=5, help="primary supplier lead time in periods (assumed)"
    )
    ap.add_argument("--alt-lead-time", type=int, default=2, help="alternate supplier lead time (assumed)")
    ap.add_argument(
        "--alt-cost", type=float, default=1.15, help="alternate supplier unit cost vs primary (assumed)"
    )
    ap.add_argument("--order-cycle", type=int, default=6)
    ap.add_argument(
        "--target", type=float, default=0.95, help="target fill rate (the service target of both)"
    )
    ap.add_argument("--model", default="ensemble", choices=["ensemble", "gbm", "tsb"])
    ap.add_argument(
        "--dispersion",
        default="max",
        choices=["max", "q90"],
        help="lead-time demand dispersion: implied by q90, or the max of that and the SKU's history (default)",
    )
    ap.add_argument("--n-origins", type=int, default=4)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    df, kind = read_demand_csv(args.data)
    panel = load_panel(df, kind)
    h = args.horizon
    split = make_split(panel, horizon=h)
    train = split.train()
    print(f"{kind}: {len(split.ids)} series in scope, origin {split.origin_ds}", file=sys.stderr)
    (mean, q90), val = _forecasts(
        args.model, train, panel, split, kind, args.season_length, h, args.n_origins
    )
    t_fc = time.perf_counter() - t0
    print(
        f"forecasts ({args.model}) done in {t_fc:.0f}s; tuning on {len(val)} validation windows",
        file=sys.stderr,
    )
    lead, cycle = args.lead_time, args.order_cycle

    # Tune both policies to the target on the validation windows before the origin (never on the test window).
    windows = []
    for v, vids, vmean, vq90 in val:
        vhist, vdem = _window(panel, vids, v, h)
        vphi = _dispersion(panel, vids, v, vmean, vq90, args.dispersion)
        windows.append((vhist, vdem, vmean, vphi, _price(panel, vids, v)))
    alpha, alpha_val = _tune(
        ALPHA_GRID, lambda a, w: _run_ours(w[2], w[3], w[1], lead, a, cycle, w[4]), windows, args.target
    )
    cover, cover_val = _tune(
        COVER_GRID, lambda c, w: _run_naive(w[0], w[1], lead, c, cycle, w[4]), windows, args.target
    )

    print(f"tuned: ours alpha {alpha}, naive cover {cover} days; replaying the test window", file=sys.stderr)
    # Test replay.
    hist, dem = _window(panel, split.ids, split.origin, h)
    price = _price(panel, split.ids, split.origin)
    phi = _dispersion(panel, split.ids, split.origin, mean, q90, args.dispersion)
    ours = _run_ours(mean, phi, dem, lead, alpha, cycle, price)
    ours_nominal = _run_ours(mean, phi, dem, lead, args.target, cycle, price)
    naive = _run_naive(hist, dem, lead, cover, cycle, price)

    # Alternate supplier: how many SKUs at the origin, starting from ours' initial stock, need it.
    suppliers = [Supplier("primary", lead, 1.0), Supplier("alternate", args.alt_lead_time, args.alt_cost)]
    pol = forecast_policy(mean, phi, lead, alpha, order_cycle=cycle)
    start_stock = initial_stock(pol) * 0.5  # a half-empty shelf, to exercise the rule
    sup = choose_supplier(mean, phi, start_stock, suppliers, alpha)

    def red(key):
        n, o = getattr(naive, key), getattr(ours, key)
        return round(float(1 - o / n), 4) if n else None

    out = {
        "dataset": "online_retail" if kind == "online_retail" else Path(args.data).name,
        "n_series": int(len(split.ids)),
        "origin": str(pd.Timestamp(split.origin_ds).date())
        if kind == "online_retail"
        else str(split.origin_ds),
        "forecast_model": args.model,
        "assumptions": {
            "lead_time_primary": lead,
            "lead_time_alternate": args.alt_lead_time,
            "alternate_unit_cost": args.alt_cost,
            "review": "daily",
            "order_cycle": cycle,
            "lost_sales": True,
            "initial_stock": "each policy's own order-up-to level, nothing on order",
            "valuation": "last unit price before the origin",
            "forecast": "made once at the origin for the whole window (no daily refit)",
            "dispersion": args.dispersion,
        },
        "target_fill_rate": args.target,
        "tuning_on_validation_window": {
            "rule": "smallest grid value whose replay reaches the target fill rate on every window",
            "window_origins": [str(panel.calendar[v])[:10] for v, *_ in val],
            "ours_alpha": alpha,
            "ours_validation": [r.as_dict() for r in alpha_val],
            "naive_cover_days": cover,
            "naive_validation": [r.as_dict() for r in cover_val],
        },
        "results": {
            "ours": ours.as_dict(),
            "naive": naive.as_dict(),
            f"ours_alpha_{args.target}": ours_nominal.as_dict(),
        },
        "inventory_reduction_vs_naive": {
            "units": red("avg_inventory_units"),
            "value": red("avg_inventory_value"),
        },
        "alternate_supplier_demo": {
            "stock": "half of ours' initial stock",
            "skus_at_risk_with_primary": int((sup["primary_risk"] > 1 - alpha).sum()),
            "skus_switched_to_alternate": int(sup["alternate"].sum()),
        },
        "machine": machine(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": versions(),
        "seconds": {"forecasts": round(t_fc, 1), "total": round(time.perf_counter() - t0, 1)},
    }
    for k, v in out["results"].items():
        print(f"{k:18s} {v}", file=sys.stderr)
    print(f"reduction vs naive: {out['inventory_reduction_vs_naive']}", file=sys.stderr)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
