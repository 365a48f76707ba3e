"""Closed-loop benchmark: serving policies and the replenishment plan judged by what the simulated shop answers.

    python -m bench.loop --scale small --days 10 --policies none,popularity,champion,oracle --plan on,off \\
        --out bench/results/loop_small.json

Every (policy, plan) pair runs the same days from a cold start (the store's first day; ``--seed``, by default the
platform's 42) in its own data directory: each day is one real Dagster run of the platform (landing → raw → dbt →
recommenders → forecast → plan → online metrics, on DuckDB), then the shop front reads that day's exports on the
next day. What the shop
sees is the only thing a policy changes:

- ``champion``: the platform's lists as published (the champion gate chooses; 10% control arm on popularity);
- ``popularity``: the treatment arm pinned to the popularity model (ops override), so both arms see popularity;
- ``oracle``: the treatment arm's lists replaced by the simulator's truth (:func:`ml.shop.lists.oracle_lists`);
- ``none``: no lists published; the same eligible customers are measured;
- plan ``on``: the shop places the replenishment plan's orders; ``off``: the plan is withheld and the shop
  falls back to its own cover rule (order up to a fixed cover of true expected demand when the stock position
  drops below lead-time demand × 1.35); either way an order is raised to its supplier's minimum order quantity;
  ``naive``: the platform publishes the naive cover policy's orders instead of the plan (``replenishment`` run
  config ``policy: naive_cover``: recent sales times lead time plus a day, plus ``--naive-cover-days`` of them;
  one world per value), the baseline the plan is measured against: like the plan it sees only the warehouse,
  unlike the shop's own rule, which knows the true demand rates. ``--plan-service-level`` sets the plan's service
  level in the plan-on worlds, ``--plan-order-cycle-days`` the order cycle of the plan-on and naive worlds.
  ``--jobs`` runs that many worlds at once, each in its own process.

Message policies (``--message-policies``; each a world of its own with the champion lists and the plan on, the
marketing group materialised every day): ``none`` (messages written, nothing sent), ``uniform`` (every
family x offer level equally likely), ``fixed`` (always ``--fixed-arm``, by default ``plain/standard``: the
playbook's offer in plain words, what the shop sent before the bandit), ``learnt`` (the bandit of
``marketing/message_policy``). For every message the platform exported, the simulator's truth gives the
expected credited margin of every arm (:func:`ml.shop.messages.expected_credited_margin`), so each day has the
policy's expected margin, the oracle's (the best arm per message) and every fixed arm's; the regret is against
the best fixed arm in hindsight, cumulated over days. Realised: margin per sent customer and credited margin per
send, and sent minus held out (uplift, 95% bootstrap interval over customers) pooled over the send days.

Category pages: in every world a session browsing a category is shown the page of its customer's arm of the
category-page experiment (``goods/category_rankings``' ranked page for half the customers, the bestsellers for
the other half; :mod:`ml.shop.pages`); ``category_pages`` reports click-through, add-to-cart, conversion, credited
revenue, and revenue and margin per exposed customer-day of both arms with the difference's 95% interval.

Per policy it reports, over the exposure days (day 2 on): revenue, margin, credited revenue, CTR and conversion
per eligible customer-day (the customers the platform put a list together for, whether or not a list was shown,
so policies compare on one population), each against ``popularity`` with a 95% bootstrap interval over customers;
the in-world uplift of the treatment arm over the control arm; and the stock: stock-out SKU-warehouse-days, lost
units, average units on hand and on order.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from bench import docstring_parser
from ml.supply.planning import PlanSettings

log = logging.getLogger("bench.loop")

POLICIES = ("none", "popularity", "champion", "oracle")
MESSAGE_POLICIES = ("none", "uniform", "fixed", "learnt")
PLANS = ("on", "off", "naive")
REFERENCE_POLICY = "popularity"
PER_CUSTOMER = ("revenue", "margin", "credited_revenue", "conversion", "ctr")
CATEGORY_PAGE_METRICS = ("ctr", "cart_rate", "conversion", "credited_revenue", "revenue", "margin")


WORLD_OPTIONS = (
    "scale",
    "seed",
    "plan_service_level",
    "plan_order_cycle_days",
    "naive_cover_days",
    "jobs",
    "workdir",
)
"""What a world is made of besides its policy and plan setting: the options ``bench.inventory --closed-loop``
shares and passes on (:func:`world_options_argv`)."""


def add_world_options(p: argparse.ArgumentParser, naive_cover_days: str = "7") -> None:
    """The :data:`WORLD_OPTIONS` on a parser (``naive_cover_days``: the default covers of the naive worlds)."""
    p.add_argument("--scale", default="small", choices=["small", "medium", "large"])
    p.add_argument(
        "--seed",
        type=int,
        default=42,
        help="the simulated store's seed: another seed is another world (catalogue, customers, suppliers, "
        "latent truth); every configuration of one run shares it",
    )
    p.add_argument(
        "--plan-service-level",
        type=float,
        default=None,
        help="the plan's target cycle service level in (0, 1) for plan=on worlds (default: the platform's, "
        f"{PlanSettings().service_level:g}); the configuration's name gets '@LEVEL'",
    )
    p.add_argument(
        "--plan-order-cycle-days",
        type=int,
        default=None,
        help="days of demand the plan's orders cover beyond the reorder point, for plan=on and plan=naive worlds "
        f"(default: the platform's, {PlanSettings().order_cycle_days}); the configuration's name gets '+cycleN'",
    )
    p.add_argument(
        "--naive-cover-days",
        default=naive_cover_days,
        help="comma-separated safety covers (days of average sales) of the plan=naive worlds, one world each",
    )
    p.add_argument("--jobs", type=int, default=1, help="worlds run at once, each in its own process")
    p.add_argument("--workdir", type=Path, default=None, help="where the temporary data directories go")


def world_options_argv(args: argparse.Namespace) -> list[str]:
    """The :data:`WORLD_OPTIONS` of parsed arguments as ``bench.loop`` command-line flags (the unset ones left out)."""
    argv = []
    for dest in WORLD_OPTIONS:
        value = getattr(args, dest)
        if value is not None:
            argv += ["--" + dest.replace("_", "-"), str(value)]
    return argv


def parse_args(argv=None) -> argparse.Namespace:
    p = docstring_parser("python -m bench.loop", __doc__)
    p.add_argument("--days", type=int, default=10, help="closed-loop days from the store's first day")
    p.add_argument(
        "--policies", default=",".join(POLICIES), help=f"comma-separated, of {', '.join(POLICIES)}"
    )
    p.add_argument("--plan", default="on,off", help="comma-separated, of on, off, naive")
    add_world_options(p)
    p.add_argument(
        "--plan-off-policies",
        default=None,
        help="run plan=off and plan=naive only for these policies (default: every policy); the plan's effect on "
        "stock does not depend much on the lists, so one policy halves the cost",
    )
    p.add_argument(
        "--message-policies",
        default="",
        help=f"comma-separated, of {', '.join(MESSAGE_POLICIES)}: run these message-policy worlds (champion lists, "
        "plan on) instead of the list-policy worlds",
    )
    p.add_argument("--fixed-arm", default="plain/standard", help="the arm of the 'fixed' message policy")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples per interval")
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    p.add_argument("--keep", action="store_true", help="keep the data directories (to open them in the UI)")
    args = p.parse_args(argv)
    args.message_policies = [x for x in args.message_policies.split(",") if x]
    for name in args.message_policies:
        if name not in MESSAGE_POLICIES:
            p.error(f"unknown message policy {name!r}; choose from {', '.join(MESSAGE_POLICIES)}")
    from ml.marketing.bandit import ARMS

    if args.fixed_arm not in ARMS:
        p.error(f"unknown arm {args.fixed_arm!r}; choose from {', '.join(ARMS)}")
    args.policies = [x for x in args.policies.split(",") if x]
    args.plan = [x for x in args.plan.split(",") if x]
    for name in args.policies:
        if name not in POLICIES:
            p.error(f"unknown policy {name!r}; choose from {', '.join(POLICIES)}")
    if args.plan_order_cycle_days is not None and args.plan_order_cycle_days < 1:
        p.error("--plan-order-cycle-days must be at least 1")
    if args.plan_service_level is not None and not 0 < args.plan_service_level < 1:
        p.error("--plan-service-level must lie strictly between 0 and 1")
    for name in args.plan:
        if name not in PLANS:
            p.error(f"unknown plan setting {name!r}; choose from {', '.join(PLANS)}")
    try:
        args.naive_cover_days = [float(x) for x in args.naive_cover_days.split(",") if x]
    except ValueError:
        p.error(f"--naive-cover-days must be comma-separated numbers, got {args.naive_cover_days!r}")
    if any(c < 0 for c in args.naive_cover_days) or ("naive" in args.plan and not args.naive_cover_days):
        p.error("--naive-cover-days must name at least one cover of 0 days or more")
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    args.plan_off_policies = (
        args.policies
        if args.plan_off_policies is None
        else [x for x in args.plan_off_policies.split(",") if x]
    )
    if args.days < 3:
        p.error("--days must be at least 3 (day 1 has nothing published, day 2 is the first exposure)")
    return args


def configurations(args) -> list[tuple[str, str]]:
    if args.message_policies:
        return [(f"messages-{m}", "on") for m in args.message_policies]
    out = []
    for plan in args.plan:
        for policy in args.policies:
            if plan == "on":
                out.append((policy, plan))
            elif policy in args.plan_off_policies:
                covers = args.naive_cover_days if plan == "naive" else [None]
                out += [(policy, plan if c is None else f"naive@cover{c:g}") for c in covers]
    return out


def world_name(policy: str, plan: str, args) -> str:
    """``policy/plan-SETTING``, with the plan's service level and order cycle where the run sets them."""
    level = args.plan_service_level if plan == "on" else None
    cycle = args.plan_order_cycle_days if plan != "off" else None
    return (
        f"{policy}/plan-{plan}"
        + (f"@{level:g}" if level is not None else "")
        + (f"+cycle{cycle}" if cycle is not None else "")
    )


