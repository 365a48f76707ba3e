"""The message bandit and its off-policy gate, on sends whose best arm per campaign is known."""

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.marketing.bandit import (
    ARMS,
    EXPLORATION_FLOOR,
    LinearThompson,
    allowed_arms,
    context_matrix,
    draw_arms,
    fit,
    prior_policy,
)
from ml.marketing.policy import (
    MESSAGE_POLICY,
    POLICY_EVALUATION,
    decide,
    evaluate,
    serving_policy,
    store_decision,
)

BEST = {
    "discount": "personal/high",
    "win_back": "urgent/low",
    "welcome": "plain/standard",
    "member_perks": "plain/standard",
}
CAMPAIGN_NAMES = list(BEST)


def _contexts(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "message_id": [f"m{seed}-{i}" for i in range(n)],
            "customer_id": [f"c{i}" for i in range(n)],
            "campaign": rng.choice(CAMPAIGN_NAMES, n),
            "orders_365d": rng.integers(0, 12, n).astype(float),
            "spend_365d": rng.gamma(2, 150, n),
            "recency_days": rng.integers(1, 200, n).astype(float),
            "discount_share_365d": rng.random(n),
        }
    )


def _true_mean(campaign: np.ndarray, arm: np.ndarray) -> np.ndarray:
    best = np.array([ARMS[a] == BEST[c] for c, a in zip(campaign, arm, strict=True)])
    return np.where(best, 3.0, 0.5)


def _uniform_sends(n: int, seed: int) -> pd.DataFrame:
    """Sends logged by the uniform policy; reward: margin credited with the arm's true mean (exponential)."""
    frame = _contexts(n, seed)
    allowed = np.vstack([allowed_arms(c) for c in frame["campaign"]])
    probabilities = allowed / allowed.sum(axis=1, keepdims=True)
    arm = draw_arms(probabilities, frame["customer_id"] + f"-{seed}", date(2025, 1, 1))
    rng = np.random.default_rng(seed + 1)
    reward = rng.exponential(_true_mean(frame["campaign"].to_numpy(), arm))
    return frame.assign(
        arm=[ARMS[a] for a in arm],
        propensity=probabilities[np.arange(n), arm],
        reward=reward,
        send_date=date(2025, 1, 2),
    )


def test_the_prior_is_uniform_over_the_arms_a_campaign_allows():
    frame = _contexts(200, seed=0)
    allowed = np.vstack([allowed_arms(c) for c in frame["campaign"]])
    p = prior_policy().action_probabilities(context_matrix(frame), allowed, draws=2000, seed=1)
    perks = (frame["campaign"] == "member_perks").to_numpy()
    assert np.allclose(p.sum(axis=1), 1)
    assert allowed[perks].sum(axis=1).tolist() == [3] * perks.sum()
    assert np.all(p[~allowed] == 0)
    assert np.allclose(p[perks][allowed[perks]], 1 / 3, atol=0.05)
    assert np.allclose(p[~perks][allowed[~perks]], 1 / 9, atol=0.03)


def test_the_learnt_policy_sends_each_campaigns_best_arm_and_keeps_exploring():
    sends = _uniform_sends(6000, seed=2)
    arm = sends["arm"].map({a: i for i, a in enumerate(ARMS)}).to_numpy()
    policy = fit(context_matrix(sends), arm, sends["reward"].to_numpy())
    fresh = _contexts(400, seed=3)
    allowed = np.vstack([allowed_arms(c) for c in fresh["campaign"]])
    p = policy.action_probabilities(context_matrix(fresh), allowed, seed=4)
    best = np.array([ARMS.index(BEST[c]) for c in fresh["campaign"]])
    assert np.mean(p[np.arange(400), best]) > 0.85
    floor = EXPLORATION_FLOOR / allowed.sum(axis=1)
    assert np.all(p[allowed] >= np.repeat(floor, allowed.sum(axis=1)) - 1e-12)
    # the stored policy serves the same probabilities
    again = LinearThompson.from_json(policy.to_json())
    assert again.version == policy.version
    assert np.allclose(again.action_probabilities(context_matrix(fresh), allowed, seed=4), p)


def test_arms_are_drawn_by_their_probabilities_and_again_on_a_rerun():
    p = np.tile([0.2, 0.5, 0.3], (20_000, 1))
    ids = pd.Series([f"c{i}" for i in range(20_000)])
    drawn = draw_arms(p, ids, date(2025, 1, 5))
    assert np.allclose(np.bincount(drawn, minlength=3) / 20_000, [0.2, 0.5, 0.3], atol=0.015)
    assert np.array_equal(drawn, draw_arms(p, ids, date(2025, 1, 5)))
    assert not np.array_equal(drawn, draw_arms(p, ids, date(2025, 1, 6)))


