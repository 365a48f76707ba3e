"""Replenishment policy replay: forecast-driven (s, S) against a naive moving-average policy, lost sales.

    python -m bench.inventory --data data/online_retail/online_retail.csv.gz --out inventory.json
    python -m bench.inventory --closed-loop --days 28 --out inventory_closed_loop.json   # the simulated shop

Same data, origin and in-scope series as ``bench.forecast``. The test window (the last ``horizon`` periods) is
replayed day by day (:mod:`ml.inventory.simulate`) for both policies; both are tuned to the same target fill
rate on the ``--n-origins`` rolling validation windows before the origin (the forecast's own validation origins;
never on the test window):

- ours: the smallest cycle service level ``alpha`` on a grid whose replay reaches the target fill rate on every
  validation window, each with the model fitted at that window's origin. With ``--refresh daily`` (default) the
  forecast takes in each day's demand before that day's order, as the daily ``demand_forecast`` asset does
  (``Forecaster.update``: the GBM keeps its trees, the local models rerun their smoothers, the ensemble keeps
  its weights); ``--refresh none`` keeps the origin's forecast for the whole window;
- the planning forecast (``--model auto``, default): the full ``ensemble`` and ``fast`` (what the daily asset
  runs by default) are each tuned as above; the one holding the least average stock on the validation windows,
  among those reaching the target on every window, plans the test window;
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
from dataclasses import dataclass, field
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.forecast import machine, versions  # noqa: E402
from bench.loop import add_world_options  # noqa: E402
from ml.forecast.base import DEFAULT_QUANTILES  # noqa: E402
from ml.forecast.baselines import TSB  # noqa: E402
from ml.forecast.classify import adi_cv2, classify  # noqa: E402
from ml.forecast.daily import SERVED_QUANTILES  # noqa: E402
from ml.forecast.ensemble import SelectedEnsemble  # noqa: E402
from ml.forecast.models import candidates, fast_model  # noqa: E402
from ml.forecast.panel import extend_calendar, next_periods  # noqa: E402
from ml.forecast.protocol import (  # noqa: E402
    HORIZON,
    SEASON_LENGTH,
    load_panel,
    make_split,
    read_demand_csv,
    validation_origins,
)
from ml.forecast.quantiles import NegBinQuantiles  # noqa: E402
from ml.inventory.policy import (  # noqa: E402
    Supplier,
    choose_supplier,
    empirical_ratio_quantile,
    implied_dispersion,
    nearest_level,
)
from ml.inventory.simulate import (  # noqa: E402
    forecast_policy,
    initial_stock,
    naive_policy,
    replay,
    replay_series,
)
from ml.inventory.tuning import (  # noqa: E402
    ALPHA_GRID,
    COVER_GRID,
    FILL_RULES,
    ClassReplays,
    levels_by_class,
    mean_stock,
    reaches,
    smallest_feasible,
)

# Planning forecasts that --model auto chooses between (on the validation windows' cost, never the test's).
PLANNING_MODELS = ("ensemble", "fast")


def _dispersion(mean, q90, history_phi: np.ndarray | None) -> np.ndarray:
    """NB1 dispersion per SKU for the lead-time demand: implied by the forecast's q90, or (given the SKUs' own
    recent index of dispersion, modes ``max`` and ``level``) the larger of that and the history's: a q90 says
    little about the far tail that a high service level needs, and lumpy SKUs' history shows it."""
    phi = implied_dispersion(mean, q90)
    return phi if history_phi is None else np.maximum(phi, history_phi)


def _history_dispersion(panel, ids, origin) -> np.ndarray:
    return NegBinQuantiles().fit(panel.subset(ids).head(origin + 1)).phi_