def world_run_config(policy: str, plan: str, args) -> dict:
    """The run config of one world's daily runs: the pinned model, the plan's settings, the message policy."""
    ops: dict = {}
    if policy == "popularity":
        ops["recommend__champion"] = {"config": {"pinned_model": "popularity"}}
    plan_config: dict = {}
    if plan == "on":
        plan_config = {"service_level": args.plan_service_level}
    elif plan.startswith("naive@cover"):
        plan_config = {"policy": "naive_cover", "naive_cover_days": float(plan.removeprefix("naive@cover"))}
    if plan != "off":
        plan_config["order_cycle_days"] = args.plan_order_cycle_days
    plan_config = {k: v for k, v in plan_config.items() if v is not None}
    if plan_config:
        ops["replenishment"] = {"config": plan_config}
    if policy.startswith("messages-"):
        message_policy = policy.removeprefix("messages-")
        arm_policy = {"none": "uniform", "fixed": args.fixed_arm}.get(message_policy, message_policy)
        ops["marketing__messages"] = {"config": {"arm_policy": arm_policy}}
    return {"loggers": {"console": {"config": {"log_level": "WARNING"}}}, "ops": ops}


def shape_exports(policy: str, plan: str, exports: Path, day: date, world, top_k: int) -> None:
    """Change what the shop will see of ``day``'s exports, as the policy and the plan setting say."""
    from ml.exports import export_file, read_export, write_export
    from ml.recommend.experiment import TREATMENT, list_ids
    from ml.shop.lists import oracle_lists

    lists_file = export_file(exports, "recommendations", day)
    if policy == "messages-none":
        export_file(exports, "messages", day).unlink(missing_ok=True)
    if plan == "off":
        export_file(exports, "replenishment_plan", day).unlink(missing_ok=True)
    if policy == "none":
        lists_file.unlink(missing_ok=True)
    elif policy == "oracle":
        lists = read_export(exports, "recommendations", day)
        if lists is None:
            return
        target = day + timedelta(days=1)
        treated = lists.loc[lists["arm"] == TREATMENT, "customer_id"].astype(str).unique()
        positions = pd.Index(world.customer_ids).get_indexer(treated)
        oracle = oracle_lists(world, positions[positions >= 0], target, k=top_k).assign(arm=TREATMENT)
        oracle["list_id"] = list_ids(target.isoformat(), oracle["customer_id"], oracle["model_version"])
        kept = lists[lists["arm"] != TREATMENT]
        write_export(pd.concat([kept, oracle], ignore_index=True), exports, "recommendations", day)