def test_off_policy_estimates_find_the_learnt_policy_better_than_the_uniform_one():
    sends = _uniform_sends(4000, seed=5)
    estimates = evaluate(sends, prior_policy(), n_bootstrap=50).set_index(["policy", "estimator"])
    logged = sends["reward"].mean()
    # the uniform policy is the logging policy: its estimates are the logged mean
    assert estimates.loc[("current", "ips"), "value"] == pytest.approx(logged, rel=0.1)
    assert estimates.loc[("current", "dr"), "value"] == pytest.approx(logged, rel=0.1)
    # the learnt one sends the best arm (mean 3) about 90% of the time: about 2.75 per send
    for estimator in ("ips", "snips", "dm", "dr"):
        value = estimates.loc[("candidate", estimator), "value"]
        assert 2.3 < value < 3.2, (estimator, value)
        assert estimates.loc[("candidate", estimator), "low"] > estimates.loc[("current", estimator), "high"]


def _warehouse(sends: pd.DataFrame, path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("create schema marketing; create schema marts")
    facts = sends.apply(
        lambda r: pd.Series(
            r[["orders_365d", "spend_365d", "recency_days", "discount_share_365d"]]
        ).to_json(),
        axis=1,
    )
    messages = pd.DataFrame(
        {
            "as_of_date": date(2025, 1, 1),
            "message_id": sends["message_id"],
            "send_date": sends["send_date"],
            "customer_id": sends["customer_id"],
            "campaign": sends["campaign"],
            "family": sends["arm"].str.split("/").str[0],
            "offer_level": sends["arm"].str.split("/").str[1],
            "propensity": sends["propensity"],
            "facts": facts,
            "status": "ready",
        }
    )
    events = pd.DataFrame({"message_id": sends["message_id"], "credited_margin": sends["reward"]})
    con.register("messages_frame", messages)
    con.register("events_frame", events)
    con.execute("create table marketing.messages as select * from messages_frame")
    con.execute("create table marts.fct_message_events as select * from events_frame")
    return con


def test_a_policy_is_adopted_only_with_enough_sends_and_a_better_estimate(tmp_path):
    day = date(2025, 1, 2)
    few = _uniform_sends(150, seed=6)
    with _warehouse(few, tmp_path / "few.duckdb") as con:
        decision, estimates, sends = decide(con, day)
        assert len(sends) == 150 and not decision.adopted and "< 200 (20 earning) needed" in decision.reason
        assert decision.serving.version == prior_policy().version
    sparse = _uniform_sends(3000, seed=8)
    sparse["reward"] = np.where(np.arange(3000) < 10, sparse["reward"], 0.0)  # ten purchases in 3,000 sends
    with _warehouse(sparse, tmp_path / "sparse.duckdb") as con:
        decision, _, _ = decide(con, day)
        assert not decision.adopted and decision.reason.startswith("3000 sends (10 earning)")
    many = _uniform_sends(3000, seed=7)
    with _warehouse(many, tmp_path / "many.duckdb") as con:
        decision, estimates, sends = decide(con, day)
        assert decision.adopted and decision.serving is decision.candidate
        store_decision(con, day, decision, estimates, len(sends))
        store_decision(con, day, decision, estimates, len(sends))  # a re-run replaces the day
        assert con.execute(f"select count(*) from {MESSAGE_POLICY}").fetchall()[0][0] == 1
        stored = con.execute(f"select count(distinct policy), count(*) from {POLICY_EVALUATION}").fetchall()[
            0
        ]
        assert stored == (3, len(estimates))
        # the next day's messages are drawn from the adopted policy, the day before from the prior
        assert serving_policy(con, date(2025, 1, 3)).version == decision.candidate.version
        assert serving_policy(con, date(2025, 1, 1)).version == prior_policy().version
        # the next day the serving policy is judged only on sends after its adoption: there are none yet
        following, estimates, _ = decide(con, date(2025, 1, 3))
        assert not following.adopted and following.serving.version == decision.candidate.version
        assert following.reason == "no sends since the serving policy's adoption on 2025-01-02 to judge on"
        # sends after the adoption are the only ones judged on (the models still learn from all)
        later = _uniform_sends(400, seed=9).assign(send_date=date(2025, 1, 3))
        with _warehouse(later, tmp_path / "later.duckdb") as fresh:
            rows = fresh.execute("select * from marketing.messages").df()
            events = fresh.execute("select * from marts.fct_message_events").df()
        con.register("later_messages", rows)
        con.register("later_events", events)
        con.execute("insert into marketing.messages by name select * from later_messages")
        con.execute("insert into marts.fct_message_events by name select * from later_events")
        _, estimates, sends = decide(con, date(2025, 1, 3))
        assert len(sends) == 3400 and set(estimates["rounds"]) == {400}


def test_fixed_and_uniform_rules_for_benchmarks_and_overrides():
    from ml.marketing.bandit import FixedArm, UniformArms, named_policy

    allowed = np.vstack([allowed_arms(c) for c in ("discount", "member_perks")])
    fixed = named_policy("urgent/high").action_probabilities(np.zeros((2, 1)), allowed)
    assert ARMS[fixed[0].argmax()] == "urgent/high" and ARMS[fixed[1].argmax()] == "urgent/standard"
    assert np.allclose(fixed.max(axis=1), 1)
    assert isinstance(named_policy("plain/low"), FixedArm) and isinstance(
        named_policy("uniform"), UniformArms
    )
    assert np.allclose(
        named_policy("uniform").action_probabilities(np.zeros((2, 1)), allowed)[1][allowed[1]], 1 / 3
    )
    with pytest.raises(ValueError, match="unknown arm policy"):
        named_policy("shouty/high")