def _fitted_models(model: str, train, panel, split, kind, season_length, horizon, n_origins, quantiles):
    """``[(origin, model fitted at that origin)]``: the validation origins (oldest first), then the test origin.

    ``ensemble`` (or ``fast``, the local models only): selected once at the test origin (on its own rolling validation origins, never the test
    window); at each validation origin the same weights and quantile levels with members fitted on the data up to
    that origin, which reproduces the forecasts the selection scored there. A single model is fitted at each
    origin."""
    if model in ("ensemble", "fast"):
        if model == "fast":  # what the daily demand_forecast asset runs by default
            ens = fast_model(season_length, horizon, n_origins, quantiles)
        else:
            ens = SelectedEnsemble(
                candidates(kind, season_length, horizon, list(train.covariates)),
                horizon=horizon,
                n_origins=n_origins,
                member_quantiles=False,
                quantiles=quantiles,
            )
        ens.fit_panel(train)
        val = [(r.origin, ens.with_members_fitted(panel.head(r.origin + 1))) for r in ens.records_]
        return [*val, (split.origin, ens)]
    factories = candidates(kind, season_length, horizon, list(train.covariates))
    factories["tsb"] = TSB

    def make():
        model_ = factories[model]()
        model_.quantiles = tuple(quantiles)
        return model_

    val = [
        (v, make().fit_panel(panel.head(v + 1)))
        for v in validation_origins(split.origin, n_origins, horizon, horizon)
    ]
    return [*val, (split.origin, make().fit_panel(train))]


def _calendar_after(panel, a: int, h: int) -> np.ndarray:
    """The ``h`` trading periods after period ``a``: the data's own calendar, extended past its end by the
    platform's trading-calendar rule (``next_periods``) when the window runs beyond the data."""
    cal = panel.calendar[a + 1 : a + 1 + h]
    if len(cal) < h:
        known = panel.calendar[: a + 1 + len(cal)]
        dated = np.issubdtype(known.dtype, np.datetime64)
        more = next_periods(known, h - len(cal)) if dated else extend_calendar(known, h - len(cal))
        cal = np.concatenate([cal, more])
    return cal


def _window_forecasts(m, panel, ids, origin: int, horizon: int, days: int, need: int, refresh: str):
    """Forecasts for one replay window: the origin's ``(mean, quantiles)`` over ``horizon`` periods, and what the
    policy reads: with ``refresh == "daily"`` the means made at the end of each of the ``days`` window days
    (``m.update`` with that day's demand, no re-selection), each ``need`` periods long, else the origin's mean."""
    fc = m.predict_panel(horizon, future_calendar=_calendar_after(panel, origin, horizon)).subset(ids)
    if refresh == "none":
        return fc.mean, fc.quantiles, fc.mean
    rolling = [fc.mean[:, :need]]
    for k in range(1, days + 1):
        m.update(panel.head(origin + k + 1))
        cal = _calendar_after(panel, origin + k, need)
        rolling.append(m.predict_panel(need, future_calendar=cal).subset(ids).mean)
    return fc.mean, fc.quantiles, rolling


@dataclass
class Window:
    """One replay window: the series in scope at ``origin``, their history and the demand that follows, the
    forecast the policy reads (see ``forecast_policy``), the origin's mean, NB1 dispersion and unit prices."""

    origin: int
    ids: np.ndarray
    history: np.ndarray
    demand: np.ndarray
    forecast: object
    mean: np.ndarray
    phi: np.ndarray
    price: np.ndarray
    classes: np.ndarray  # demand class of each series (ADI / CV² on its history)
    quantiles: dict = field(default_factory=dict)  # the origin's forecast quantiles by level
    history_phi: np.ndarray | None = None  # the SKUs' own recent index of dispersion


def _cheapest_on_validation(tried: dict, target: float, rule: str = "every_window") -> str:
    """The planning forecast whose tuned replay holds the least average stock over the validation windows, among
    those that reach ``target`` there by ``rule`` (all of them if none does)."""
    ok = [n for n, t in tried.items() if reaches(t["validation"], target, rule)] or list(tried)
    return min(ok, key=lambda n: np.mean([r.avg_inventory_units for r in tried[n]["validation"]]))