def eligible_outcomes(con, first_exposure: date, last: date) -> pd.DataFrame:
    """One row per eligible customer-day: the customers each day's lists were computed for (published or not),
    what they bought that day, and what the shown list earned (zero when nothing was shown)."""
    return con.execute(
        """
        WITH eligible AS (
            SELECT DISTINCT target_date AS day, customer_id, arm FROM outputs.recommendations
            WHERE target_date BETWEEN ? AND ?
        ),
        bought AS (
            SELECT order_date AS day, customer_id, sum(net_amount) AS revenue, sum(margin) AS margin
            FROM marts.fct_order_items WHERE is_sale AND order_date BETWEEN ? AND ? GROUP BY ALL
        ),
        shown AS (
            SELECT exposure_date AS day, customer_id, sum(impressions) AS impressions, sum(clicks) AS clicks,
                   sum(credited_revenue) AS credited_revenue, max(converted::int) AS converted
            FROM marts.fct_exposed_customers
            WHERE exposure_date BETWEEN ? AND ? AND placement = 'for_you' GROUP BY ALL
        )
        SELECT e.day, e.customer_id, e.arm,
               coalesce(b.revenue, 0) AS revenue, coalesce(b.margin, 0) AS margin,
               coalesce(s.credited_revenue, 0) AS credited_revenue, coalesce(s.converted, 0) AS converted,
               coalesce(s.clicks, 0) AS clicks, coalesce(s.impressions, 0) AS impressions
        FROM eligible e
        LEFT JOIN bought b USING (day, customer_id)
        LEFT JOIN shown s USING (day, customer_id)
        ORDER BY e.day, e.customer_id
        """,
        [first_exposure, last, first_exposure, last, first_exposure, last],
    ).df()


