"""The message replay benchmark's arithmetic on truth tables whose answers are known."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from bench.message_replay import Replay, parse_args
from ml.exports import exported_days, write_export
from ml.marketing.bandit import ARMS


def truth(days: int = 5, per_day: int = 200, best: str = "personal/high", seed: int = 0) -> pd.DataFrame:
    """Welcome messages where ``best`` earns 2.5 per send (click 0.5 x buy 0.5 x margin 10) and every other arm
    0.1 (0.1 x 0.2 x 5)."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    frame = pd.DataFrame(
        {
            "message_id": [f"m{i}" for i in range(n)],
            "campaign": "welcome",
            "send_date": np.repeat([date(2025, 1, 2) + timedelta(days=d) for d in range(days)], per_day),
            "orders_365d": rng.integers(0, 5, n),
            "spend_365d": rng.uniform(0, 300, n),
            "recency_days": rng.integers(1, 90, n),
            "discount_share_365d": rng.uniform(0, 1, n),
        }
    )
    for arm in ARMS:
        click, buy, margin = (0.5, 0.5, 10.0) if arm == best else (0.1, 0.2, 5.0)
        frame[f"click|{arm}"], frame[f"buy|{arm}"], frame[f"margin|{arm}"] = click, buy, margin
    return frame


def test_ceilings_of_fixed_arms_uniform_and_full_information():
    table = truth()
    replay = Replay(table)
    assert replay.share(replay.fixed("personal/high")) == pytest.approx(1.0)
    assert replay.share(replay.fixed("plain/low")) == pytest.approx(0.1 / 2.5)
    assert replay.uniform_share() == pytest.approx((2.5 + 8 * 0.1) / 9 / 2.5)
    # the best arm depends on a feature: full information with it finds every message's best arm, without it
    # only the arm that is best most often
    flip = np.arange(len(table)) % 4 == 0
    for arm in ("personal/high", "urgent/high"):
        table[f"click|{arm}"], table[f"buy|{arm}"] = 0.5, 0.5
        table[f"margin|{arm}"] = np.where(flip == (arm == "urgent/high"), 10.0, 0.4)
    replay = Replay(table)
    with_feature = np.column_stack([replay.context, flip.astype(float)])
    assert replay.full_information(with_feature) == pytest.approx(1.0)
    assert replay.full_information(replay.context) == pytest.approx((0.75 * 2.5 + 0.25 * 0.1) / 2.5, abs=0.02)


def test_the_learner_finds_a_clear_best_arm_and_pays_only_the_exploration_floor():
    replay = Replay(truth())
    result = replay.learn(days=30, seed=1)
    assert result["sends"] == 30 * 200
    # converged Thompson sampling with a 10% uniform floor: 0.9 + 0.1 x the uniform share (0.12)
    assert 0.85 < result["share_of_oracle_last_7_days"] <= 0.925
    assert result["share_of_oracle"] < result["share_of_oracle_last_7_days"]


def test_scaling_clicks_scales_the_answers_not_the_margins():
    table = truth()
    table["click|plain/low"] = 0.4
    scaled = Replay(table, click_scale=4.0)
    assert scaled.click[0, 0] == 1.0  # capped
    assert scaled.click[0, 1] == pytest.approx(0.4)
    assert scaled.value[0, 1] == pytest.approx(0.4 * 0.2 * 5.0)
    assert (scaled.margin == Replay(table).margin).all()


def test_arguments_are_checked(tmp_path):
    with pytest.raises(SystemExit):
        parse_args(["--run", str(tmp_path), "--out", "x.json"])
    (tmp_path / "exports").mkdir()
    (tmp_path / "warehouse.duckdb").touch()
    with pytest.raises(SystemExit):
        parse_args(["--run", str(tmp_path), "--out", "x.json", "--days", "2"])
    assert parse_args(["--run", str(tmp_path), "--out", "x.json", "--days", "60,240"]).days == [60, 240]


def test_exported_days_are_the_complete_days_in_order(tmp_path):
    assert exported_days(tmp_path, "messages") == []
    for day in (date(2025, 1, 3), date(2025, 1, 1)):
        write_export(pd.DataFrame({"message_id": ["m1"]}), tmp_path, "messages", day)
    (tmp_path / "messages" / ".date=2025-01-02.tmp").mkdir()  # a day being written
    assert exported_days(tmp_path, "messages") == [date(2025, 1, 1), date(2025, 1, 3)]


def test_sends_needed_to_separate_the_two_best_arms_follow_from_the_reward_distribution():
    replay = Replay(truth())
    needed = replay.sends_to_separate_best_arms()
    # best arm: reward 10 with chance 0.25 (mean 2.5, variance 25 - 6.25); every other arm: 5 with chance 0.02
    # (mean 0.1, variance 0.5 - 0.01); n = (z_0.95 + z_0.8)^2 (18.75 + 0.49) / 2.4^2
    z = 1.6448536 + 0.8416212
    assert needed["best"] == "personal/high"
    assert needed["mean_reward_per_send"]["personal/high"] == pytest.approx(2.5)
    assert needed["relative_difference"] == pytest.approx(2.4 / 2.5)
    assert needed["purchase_chance_per_send"]["personal/high"] == pytest.approx(0.25)
    assert needed["sends_per_arm_needed"] == int(np.ceil(z**2 * 19.24 / 2.4**2))
    # two arms 10% apart at a 2% purchase chance need far more sends than the clear case
    table = truth()
    table["margin|personal/standard"], table["click|personal/standard"] = 9.0, 0.1
    table["buy|personal/standard"] = table["buy|personal/high"] = 0.2
    table["click|personal/high"] = 0.1
    close = Replay(table).sends_to_separate_best_arms()
    assert (close["best"], close["runner_up"]) == ("personal/high", "personal/standard")
    assert close["relative_difference"] == pytest.approx(0.1)
    variance = 0.02 * 100 - 0.2**2 + 0.02 * 81 - 0.18**2
    assert close["sends_per_arm_needed"] == int(np.ceil(z**2 * variance / 0.02**2))
    assert close["sends_per_arm_needed"] > 100 * needed["sends_per_arm_needed"]
