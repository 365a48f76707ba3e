"""The message policy of day D: learnt from the logged sends, judged off-policy, adopted only if it looks better.

Run D reads every message sent on or before D whose answer is loaded (``marketing.messages`` status ``ready``
joined with ``marts.fct_message_events``): its context (the fact sheet it carried), its arm, the propensity
the serving policy logged, and its reward (credited margin after the discount). Then:

1. the **candidate**: :func:`ml.marketing.bandit.fit` on all of those sends;
2. **off-policy evaluation**, with 2-fold cross-fitting (sends split by a hash of their id): a candidate fitted
   on one half is judged on the other half's logged sends, its posterior mean serving as the reward model of
   DM and DR; the two halves' estimates are averaged. The **current** serving policy is judged on the same
   rounds with the same reward models. IPS, SNIPS, DM and DR (:mod:`ml.feedback.ope`), each with a bootstrap
   interval over the sends, and the effective sample size of the weights;
3. **the decision**: the candidate replaces the current policy when at least ``min_rounds`` sends back it,
   :data:`MIN_REWARDED` of them with a purchase, and its DR estimate is at least the current policy's. Once a
   learnt policy serves, both are judged only on the sends after its adoption: on the sends it learnt from it
   would look better than it is. Otherwise the current policy keeps serving (at the start:
   the uniform prior, which is the logging policy of a shop with no history).

The serving policy of D (``marketing.message_policy``) is what ``marketing/messages`` of D draws its arms from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

from ml.feedback.ope import LoggedRounds, effective_sample_size, estimate_all, estimators
from ml.marketing.bandit import (
    LinearThompson,
    allowed_arms,
    arm_index,
    context_matrix,
    fit,
    prior_policy,
)
from ml.marketing.messages import MESSAGE_EVENTS, MESSAGES
from ml.summary import summary
from ml.warehouse import markdown_table, replace_partition, table_exists

MESSAGE_POLICY = "marketing.message_policy"
POLICY_EVALUATION = "marketing.policy_evaluation"
MIN_ROUNDS = 200
"""Logged sends needed before a learnt policy may replace the serving one."""
MIN_REWARDED = 20
"""...and sends among them that earned anything: fewer purchases than this say nothing about arms."""
DECIDING_ESTIMATOR = "dr"
EVALUATION_SEED = 0


def logged_sends(con: duckdb.DuckDBPyConnection, through: date) -> pd.DataFrame:
    """Every sent message with a loaded answer, sent on or before ``through``: context, arm, propensity, reward."""
    if not (table_exists(con, MESSAGES) and table_exists(con, MESSAGE_EVENTS)):
        return pd.DataFrame(columns=SEND_COLUMNS)
    levels = (
        "coalesce(m.offer_level, 'standard')" if _has_column(con, MESSAGES, "offer_level") else "'standard'"
    )
    frame = con.execute(
        f"""
        select m.message_id, m.send_date, m.customer_id, m.campaign,
               m.family || '/' || {levels} as arm, m.propensity,
               (m.facts::json ->> 'orders_365d')::double as orders_365d,
               (m.facts::json ->> 'spend_365d')::double as spend_365d,
               (m.facts::json ->> 'recency_days')::double as recency_days,
               (m.facts::json ->> 'discount_share_365d')::double as discount_share_365d,
               e.credited_margin::double as reward
        from {MESSAGES} as m
        join {MESSAGE_EVENTS} as e on e.message_id = m.message_id
        where m.status = 'ready' and m.send_date <= ?
        order by m.message_id
        """,
        [through],
    ).df()
    return frame[SEND_COLUMNS]


SEND_COLUMNS = [
    "message_id",
    "send_date",
    "customer_id",
    "campaign",
    "arm",
    "propensity",
    "orders_365d",
    "spend_365d",
    "recency_days",
    "discount_share_365d",
    "reward",
]


def _has_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    schema, name = table.split(".")
    return bool(
        con.execute(
            "select count(*) from information_schema.columns where table_schema = ? and table_name = ? "
            "and column_name = ?",
            [schema, name, column],
        ).fetchall()[0][0]
    )


def serving_policy(con: duckdb.DuckDBPyConnection, day: date) -> LinearThompson:
    """The policy that serves ``day``'s messages: the latest decision on or before ``day``, else the prior."""
    if table_exists(con, MESSAGE_POLICY):
        rows = con.execute(
            f"select params from {MESSAGE_POLICY} where as_of_date <= ? order by as_of_date desc limit 1",
            [day],
        ).fetchall()
        if rows:
            return LinearThompson.from_json(rows[0][0])
    return prior_policy()