def stock_summary(con, first: date, last: date) -> dict:
    """The stock over ``[first, last]`` from ``marts.fct_inventory_daily``: stock-out SKU-warehouse-days, average
    units on hand and on order per day, units lost and sold, the lost share of demand, and the same in money at
    the products' list prices (``marts.dim_products.price``): lost sales do not weigh the same for every SKU,
    and stock is capital."""
    stock = con.execute(
        """
        SELECT count(*) FILTER (WHERE i.on_hand <= 0) AS stockout_pair_days,
               sum(i.on_hand) / count(DISTINCT i.snapshot_date) AS avg_on_hand,
               sum(i.on_order) / count(DISTINCT i.snapshot_date) AS avg_on_order,
               sum(i.units_lost) AS lost_units,
               sum(i.units_sold) AS units_sold,
               sum(i.on_hand * p.price) / count(DISTINCT i.snapshot_date) AS avg_on_hand_value,
               sum(i.units_lost * p.price) AS lost_value,
               sum(i.units_sold * p.price) AS sold_value
        FROM marts.fct_inventory_daily AS i
        LEFT JOIN marts.dim_products AS p USING (sku)
        WHERE i.snapshot_date BETWEEN ? AND ?
        """,
        [first, last],
    ).df()
    out = {k: (None if pd.isna(v) else float(v)) for k, v in stock.iloc[0].items()}
    for share, lost, sold in (
        ("lost_share_of_demand", "lost_units", "units_sold"),
        ("lost_share_of_demand_value", "lost_value", "sold_value"),
    ):
        total = (out[lost] or 0.0) + (out[sold] or 0.0)
        out[share] = out[lost] / total if total else None
    return out


def orders_placed(state_root: Path, first: date, last: date, world) -> dict:
    """Purchase orders the shop placed over ``[first, last]`` and their units, from its daily stock records: a
    day's open orders are the day before's that have not arrived, plus those placed that day (appended). The
    store's first day is open loop and keeps no record: the closed loop starts from the open-loop stock then."""
    from ml.shop.front import ClosedLoopStore, ShopState
    from ml.sources.simulated import START_DATE

    def pipeline(day: date) -> pd.DataFrame:
        path = state_root / f"date={day}" / "stock.npz"
        if path.exists():
            return ShopState.load(path).pipeline
        return ClosedLoopStore.initial_state(world, (day - START_DATE).days).pipeline

    placed = units = 0
    day = first
    while day <= last:
        before = pipeline(day - timedelta(days=1))
        after = ShopState.load(state_root / f"date={day}" / "stock.npz").pipeline
        kept = int((before["arrival_t"] > (day - START_DATE).days).sum())
        placed += len(after) - kept
        units += int(after["qty"].iloc[kept:].sum())
        day += timedelta(days=1)
    return {"orders_placed": placed, "units_ordered": units}


def measure(data_dir: Path, days: list[date], resamples: int, world) -> dict:
    """Everything the report needs from one configuration's warehouse, plus its per-customer rows."""
    import duckdb

    from ml.feedback.online import (
        CONTROL,
        METRIC_BY_NAME,
        TREATMENT,
        compare_arms,
        metric_value,
        read_exposures,
    )

    first_exposure, last = days[1], days[-1]
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        rows = eligible_outcomes(con, first_exposure, last)
        exposures = read_exposures(con, first_exposure, last)
        stock = stock_summary(con, first_exposure, last)
        stock_by_day = con.execute(
            "SELECT snapshot_date::varchar AS day, sum(on_hand) AS on_hand, sum(on_order) AS on_order, "
            "sum(units_sold) AS sold, sum(units_lost) AS lost FROM marts.fct_inventory_daily "
            "GROUP BY ALL ORDER BY 1"
        ).df()
        champions = con.execute(
            "SELECT as_of_date, champion FROM recommend.champion_history ORDER BY as_of_date"
        ).fetchall()
    stock.update(orders_placed(data_dir / "shop", first_exposure, last, world))
    result = {
        "eligible_customer_days": len(rows),
        "exposed_customer_days": int((rows["impressions"] > 0).sum()),
        "per_eligible_customer_day": {
            name: _finite(metric_value(rows, METRIC_BY_NAME[name])) for name in PER_CUSTOMER
        },
        "stock": stock,
        "stock_by_day": [
            {k: (v if k == "day" else int(v)) for k, v in r.items()} for r in stock_by_day.to_dict("records")
        ],
        "champions": {str(d): c for d, c in champions},
    }
    for placement, key, names in (
        ("for_you", "uplift_over_control", ("revenue", "credited_revenue", "conversion", "ctr")),
        ("category_page", "category_pages", CATEGORY_PAGE_METRICS),
    ):
        shown = exposures[exposures["placement"] == placement] if len(exposures) else exposures
        if len(shown):
            treatment, control = shown[shown["arm"] == TREATMENT], shown[shown["arm"] == CONTROL]
            result[key] = {
                name: compare_arms(treatment, control, METRIC_BY_NAME[name], seed=0, resamples=resamples)
                for name in names
            }
    return {"summary": result, "rows": rows}


