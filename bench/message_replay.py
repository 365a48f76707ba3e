"""How much can a message policy learn in this shop? Ceilings and learning curves from a replay of real sends.

    python -m bench.loop --scale small --days 14 --message-policies uniform --keep \\
        --workdir /tmp/loop --out /tmp/loop_uniform14.json
    python -m bench.message_replay --run /tmp/loop/bench_loop_*/messages-uniform_plan-on \\
        --days 60,240 --seeds 3 --out bench/results/message_replay_small.json

``bench.loop`` runs the whole platform day after day to answer one question; this one answers the questions
behind it from the messages a kept closed-loop world really exported
(targeting, fact sheets, featured products, send hours, fatigue: all as the platform produced them). For every
such message and every arm (template family x offer level) the simulator's truth gives the chance of a click,
of a purchase after the click and the margin of that purchase (:func:`ml.shop.messages.answer_chances`).

1. **Ceilings** (share of the oracle, the best arm per message under the truth): uniform, every fixed arm, and
   a *full-information* policy that knows every message's true expected margin under every arm but may use only
   some features to choose (a least-squares fit per arm of each arm's value relative to the message's mean over
   arms, then the best fitted arm): with the bandit's context (:func:`ml.marketing.bandit.context_matrix`), with
   that context plus a browsing price index (the mean log price of the products the customer viewed before the
   send, relative to their category's mean log price, shrunk towards 0 by 5 pseudo-views), and with that
   context plus the customer's true price sensitivity (which no shop observes). A learner using a feature set
   cannot be expected to beat its ceiling.
2. **Learning curves**: the platform's own learner (:func:`ml.marketing.bandit.fit` and its Thompson
   probabilities with the exploration floor) replayed for ``--days`` days, the logged days' messages in turn,
   each day's answers drawn from the truth (click, purchase, margin) and visible two days later (sent on D,
   loaded by D+1's run, serving D+2's exports: the closed loop's lag), refitted every day (no adoption gate).
   Reported: share of the oracle over all days and over the last 7, purchases seen, per seed.
3. **Sends needed to tell the two best fixed arms apart** (one-sided 5% test, 80% power), from the truth's
   per-send reward distribution: a bound, for any learner, on how soon the answers can single out the best arm.

Differences from the closed loop, on purpose: customers do not accumulate fatigue from the replayed policy's
sends, stock never runs out, and every day's candidate is adopted. The figures bound what the loop can show;
they do not replace it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from bench import docstring_parser
from bench.loop import arm_variants, dbt_var
from ml.exports import exported_days, read_export
from ml.marketing.bandit import ARMS, allowed_arms, context_matrix, fit, prior_policy, split_arm

log = logging.getLogger("bench.message_replay")
ANSWER_LAG_DAYS = 2
PRICE_INDEX_PSEUDO_VIEWS = 5
FACT_COLUMNS = ("orders_365d", "spend_365d", "recency_days", "discount_share_365d")


def parse_args(argv=None) -> argparse.Namespace:
    p = docstring_parser("python -m bench.message_replay", __doc__)
    p.add_argument("--run", type=Path, required=True, help="a kept bench.loop message world's data directory")
    p.add_argument("--scale", default="small", choices=["small", "medium", "large"], help="the run's scale")
    p.add_argument("--seed", type=int, default=42, help="the run's store seed (bench.loop --seed)")
    p.add_argument("--days", default="60", help="comma-separated replay lengths in days")
    p.add_argument("--seeds", type=int, default=3, help="replays per length (answers drawn afresh)")
    p.add_argument(
        "--click-scales",
        default="1",
        help="comma-separated multipliers of every click chance (capped at 1) to replay under: a shop whose "
        "customers answer that many times as often, to see how learning depends on the number of answers",
    )
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = p.parse_args(argv)
    args.days = [int(d) for d in args.days.split(",") if d]
    args.click_scales = [float(k) for k in args.click_scales.split(",") if k]
    if not args.click_scales or min(args.click_scales) <= 0:
        p.error("--click-scales must be positive numbers")
    if not (args.run / "exports").is_dir() or not (args.run / "warehouse.duckdb").is_file():
        p.error(f"{args.run} holds no exports/ and warehouse.duckdb: pass a kept bench.loop data directory")
    if not args.days or min(args.days) <= ANSWER_LAG_DAYS:
        p.error(f"--days must be more than {ANSWER_LAG_DAYS}")
    return args


def truth_table(run: Path, scale: str, seed: int = 42) -> pd.DataFrame:
    """One row per exported message with a deliverable product: send day, campaign, context facts, the
    customer's true price sensitivity (relative to the mean), and per arm ``click|arm``, ``buy|arm`` (after a
    click) and ``margin|arm`` (of a purchase)."""
    from ml.shop.front import ClosedLoopStore
    from ml.shop.messages import answer_chances
    from ml.sources.simulated import SimulatedStore

    world = SimulatedStore(scale, seed).world
    shop = ClosedLoopStore(scale, seed, exports_root=run / "exports", state_root=run / "shop")
    cost_share = dbt_var("cost_share_of_list_price")
    frames = []
    for day in exported_days(run / "exports", "messages"):
        sent = read_export(run / "exports", "messages", day)
        if sent is None or sent.empty:
            continue
        send_day = day + timedelta(days=1)
        recent = shop._recent_messages(send_day)
        parts = []
        for arm, variant in arm_variants(sent, send_day):
            chances = answer_chances(world, send_day, variant, recent, cost_share)
            parts.append(
                pd.DataFrame(
                    {
                        f"click|{arm}": chances["click"],
                        f"buy|{arm}": chances["buy_given_click"],
                        f"margin|{arm}": chances["margin_given_buy"],
                    }
                )
            )
        table = pd.concat(parts, axis=1)
        meta = sent.set_index("message_id").loc[table.index, ["customer_id", "campaign", "facts"]]
        facts = [json.loads(f) for f in meta["facts"]]
        customer = pd.Index(world.customer_ids).get_indexer(meta["customer_id"].astype(str))
        meta = meta.drop(columns="facts").assign(
            send_date=send_day,
            true_price_sensitivity=world.price_sens[customer] / world.price_sens.mean(),
            **{c: [f[c] for f in facts] for c in FACT_COLUMNS},
        )
        frames.append(pd.concat([meta, table], axis=1).reset_index())
        log.info("truth of %d messages sent %s", len(table), send_day)
    return pd.concat(frames, ignore_index=True)


def browsing_price_index(run: Path, messages: pd.DataFrame) -> np.ndarray:
    """Per message: the mean, over the customer's product views before the send day, of the product's log price
    less its category's mean log price, shrunk towards 0 by :data:`PRICE_INDEX_PSEUDO_VIEWS`."""
    with duckdb.connect(str(run / "warehouse.duckdb"), read_only=True) as con:
        con.register("sends", messages[["message_id", "customer_id", "send_date"]])
        index = con.execute(
            f"""
            with category as (
                select category, avg(ln(price)) as mean_log_price from marts.dim_products
                where price > 0 group by category
            )
            select s.message_id,
                   coalesce(sum(ln(d.price) - c.mean_log_price), 0)
                   / (count(d.sku) + {PRICE_INDEX_PSEUDO_VIEWS}) as price_index
            from sends as s
            left join marts.fct_events as e
                on e.customer_id = s.customer_id and e.event_date < s.send_date and e.event_type = 'view'
            left join marts.dim_products as d on d.sku = e.sku and d.price > 0
            left join category as c on c.category = d.category
            group by s.message_id
            """
        ).df()
    return index.set_index("message_id").loc[messages["message_id"], "price_index"].to_numpy(float)