@dataclass(frozen=True)
class Decision:
    serving: LinearThompson
    candidate: LinearThompson
    adopted: bool
    reason: str


def _folds(message_ids: pd.Series) -> np.ndarray:
    return np.array([hashlib.sha256(m.encode()).digest()[0] % 2 for m in message_ids.astype(str)])


def serving_since(con: duckdb.DuckDBPyConnection, day: date) -> date | None:
    """The day the policy serving ``day`` was adopted (``None`` while the prior serves)."""
    if not table_exists(con, MESSAGE_POLICY):
        return None
    rows = con.execute(
        f"""
        select min(as_of_date) from {MESSAGE_POLICY}
        where adopted and as_of_date <= $day and serving_version = (
            select serving_version from {MESSAGE_POLICY} where as_of_date <= $day order by as_of_date desc limit 1
        )
        """,
        {"day": day},
    ).fetchall()
    return rows[0][0] if rows and rows[0][0] is not None else None


def evaluate(
    sends: pd.DataFrame, current: LinearThompson, n_bootstrap: int = 200, judged: np.ndarray | None = None
) -> pd.DataFrame:
    """Cross-fitted off-policy estimates of the candidate recipe and of ``current`` on the logged ``sends``:
    one row per policy and estimator. Models are fitted on all sends; only the ``judged`` ones (default: all)
    are estimated on, so a serving policy is not judged on the sends it learnt from."""
    judged = np.ones(len(sends), dtype=bool) if judged is None else np.asarray(judged, dtype=bool)
    context = context_matrix(sends)
    arm = arm_index(sends["arm"])
    reward = sends["reward"].to_numpy(float)
    propensity = sends["propensity"].to_numpy(float)
    allowed = np.vstack([allowed_arms(c) for c in sends["campaign"]])
    fold = _folds(sends["message_id"])
    parts: dict[str, list[LoggedRounds]] = {"candidate": [], "current": []}
    for held in (0, 1):
        train, test = fold != held, (fold == held) & judged
        if not test.any():
            continue
        # the candidate fitted on the other half is also the reward model both policies are judged with
        model = fit(context[train], arm[train], reward[train])
        q = model.expected_reward(context[test])
        idx = np.arange(test.sum())
        for name, policy in (("candidate", model), ("current", current)):
            pi = policy.action_probabilities(context[test], allowed[test], seed=EVALUATION_SEED)
            parts[name].append(
                LoggedRounds(
                    reward=reward[test],
                    logging_propensity=propensity[test],
                    target_propensity=pi[idx, arm[test]],
                    predicted_reward=q[idx, arm[test]],
                    target_predicted_reward=(pi * q).sum(axis=1),
                )
            )
    rows = []
    for name, halves in parts.items():
        rounds = LoggedRounds.concat(halves)
        ess = effective_sample_size(rounds)
        for estimator, est in estimate_all(rounds, estimators(with_model=True), n_bootstrap).items():
            rows.append(
                {
                    "policy": name,
                    "estimator": estimator,
                    "value": est.value,
                    "low": est.low,
                    "high": est.high,
                    "rounds": len(rounds.reward),
                    "effective_sample_size": ess,
                }
            )
    rows.append(
        {
            "policy": "logged",
            "estimator": "on_policy_mean",
            "value": float(reward[judged].mean()),
            "low": np.nan,
            "high": np.nan,
            "rounds": int(judged.sum()),
            "effective_sample_size": float(judged.sum()),
        }
    )
    return pd.DataFrame(rows)