def against_reference(rows: pd.DataFrame, reference: pd.DataFrame, resamples: int) -> dict:
    """Per eligible customer-day, this configuration minus the reference, with bootstrap intervals (CTR only
    where both showed lists)."""
    from ml.feedback.online import METRIC_BY_NAME, compare_arms

    return {
        name: compare_arms(rows, reference, METRIC_BY_NAME[name], seed=1, resamples=resamples)
        for name in PER_CUSTOMER
        if name != "ctr" or (rows["impressions"].sum() and reference["impressions"].sum())
    }


def message_values(world, shop, exports: Path, day: date, cost_share: float) -> dict | None:
    """The truth's expected credited margin of the messages exported on ``day`` (sent the next day) under the
    arm each was given, under the best arm per message (the oracle), and under every fixed arm."""
    from ml.exports import read_export
    from ml.marketing.bandit import ARMS, FixedArm, allowed_arms, arm_index
    from ml.shop.messages import expected_credited_margin

    sent = read_export(exports, "messages", day)
    if sent is None or sent.empty:
        return None
    send_day = day + timedelta(days=1)
    recent = shop._recent_messages(send_day)
    table = pd.DataFrame(
        {
            arm: expected_credited_margin(world, send_day, variant, recent, cost_share)
            for arm, variant in arm_variants(sent, send_day)
        }
    )
    messages = sent.set_index("message_id").loc[table.index]
    allowed = np.vstack([allowed_arms(c) for c in messages["campaign"]])
    values = table.to_numpy()
    chosen = arm_index(messages["family"] + "/" + messages["offer_level"])
    fixed = {
        arm: float(
            values[
                np.arange(len(table)), FixedArm(arm).action_probabilities(values, allowed).argmax(axis=1)
            ].sum()
        )
        for arm in ARMS
    }
    return {
        "send_day": send_day.isoformat(),
        "messages": len(table),
        "policy": float(values[np.arange(len(table)), chosen].sum()),
        "oracle": float(np.where(allowed, values, -np.inf).max(axis=1).sum()),
        "fixed": fixed,
    }


def arm_variants(sent: pd.DataFrame, send_day: date):
    """``(arm, messages)`` for every arm: the exported messages rewritten to that arm's family and offer (member
    perks keep their one level)."""
    from ml.marketing.bandit import ARMS, split_arm
    from ml.marketing.targeting import MarketingSettings

    settings = MarketingSettings()
    for arm in ARMS:
        family, level = split_arm(arm)
        offers = [
            settings.offer(c, send_day, "standard" if c == "member_perks" else level).discount_pct
            for c in sent["campaign"]
        ]
        yield arm, sent.assign(family=family, discount_pct=offers)


def message_report(days_values: list[dict], withheld: bool) -> dict:
    """Regret against the best fixed arm in hindsight and the share of the oracle, from the daily values (a
    policy that sent nothing earned nothing)."""
    if not days_values:
        return {}
    policy = np.array([0.0 if withheld else d["policy"] for d in days_values])
    oracle = np.array([d["oracle"] for d in days_values])
    arms = list(days_values[0]["fixed"])
    fixed_totals = {a: sum(d["fixed"][a] for d in days_values) for a in arms}
    best = max(fixed_totals, key=fixed_totals.get)
    best_daily = np.array([d["fixed"][best] for d in days_values])
    last = slice(-7, None)
    return {
        "best_fixed_arm_in_hindsight": best,
        "expected_margin": {
            "policy": float(policy.sum()),
            "oracle": float(oracle.sum()),
            "best_fixed": float(best_daily.sum()),
            "fixed": fixed_totals,
        },
        "cumulative_regret_vs_best_fixed": np.cumsum(best_daily - policy).round(3).tolist(),
        "share_of_oracle": float(policy.sum() / oracle.sum()) if oracle.sum() else None,
        "share_of_oracle_last_7_send_days": float(policy[last].sum() / oracle[last].sum())
        if oracle[last].sum()
        else None,
        "share_of_oracle_by_day": (policy / np.where(oracle > 0, oracle, np.nan)).round(4).tolist(),
        "send_days": [d["send_day"] for d in days_values],
        "messages_by_send_day": [d["messages"] for d in days_values],
    }