class Replay:
    """The arrays of a truth table; ``click_scale`` multiplies every click chance (capped at 1)."""

    def __init__(self, table: pd.DataFrame, click_scale: float = 1.0):
        self.click = np.minimum(table[[f"click|{a}" for a in ARMS]].to_numpy() * click_scale, 1.0)
        self.buy = table[[f"buy|{a}" for a in ARMS]].to_numpy()
        self.margin = table[[f"margin|{a}" for a in ARMS]].to_numpy()
        self.value = self.click * self.buy * self.margin
        self.allowed = np.vstack([allowed_arms(c) for c in table["campaign"]])
        self.oracle = np.where(self.allowed, self.value, -np.inf).max(axis=1)
        self.uniform_value = np.where(self.allowed, self.value, 0).sum(axis=1) / self.allowed.sum(axis=1)
        """Per message: the mean value over its allowed arms."""
        self.context = context_matrix(table)
        days = table["send_date"].to_numpy()
        self.days = [np.flatnonzero(days == d) for d in sorted(set(days))]

    def share(self, chosen: np.ndarray) -> float:
        return float(self.value[np.arange(len(chosen)), chosen].sum() / self.oracle.sum())

    def fixed(self, arm: str) -> np.ndarray:
        family, _ = split_arm(arm)
        return np.where(self.allowed[:, ARMS.index(arm)], ARMS.index(arm), ARMS.index(f"{family}/standard"))

    def fixed_shares(self) -> dict[str, float]:
        return {arm: self.share(self.fixed(arm)) for arm in ARMS}

    def sends_to_separate_best_arms(self, power: float = 0.8, alpha: float = 0.05) -> dict:
        """Sends per arm that an A/B comparison of the two best fixed arms needs to tell them apart (one-sided
        test at ``alpha`` with ``power``), from the truth's per-send reward distribution.

        A send under an arm earns its margin with the chance of a click times a purchase after it, else nothing,
        so over the stream of messages its reward has mean ``mean(v)`` and variance ``mean(v * margin) -
        mean(v)^2`` (``v`` the message's expected value under the arm). No learner can tell two arms apart with
        much fewer sends than this, whatever its model; it bounds how soon any policy can settle on the best.
        """
        from scipy.stats import norm

        rows = np.arange(len(self.value))
        chosen = {arm: self.fixed(arm) for arm in ARMS}
        moments = {}
        for arm in ARMS:
            value, margin = self.value[rows, chosen[arm]], self.margin[rows, chosen[arm]]
            moments[arm] = (float(value.mean()), float((value * margin).mean() - value.mean() ** 2))
        best, runner_up = sorted(ARMS, key=lambda a: moments[a][0], reverse=True)[:2]
        (mean_a, var_a), (mean_b, var_b) = moments[best], moments[runner_up]
        z = norm.ppf(1 - alpha) + norm.ppf(power)
        return {
            "best": best,
            "runner_up": runner_up,
            "mean_reward_per_send": {best: mean_a, runner_up: mean_b},
            "relative_difference": (mean_a - mean_b) / mean_a,
            "purchase_chance_per_send": {
                arm: float((self.click * self.buy)[rows, chosen[arm]].mean()) for arm in (best, runner_up)
            },
            "sends_per_arm_needed": int(np.ceil(z**2 * (var_a + var_b) / (mean_a - mean_b) ** 2)),
            "alpha": alpha,
            "power": power,
        }

    def uniform_share(self) -> float:
        return float(self.uniform_value.sum() / self.oracle.sum())

    def full_information(self, features: np.ndarray) -> float:
        """The share of the best arm as fitted, per arm, from ``features`` to the arm's value relative to the
        message's mean over its allowed arms."""
        relative = self.value / np.maximum(self.uniform_value[:, None], 1e-12)
        fitted = np.column_stack(
            [features @ np.linalg.lstsq(features, relative[:, k], rcond=None)[0] for k in range(len(ARMS))]
        )
        return self.share(np.where(self.allowed, fitted, -np.inf).argmax(axis=1))

    def learn(self, days: int, seed: int) -> dict:
        """The platform's learner replayed for ``days`` days (the module's docstring says how)."""
        rng = np.random.default_rng(seed)
        policy = prior_policy()
        logged: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        earned, best = np.zeros(days), np.zeros(days)
        purchases = 0
        for d in range(days):
            visible = [entry for entry in logged if entry[0] <= d - ANSWER_LAG_DAYS]
            if visible:
                rows = np.concatenate([e[1] for e in visible])
                policy = fit(
                    self.context[rows],
                    np.concatenate([e[2] for e in visible]),
                    np.concatenate([e[3] for e in visible]),
                )
            rows = self.days[d % len(self.days)]
            probabilities = policy.action_probabilities(
                self.context[rows], self.allowed[rows], seed=int(rng.integers(2**31))
            )
            u = rng.random(len(rows))
            arm = np.minimum((u[:, None] >= probabilities.cumsum(axis=1)).sum(axis=1), len(ARMS) - 1)
            clicked = rng.random(len(rows)) < self.click[rows, arm]
            bought = clicked & (rng.random(len(rows)) < self.buy[rows, arm])
            logged.append((d, rows, arm, np.where(bought, self.margin[rows, arm], 0.0)))
            purchases += int(bought.sum())
            earned[d] = self.value[rows, arm].sum()
            best[d] = self.oracle[rows].sum()
        return {
            "seed": seed,
            "share_of_oracle": float(earned.sum() / best.sum()),
            "share_of_oracle_last_7_days": float(earned[-7:].sum() / best[-7:].sum()),
            "sends": int(sum(len(e[1]) for e in logged)),
            "purchases": purchases,
        }


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    started = time.perf_counter()
    table = truth_table(args.run, args.scale, args.seed)
    table["price_index"] = browsing_price_index(args.run, table)
    replay = Replay(table)
    fixed = replay.fixed_shares()
    context = replay.context
    ceilings = {
        "uniform": replay.uniform_share(),
        "best_fixed": max(fixed.values()),
        "full_information_bandit_context": replay.full_information(context),
        "full_information_plus_browsing_price_index": replay.full_information(
            np.column_stack([context, table["price_index"]])
        ),
        "full_information_plus_true_price_sensitivity": replay.full_information(
            np.column_stack([context, table["true_price_sensitivity"]])
        ),
    }
    log.info("ceilings: %s", {k: round(v, 3) for k, v in ceilings.items()})
    curves, scaled_ceilings = {}, {}
    for scale in args.click_scales:
        scaled = replay if scale == 1 else Replay(table, scale)
        # capped click chances change which arm is best: the scaled shop has its own ceilings
        scaled_ceilings[f"{scale:g}"] = {
            "uniform": scaled.uniform_share(),
            "best_fixed": max(scaled.fixed_shares().values()),
            "share_of_click_chances_capped": float(
                (table[[f"click|{a}" for a in ARMS]] * scale >= 1).to_numpy().mean()
            ),
        }
        for days in args.days:
            key = f"{days} days" + (f", clicks x {scale:g}" if scale != 1 else "")
            curves[key] = []
            for seed in range(args.seeds):
                curves[key].append(scaled.learn(days, seed))
                log.info("learnt, %s, seed %d: %s", key, seed, curves[key][-1])
    sends_per_day = [len(r) for r in replay.days]
    out = {
        "command": "python -m bench.message_replay " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
        "date": date.today().isoformat(),
        "run": str(args.run),
        "messages": len(table),
        "logged_days": len(replay.days),
        "sends_per_logged_day": sends_per_day,
        "campaigns": table["campaign"].value_counts().to_dict(),
        "correlation_with_true_price_sensitivity": {
            column: float(np.corrcoef(values, table["true_price_sensitivity"])[0, 1])
            for column, values in {
                "price_index": table["price_index"],
                "discount_share_365d": pd.to_numeric(table["discount_share_365d"]).fillna(0),
            }.items()
        },
        "fixed_arms": fixed,
        "ceilings": ceilings,
        "ceilings_by_click_scale": scaled_ceilings,
        "sends_to_separate_best_arms": replay.sends_to_separate_best_arms(),
        "learning": curves,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(
        json.dumps(
            {
                "ceilings": ceilings,
                "ceilings_by_click_scale": scaled_ceilings,
                "sends_to_separate_best_arms": out["sends_to_separate_best_arms"],
                "learning": curves,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