def _window(panel, ids, origin, horizon):
    sub = panel.subset(ids)
    return sub.y[:, : origin + 1], sub.filled()[:, origin + 1 : origin + 1 + horizon]


def _price(panel, ids, origin):
    if "price" not in panel.covariates:
        return np.ones(len(ids))
    return np.nan_to_num(panel.subset(ids).covariates["price"][:, origin], nan=0.0)


def closed_loop(args) -> dict:
    """The plan against the naive cover policy (one world per cover) and the shop's own rule in the closed-loop
    shop (``bench.loop``, champion lists)."""
    from bench import loop

    argv = [
        "--days",
        str(args.days),
        "--policies",
        "champion",
        "--plan",
        "on,naive,off" if args.shop_rule else "on,naive",
        "--out",
        str(args.out),
        *loop.world_options_argv(args),
    ]
    loop.main(argv)
    report = json.loads(Path(args.out).read_text())
    comparison = report["findings"].get("plan_against_naive_cover", {})
    report["command"] = "python -m bench.inventory " + " ".join(sys.argv[1:])
    report["plan_against_naive_cover"] = comparison
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    for name, row in comparison.items():
        plan = row["plan"]
        print(f"{name}: fill rate {plan['fill_rate']:.3f}, stock on hand {plan['avg_on_hand']:,.0f} units")
        baselines = {
            f"the naive cover policy, {cover.removeprefix('naive@cover')} days' cover": r
            for cover, r in row.get("naive_cover", {}).items()
        }
        if "shop_rule" in row:
            baselines["the shop's own rule (true demand rates)"] = row["shop_rule"]
        for label, r in baselines.items():
            print(
                f"  against {label}: fill rate {r['fill_rate']:.3f}, stock on hand {-r['stock_reduction']:+.1%} "
                f"(value {-r['stock_value_reduction']:+.1%}), orders placed {plan['orders_placed']} vs "
                f"{r['orders_placed']}"
            )
        matched = row.get("naive_cover_at_plan_fill")
        if matched:
            change = (
                f"{-matched['stock_reduction']:+.1%} stock on hand, " if "stock_reduction" in matched else ""
            )
            print(
                f"  the naive cover policy at the plan's fill rate ({matched['how']}): {change}target met: {matched['target_met']}"
            )
    return report


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.inventory", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data", help="Online Retail CSV(.gz) or a long CSV unique_id, ds, y [+covariates] (the replay)"
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
    ap.add_argument(
        "--model",
        default="auto",
        choices=["auto", *PLANNING_MODELS, "gbm", "tsb"],
        help="the planning forecast: auto (default) replays each of "
        + " and ".join(PLANNING_MODELS)
        + " on the validation windows and keeps the one that holds the least stock there at the target; "
        "ensemble is the full model (with gradient boosting), fast what the daily asset runs by default",
    )
    ap.add_argument(
        "--dispersion",
        default="max",
        choices=["max", "q90", "level"],
        help="lead-time demand dispersion: implied by q90, the max of that and the SKU's history (default), or "
        "level: the max of the history's and the one implied by the served quantile nearest each service level "
        "(ml.inventory.policy.nearest_level; the forecast then serves "
        + ", ".join(f"{q:g}" for q in SERVED_QUANTILES)
        + ")",
    )
    ap.add_argument(
        "--lead-time-demand",
        default="nb1",
        choices=["nb1", "empirical"],
        help="reorder-point distribution: NB1 around the forecast (default), or the SKU's own empirical demand "
        "over lead time + review relative to its mean, times the forecast (NB1 where history is too short)",
    )
    ap.add_argument("--n-origins", type=int, default=4)
    ap.add_argument(
        "--service-levels",
        default="by_class",
        choices=["uniform", "by_class"],
        help="one cycle service level per demand class, refined on the validation windows from the uniform "
        "level (default; ml.inventory.tuning.levels_by_class), or one level for all SKUs",
    )
    ap.add_argument(
        "--fill-rule",
        default="every_window",
        choices=list(FILL_RULES),
        help="how the validation windows must reach the target: each of them (default) or their units pooled "
        "(ml.inventory.tuning.reaches); the same rule tunes ours and the naive cover",
    )
    ap.add_argument(
        "--refresh",
        default="daily",
        choices=["daily", "none"],
        help="daily: the forecast takes in each day's demand (as the daily asset does); none: origin forecast only",
    )
    loop = ap.add_argument_group(
        "closed loop",
        "--closed-loop runs the simulated shop instead of a replay: worlds of --days days from its first day, "
        "on the same seed (bench.loop with the champion lists): one placing the platform's plan, one per "
        "--naive-cover-days placing the naive cover policy's orders (the platform's recent sales times lead "
        "time plus a cover), one left to the shop's own rule on true demand rates; reported: fill rate, lost "
        "units and value, average stock on hand (units, value) and on order, purchase orders placed, and "
        "whether the plan holds at least 20% less stock than the naive cover policy at the plan's fill rate "
        "(interpolated between the naive worlds that bracket it).",
    )
    loop.add_argument("--closed-loop", action="store_true")
    loop.add_argument("--days", type=int, default=28)
    add_world_options(loop, naive_cover_days="0,7,14")
    loop.add_argument(
        "--shop-rule",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the world left to the shop's own rule (--no-shop-rule: only the plan and the naive worlds)",
    )
    args = ap.parse_args(argv)
    if args.closed_loop:
        return closed_loop(args)
    if not args.data:
        ap.error("--data is required for the replay (or run --closed-loop)")

    t0 = time.perf_counter()
    df, kind = read_demand_csv(args.data)
    panel = load_panel(df, kind)
    h = args.horizon
    split = make_split(panel, horizon=h)
    train = split.train()
    print(f"{kind}: {len(split.ids)} series in scope, origin {split.origin_ds}", file=sys.stderr)
    lead, cycle = args.lead_time, args.order_cycle
    need = lead + 1 + cycle  # the policy reads the protection interval (lead + review) and one order cycle

    def windows_of(model: str) -> list[Window]:
        """The validation windows, then the test window, with ``model``'s forecasts."""
        quantiles = SERVED_QUANTILES if args.dispersion == "level" else DEFAULT_QUANTILES
        models = _fitted_models(
            model, train, panel, split, kind, args.season_length, h, args.n_origins, quantiles
        )
        print(f"{model} fitted at {len(models)} origins, {time.perf_counter() - t0:.0f}s", file=sys.stderr)
        out = []
        for i, (v, m) in enumerate(models):
            ids = make_split(panel, horizon=h, origin=v).ids
            vmean, vquantiles, forecast = _window_forecasts(m, panel, ids, v, h, h, need, args.refresh)
            vhist, vdem = _window(panel, ids, v, h)
            hist_phi = _history_dispersion(panel, ids, v) if args.dispersion in ("max", "level") else None
            vphi = _dispersion(vmean, vquantiles[0.9], hist_phi)
            classes = classify(*adi_cv2(vhist))
            out.append(
                Window(
                    v,
                    ids,
                    vhist,
                    vdem,
                    forecast,
                    vmean,
                    vphi,
                    _price(panel, ids, v),
                    classes,
                    quantiles=vquantiles,
                    history_phi=hist_phi,
                )
            )
            print(
                f"{model} window {i + 1}/{len(models)} (origin {str(panel.calendar[v])[:10]}): forecasts ready, "
                f"{time.perf_counter() - t0:.0f}s",
                file=sys.stderr,
            )
        return out

    phi_cache: dict[tuple[int, float], np.ndarray] = {}

    def phi_at(w: Window, a: float) -> np.ndarray:
        """The dispersion service level ``a`` plans with: the window's own, or with ``--dispersion level`` the
        one implied by the served quantile nearest ``a`` (at least the history's)."""
        if args.dispersion != "level":
            return w.phi
        level = nearest_level(w.quantiles, a)
        if (id(w), level) not in phi_cache:
            implied = implied_dispersion(w.mean, w.quantiles[level], tau=level)
            phi_cache[(id(w), level)] = np.maximum(implied, w.history_phi)
        return phi_cache[(id(w), level)]

    # Tune both policies to the target on the validation windows before the origin (never on the test window).
    def ours_at(w: Window, a: float):
        """Ours replayed with one service level ``a`` for all SKUs, totals per SKU."""
        ratio = None
        if args.lead_time_demand == "empirical":
            ratio = empirical_ratio_quantile(w.history, lead + 1, a)
        pol = forecast_policy(w.forecast, phi_at(w, a), lead, a, order_cycle=cycle, ratio=ratio)
        return replay_series(w.demand, pol, lead, initial_stock(pol), w.price)

    class_replays: dict[int, ClassReplays] = {}

    def ours_on(w: Window, a):
        """Replay ours with service level ``a``: one for all SKUs, or a dict demand class -> level (scored from
        the uniform replays of its levels: SKUs do not interact in the replay)."""
        if id(w) not in class_replays:
            class_replays[id(w)] = ClassReplays(lambda level, w=w: ours_at(w, level), w.classes)
        return class_replays[id(w)](a)

    def naive_on(w: Window, c: float):
        pol = naive_policy(w.history, w.demand, lead, c, order_cycle=cycle)
        return replay(w.demand, pol, lead, initial_stock(pol), w.price)

    # Each planning forecast tuned on the validation windows; auto keeps the cheapest one that reaches the target
    # there (the plan's own cost, not the forecast metric, decides which forecast plans best).
    tried = {}
    for name in PLANNING_MODELS if args.model == "auto" else (args.model,):
        t_model = time.perf_counter()
        windows = windows_of(name)
        a, a_val = smallest_feasible(
            ALPHA_GRID, lambda a, w: ours_on(w, a), windows[:-1], args.target, args.fill_rule
        )
        tried[name] = {
            "windows": windows,
            "alpha": a,
            "validation": a_val,
            "seconds": round(time.perf_counter() - t_model, 1),
        }
    chosen = _cheapest_on_validation(tried, args.target, args.fill_rule)
    windows, alpha, alpha_val = (tried[chosen][k] for k in ("windows", "alpha", "validation"))
    *val, test = windows
    by_class = None
    if args.service_levels == "by_class":
        uniform_val = alpha_val
        alpha, alpha_val = levels_by_class(
            ALPHA_GRID,
            lambda a, w: ours_on(w, a),
            val,
            args.target,
            start=alpha,
            classes=sorted(set().union(*(set(w.classes) for w in val))),
            progress=lambda msg: print(f"service levels by class, {msg}", file=sys.stderr),
            rule=args.fill_rule,
        )
        by_class = {
            "rule": "from the uniform level, greedy grid steps (one class down, or one down and one up) kept "
            f"while the validation windows reach the target ({args.fill_rule}) and mean validation stock falls",
            "uniform_alpha": tried[chosen]["alpha"],
            "uniform_validation_mean_inventory_units": round(mean_stock(uniform_val), 1),
            "by_class_validation_mean_inventory_units": round(mean_stock(alpha_val), 1),
            "levels": alpha,
        }
    cover, cover_val = smallest_feasible(
        COVER_GRID, lambda c, w: naive_on(w, c), val, args.target, args.fill_rule
    )

    print(f"tuned: ours alpha {alpha}, naive cover {cover} days; replaying the test window", file=sys.stderr)
    # Test replay.
    mean = test.mean
    ours = ours_on(test, alpha)
    ours_nominal = ours_on(test, args.target)
    naive = naive_on(test, cover)

    # Alternate supplier: how many SKUs at the origin, starting from ours' initial stock, need it.
    suppliers = [Supplier("primary", lead, 1.0), Supplier("alternate", args.alt_lead_time, args.alt_cost)]
    uniform_alpha = tried[chosen]["alpha"]
    phi = phi_at(test, uniform_alpha)
    pol = forecast_policy(mean, phi, lead, uniform_alpha, order_cycle=cycle)
    start_stock = initial_stock(pol) * 0.5  # a half-empty shelf, to exercise the rule
    sup = choose_supplier(mean, phi, start_stock, suppliers, uniform_alpha)

    def red(key):
        n, o = getattr(naive, key), getattr(ours, key)
        return round(float(1 - o / n), 4) if n else None

    out = {
        "dataset": "online_retail" if kind == "online_retail" else Path(args.data).name,
        "n_series": int(len(split.ids)),
        "origin": str(pd.Timestamp(split.origin_ds).date())
        if kind == "online_retail"
        else str(split.origin_ds),
        "forecast_model": chosen,
        "forecast_choice": {
            "rule": "least average validation inventory (units) among the planning forecasts whose tuned replay "
            "reaches the target on every validation window",
            "candidates": {
                n: {
                    "alpha": t["alpha"],
                    "validation_min_fill_rate": round(min(r.fill_rate for r in t["validation"]), 4),
                    "validation_mean_inventory_units": round(
                        float(np.mean([r.avg_inventory_units for r in t["validation"]])), 1
                    ),
                }
                for n, t in tried.items()
            },
        },
        "assumptions": {
            "lead_time_primary": lead,
            "lead_time_alternate": args.alt_lead_time,
            "alternate_unit_cost": args.alt_cost,
            "review": "daily",
            "order_cycle": cycle,
            "lost_sales": True,
            "initial_stock": "each policy's own order-up-to level, nothing on order",
            "valuation": "last unit price before the origin",
            "forecast": (
                "refreshed every day: each day's demand updates the members' state (the GBM keeps its trees), "
                "weights and quantile levels as selected at the origin"
                if args.refresh == "daily"
                else "made once at the origin for the whole window"
            ),
            "dispersion": args.dispersion,
            "lead_time_demand": args.lead_time_demand,
        },
        "target_fill_rate": args.target,
        "tuning_on_validation_window": {
            "rule": "smallest grid value whose replay reaches the target fill rate "
            + ("on every window" if args.fill_rule == "every_window" else "on the windows' units pooled"),
            "fill_rule": args.fill_rule,
            "window_origins": [str(panel.calendar[w.origin])[:10] for w in val],
            "ours_alpha": alpha,
            "ours_validation": [r.as_dict() for r in alpha_val],
            "naive_cover_days": cover,
            "naive_validation": [r.as_dict() for r in cover_val],
        },
        "results": {
            "ours": ours.as_dict(),
            "naive": naive.as_dict(),
            f"ours_alpha_{args.target}": ours_nominal.as_dict(),
            **({"ours_uniform_alpha": ours_on(test, uniform_alpha).as_dict()} if by_class else {}),
        },
        "service_levels_by_class": by_class,
        "inventory_reduction_vs_naive": {
            "units": red("avg_inventory_units"),
            "value": red("avg_inventory_value"),
        },
        "alternate_supplier_demo": {
            "stock": "half of ours' initial stock",
            "skus_at_risk_with_primary": int((sup["primary_risk"] > 1 - uniform_alpha).sum()),
            "skus_switched_to_alternate": int(sup["alternate"].sum()),
        },
        "machine": machine(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": versions(),
        "seconds": {
            "fit_forecast_tune": {n: t["seconds"] for n, t in tried.items()},
            "total": round(time.perf_counter() - t0, 1),
        },
    }
    for k, v in out["results"].items():
        print(f"{k:18s} {v}", file=sys.stderr)
    print(f"reduction vs naive: {out['inventory_reduction_vs_naive']}", file=sys.stderr)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