def message_outcomes(data_dir: Path, send_days: list[date], resamples: int) -> dict:
    """Realised: per sent customer and sent minus held out, pooled over the send days."""
    import duckdb

    from ml.feedback.online import CONTROL, TREATMENT, compare_arms, metric_value
    from ml.marketing.feedback import FUNNEL, OUTCOMES, read_targeted

    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        frames = [read_targeted(con, d) for d in send_days]
        decisions = con.execute(
            "SELECT as_of_date::varchar AS day, adopted, reason, rounds FROM marketing.message_policy ORDER BY 1"
        ).df()
    rows = (
        pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else None
    )
    if rows is None:
        return {}
    treatment, control = rows[rows["arm"] == TREATMENT], rows[rows["arm"] == CONTROL]
    return {
        "policy_decisions": decisions.to_dict("records"),
        "targeted_customer_days": len(rows),
        "per_sent_customer": {m.name: _finite(metric_value(treatment, m)) for m in (*FUNNEL, *OUTCOMES)},
        "sent_minus_held_out": {
            m.name: compare_arms(treatment, control, m, seed=0, resamples=resamples) for m in OUTCOMES
        },
    }


def _targets(args) -> list:
    """What the shop needs and what is measured; profiles, segments and the backtest are not on that path."""
    import dagster as dg

    from orchestration.defs.transform.assets import dbt_daily_models

    targets = [
        dg.AssetKey(["recommend", "recommendations"]),
        dg.AssetKey(["supply", "replenishment_plan"]),
        dg.AssetKey(["feedback", "online_metrics"]),
        dg.AssetKey(["marts", "fct_lost_sales"]),
        # the category pages (and the shopper facts they are personalised with) the shop front shows browsers
        dg.AssetKey(["goods", "category_rankings"]),
        dg.AssetKey(["goods", "search_index"]),
        *dbt_daily_models.keys,  # the whole dbt build: its tests read models outside any one asset's lineage
    ]
    if args.message_policies:
        targets.append(dg.AssetKey(["marketing", "message_metrics"]))
    return targets