def decide(
    con: duckdb.DuckDBPyConnection, day: date, min_rounds: int = MIN_ROUNDS
) -> tuple[Decision, pd.DataFrame, pd.DataFrame]:
    """D's decision, the estimates behind it, and the sends it learnt from."""
    current = serving_policy(con, day - timedelta(days=1))
    sends = logged_sends(con, day)
    if sends.empty:
        return Decision(current, current, False, "no logged sends with answers yet"), pd.DataFrame(), sends
    candidate = fit(context_matrix(sends), arm_index(sends["arm"]), sends["reward"].to_numpy(float))
    since = serving_since(con, day - timedelta(days=1))
    judged = (
        (pd.to_datetime(sends["send_date"]).dt.date > since).to_numpy()
        if since
        else np.ones(len(sends), bool)
    )
    after = f" since the serving policy's adoption on {since}" if since else ""
    if not judged.any():
        return Decision(current, candidate, False, f"no sends{after} to judge on"), pd.DataFrame(), sends
    estimates = evaluate(sends, current, judged=judged)
    value = estimates.set_index(["policy", "estimator"])["value"]
    new, old = value[("candidate", DECIDING_ESTIMATOR)], value[("current", DECIDING_ESTIMATOR)]
    n_judged, rewarded = int(judged.sum()), int((sends["reward"].to_numpy() > 0)[judged].sum())
    if n_judged < min_rounds or rewarded < MIN_REWARDED:
        reason = (
            f"{n_judged} sends{after} ({rewarded} earning) < {min_rounds} ({MIN_REWARDED} earning) needed"
        )
        return Decision(current, candidate, False, reason), estimates, sends
    if new >= old:
        reason = f"candidate DR {new:.3f} >= current DR {old:.3f} per send"
        return Decision(candidate, candidate, True, reason), estimates, sends
    reason = f"candidate DR {new:.3f} < current DR {old:.3f} per send: current kept"
    return Decision(current, candidate, False, reason), estimates, sends


def store_decision(
    con: duckdb.DuckDBPyConnection, day: date, decision: Decision, estimates: pd.DataFrame, rounds: int
) -> None:
    """Replace D's decision and estimates (a re-run of D decides again from the same logs)."""
    replace_partition(
        con,
        MESSAGE_POLICY,
        "as_of_date",
        day,
        pd.DataFrame(
            [
                {
                    "as_of_date": day,
                    "serving_version": decision.serving.version,
                    "candidate_version": decision.candidate.version,
                    "adopted": decision.adopted,
                    "reason": decision.reason,
                    "rounds": rounds,
                    "params": decision.serving.to_json(),
                }
            ]
        ),
    )
    if len(estimates):
        replace_partition(con, POLICY_EVALUATION, "as_of_date", day, estimates.assign(as_of_date=day))
    elif table_exists(con, POLICY_EVALUATION):
        con.execute(f"delete from {POLICY_EVALUATION} where as_of_date = ?", [day])


def policy_summary(decision: Decision, estimates: pd.DataFrame, sends: pd.DataFrame) -> dict:
    """Plotted numbers: the estimates of both policies, the logged value, adoption; tables for the UI."""
    metrics: dict[str, float | int | str] = {
        "logged_sends": len(sends),
        "adopted": int(decision.adopted),
        "serving_version": decision.serving.version,
        "decision": decision.reason,
    }
    markdown = {}
    if len(estimates):
        for row in estimates.itertuples(index=False):
            metrics[f"{row.policy}_{row.estimator}"] = float(row.value)
        metrics["effective_sample_size_candidate"] = float(
            estimates.loc[estimates["policy"] == "candidate", "effective_sample_size"].iat[0]
        )
        markdown["off_policy_estimates"] = markdown_table(estimates.round(4))
    if len(sends):
        arms = (
            sends.groupby("arm").agg(sends=("reward", "size"), mean_reward=("reward", "mean")).reset_index()
        )
        markdown["logged_reward_by_arm"] = markdown_table(arms.round(4))
    return summary(len(sends), metrics, markdown)