def run_world(
    args, days: list[date], policy: str, plan: str, workdir: Path
) -> tuple[str, dict, pd.DataFrame]:
    """One configuration's world from a cold start: each day a real Dagster run, then the shop answers. Returns
    its name, its summary and its per-customer rows (for the comparison with the reference policy)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    import dagster as dg

    from ml.recommend.daily import RecommendSettings
    from ml.shop.front import ClosedLoopStore
    from ml.sources.simulated import SimulatedStore
    from orchestration.definitions import defs
    from orchestration.resources import build_resources

    logging.getLogger("dagster").setLevel(logging.WARNING)
    world = SimulatedStore(args.scale, args.seed).world
    job = dg.define_asset_job(
        "closed_loop_day",
        selection=dg.AssetSelection.assets(*_targets(args)).upstream().required_multi_asset_neighbors(),
    )
    top_k = RecommendSettings().top_k
    name = world_name(policy, plan, args)
    data_dir = workdir / name.replace("/", "_")
    os.environ["AIGC_DATA_DIR"] = str(data_dir)
    definitions = dg.Definitions(
        assets=list(defs.assets),
        asset_checks=list(defs.asset_checks or []),
        jobs=[job],
        resources=build_resources(),
        executor=dg.in_process_executor,
    )
    runnable = definitions.resolve_job_def("closed_loop_day")
    run_config = world_run_config(policy, plan, args)
    message_policy = policy.removeprefix("messages-") if policy.startswith("messages-") else None
    if message_policy is not None:
        shop = ClosedLoopStore(
            args.scale, args.seed, exports_root=data_dir / "exports", state_root=data_dir / "shop"
        )
        cost_share = dbt_var("cost_share_of_list_price")
    daily_values = []
    instance = dg.DagsterInstance.ephemeral()
    started = time.perf_counter()
    for i, day in enumerate(days, 1):
        t0 = time.perf_counter()
        result = runnable.execute_in_process(
            partition_key=day.isoformat(), instance=instance, run_config=run_config, raise_on_error=False
        )
        if not result.success:
            raise RuntimeError(f"{name}: the run of {day} failed (data kept in {data_dir})")
        if message_policy is not None:
            values = message_values(world, shop, data_dir / "exports", day, cost_share)
            if values is not None:
                daily_values.append(values)
        shape_exports(policy, plan, data_dir / "exports", day, world, top_k)
        log.info("%s day %d/%d %s: %.0f s", name, i, len(days), day, time.perf_counter() - t0)
    measured = measure(data_dir, days, args.resamples, world)
    measured["summary"]["wall_seconds"] = round(time.perf_counter() - started, 1)
    if message_policy is not None:
        sent = [v for v in daily_values if v["send_day"] <= days[-1].isoformat()]
        measured["summary"]["messages"] = {
            "policy": message_policy if message_policy != "fixed" else f"fixed:{args.fixed_arm}",
            **message_report(sent, message_policy == "none"),
            "realised": message_outcomes(
                data_dir, [date.fromisoformat(v["send_day"]) for v in sent], args.resamples
            ),
        }
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    return name, measured["summary"], measured["rows"]


def _worlds(args, days: list[date], workdir: Path):
    """Every configuration's world, ``args.jobs`` at a time (each in a process of its own when more than one),
    yielded as they finish."""
    worlds = configurations(args)
    if args.jobs == 1:
        for policy, plan in worlds:
            yield run_world(args, days, policy, plan, workdir)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: a world's process starts clean (its own DuckDB, Dagster and torch state) and inherits the environment
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(run_world, args, days, policy, plan, workdir) for policy, plan in worlds]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # a failed world stops the benchmark
            raise


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    os.environ.update(
        {
            "AIGC_SOURCE": "simulated",
            "AIGC_SCALE": args.scale,
            "AIGC_SHOP_LOOP": "closed",
            "AIGC_SEED": str(args.seed),
        }
    )
    from orchestration.partitions import daily_partitions

    days = [date.fromisoformat(k) for k in daily_partitions.get_partition_keys()[: args.days]]
    workdir = Path(tempfile.mkdtemp(prefix="bench_loop_", dir=args.workdir))
    out = {
        "scale": args.scale,
        "days": [d.isoformat() for d in days],
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
        "date": date.today().isoformat(),
        "command": "python -m bench.loop " + " ".join(sys.argv[1:] if argv is None else argv),
        "seed": args.seed,
        "reference_policy": REFERENCE_POLICY,
        "configurations": {},
    }
    rows_of: dict[str, pd.DataFrame] = {}
    order = [world_name(policy, plan, args) for policy, plan in configurations(args)]
    try:
        for name, summary, rows in _worlds(args, days, workdir):
            out["configurations"][name] = summary
            out["configurations"] = {k: out["configurations"][k] for k in order if k in out["configurations"]}
            rows_of[name] = rows
            # what has run so far survives an interrupted benchmark
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(out, indent=2, default=_json) + "\n")
        for name, summary in out["configurations"].items():
            plan = name.split("/plan-")[1]
            reference = rows_of.get(f"{REFERENCE_POLICY}/plan-{plan}")
            if reference is not None and not name.startswith(f"{REFERENCE_POLICY}/"):
                summary[f"versus_{REFERENCE_POLICY}"] = against_reference(
                    rows_of[name], reference, args.resamples
                )
        out["findings"] = findings(out["configurations"])
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=_json) + "\n")
    print(json.dumps(out["findings"], indent=2, default=_json))
    return 0


def dbt_var(name: str):
    """A project variable of dbt_project.yml (the marts' definition of margin lives there)."""
    import yaml

    project = Path(__file__).resolve().parents[1] / "dbt_project" / "dbt_project.yml"
    return yaml.safe_load(project.read_text())["vars"][name]


def _finite(value: float) -> float | None:
    return None if np.isnan(value) else value


def _json(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return str(value)


def findings(configurations: dict) -> dict:
    """The issue's targets, read off the configurations that ran."""
    found = {}
    champion, oracle, none = (configurations.get(f"{p}/plan-on") for p in ("champion", "oracle", "none"))
    if champion and f"versus_{REFERENCE_POLICY}" in champion:
        versus = champion[f"versus_{REFERENCE_POLICY}"]["revenue"]
        found["champion_revenue_minus_popularity"] = {
            k: versus[k] for k in ("difference", "ci_low", "ci_high", "relative_uplift")
        }
        found["champion_beats_popularity_beyond_doubt"] = bool(versus["ci_low"] > 0)
    if champion and oracle and none:
        base = none["per_eligible_customer_day"]["revenue"]
        gained = champion["per_eligible_customer_day"]["revenue"] - base
        possible = oracle["per_eligible_customer_day"]["revenue"] - base
        found["champion_share_of_oracle_gain_over_none"] = gained / possible if possible else None
        found["champion_share_of_oracle_credited_revenue"] = (
            champion["per_eligible_customer_day"]["credited_revenue"]
            / oracle["per_eligible_customer_day"]["credited_revenue"]
        )
    for name, summary in configurations.items():
        report = summary.get("messages")
        if report and "share_of_oracle" in report:
            found[f"{name.split('/')[0]}_expected_margin"] = {
                k: report[k]
                for k in (
                    "share_of_oracle",
                    "share_of_oracle_last_7_send_days",
                    "best_fixed_arm_in_hindsight",
                )
            } | {"cumulative_regret": report["cumulative_regret_vs_best_fixed"][-1]}
    for name, summary in configurations.items():
        pages = summary.get("category_pages")
        if pages:
            found[f"{name}_category_pages_vs_bestsellers"] = {
                metric: {k: row[k] for k in ("treatment", "control", "difference", "ci_low", "ci_high")}
                for metric, row in pages.items()
            }
    comparisons = plan_against_naive(configurations)
    if comparisons:
        found["plan_against_naive_cover"] = comparisons
    for policy in POLICIES:
        on, off = configurations.get(f"{policy}/plan-on"), configurations.get(f"{policy}/plan-off")
        if on and off:
            found[f"{policy}_plan_on_vs_off"] = {
                k: {"on": on["stock"][k], "off": off["stock"][k]}
                for k in (
                    "lost_units",
                    "lost_share_of_demand",
                    "stockout_pair_days",
                    "avg_on_hand",
                    "avg_on_order",
                    "lost_value",
                    "avg_on_hand_value",
                )
                if k in on["stock"] and k in off["stock"]
            }
    return found


TARGET_STOCK_REDUCTION = 0.20
"""Issue 21's bar for the plan in a shop that answers: this much less average stock on hand than the naive cover
policy, at the same or a better fill rate."""
STOCK_FIGURES = (
    "lost_units",
    "lost_value",
    "avg_on_hand",
    "avg_on_hand_value",
    "avg_on_order",
    "orders_placed",
    "units_ordered",
)


def _stock_row(summary: dict) -> dict:
    stock = summary["stock"]
    return {"fill_rate": 1 - stock["lost_share_of_demand"], **{k: stock.get(k) for k in STOCK_FIGURES}}


def _against(plan_row: dict, baseline: dict) -> dict:
    """The plan's stock reduction against one baseline world and whether it meets the target against it."""
    reduction = 1 - plan_row["avg_on_hand"] / baseline["avg_on_hand"]
    return {
        **baseline,
        "stock_reduction": reduction,
        "stock_value_reduction": 1 - plan_row["avg_on_hand_value"] / baseline["avg_on_hand_value"],
        "target_met": bool(
            reduction >= TARGET_STOCK_REDUCTION and plan_row["fill_rate"] >= baseline["fill_rate"]
        ),
    }


def at_plan_fill(plan_row: dict, naive_rows: dict[str, dict]) -> dict:
    """The naive cover policy's stock at the plan's fill rate, read off its worlds (one per cover).

    Between the two worlds whose fill rates bracket the plan's, the stock (units and value) is interpolated
    linearly in the fill rate. Above every naive world's fill, the highest-filling world's stock is the bound (a
    naive world filling as well would hold at least that much: stock rises with the cover). Below every naive
    world's fill there is no naive world at the same or a worse fill: the target is not met.
    """
    rows = sorted(naive_rows.values(), key=lambda r: r["fill_rate"])
    fills = [r["fill_rate"] for r in rows]
    fill = plan_row["fill_rate"]
    if fill < fills[0]:
        return {"how": "below every naive world's fill rate", "target_met": False}
    if fill >= fills[-1]:
        how = "above every naive world's fill rate: the highest-filling world's stock"
        on_hand, value = rows[-1]["avg_on_hand"], rows[-1]["avg_on_hand_value"]
    else:
        how = "interpolated between the two naive worlds whose fill rates bracket the plan's"
        on_hand, value = (
            float(np.interp(fill, fills, [r[k] for r in rows])) for k in ("avg_on_hand", "avg_on_hand_value")
        )
    reduction = 1 - plan_row["avg_on_hand"] / on_hand
    return {
        "how": how,
        "avg_on_hand": on_hand,
        "avg_on_hand_value": value,
        "stock_reduction": reduction,
        "stock_value_reduction": 1 - plan_row["avg_on_hand_value"] / value,
        "target_met": bool(reduction >= TARGET_STOCK_REDUCTION),
    }


def plan_against_naive(configurations: dict) -> dict:
    """Every plan-on world against the stock baselines of its policy: the naive cover policy's worlds (the
    platform publishing recent sales times lead time plus a cover; the target's baseline, judged at the plan's
    fill rate by :func:`at_plan_fill` and world by world) and the shop's own rule on true demand rates (plan
    off). Per world: fill rate, lost units and value, average stock on hand (units and value) and on order,
    purchase orders placed, the stock reduction and whether it meets :data:`TARGET_STOCK_REDUCTION` at the same
    or a better fill rate."""
    out = {}
    for name, on in configurations.items():
        policy, _, plan = name.partition("/plan-")
        if not plan.startswith("on"):
            continue
        plan_row = _stock_row(on)
        naive = {
            other.partition("/plan-")[2]: _stock_row(summary)
            for other, summary in configurations.items()
            if other.startswith(f"{policy}/plan-naive@")
        }
        off = configurations.get(f"{policy}/plan-off")
        if not naive and off is None:
            continue
        row: dict = {"plan": plan_row}
        if naive:
            row["naive_cover"] = {cover: _against(plan_row, r) for cover, r in naive.items()}
            row["naive_cover_at_plan_fill"] = at_plan_fill(plan_row, naive)
            row["target_met"] = row["naive_cover_at_plan_fill"]["target_met"]
        if off is not None:
            row["shop_rule"] = _against(plan_row, _stock_row(off))
        out[name] = row
    return out


if __name__ == "__main__":
    raise SystemExit(main())
