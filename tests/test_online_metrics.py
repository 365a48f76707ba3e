"""Online metrics and the gate they feed (ml/feedback/online.py, the online half of the champion gate, the
click-through retrain rule), on a real DuckDB holding exposure rows of known outcome."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.feedback.online import (
    EXPOSURES,
    METRIC_BY_NAME,
    ONLINE_METRICS,
    ONLINE_UPLIFT,
    compare_arms,
    ctr_drop,
    model_name,
    online_metrics_day,
    online_summary,
    online_verdicts,
)
from ml.recommend.champion import choose_champion
from ml.recommend.daily import RecommendSettings, retrain_decision
from ml.warehouse import replace_partition

DAY = date(2025, 3, 12)  # a Wednesday: not SASRec's weekly retrain day


def exposures(
    day: date,
    n: int,
    arm: str,
    revenue: float,
    seed: int,
    model_version: str = "ease-2025-03-01-0123abcd",
    ctr: float = 0.1,
    prefix: str = "c",
) -> pd.DataFrame:
    """``n`` exposed customers of one arm on ``day``: 10 impressions each, clicks at rate ``ctr``, revenue
    exponential with mean ``revenue`` (half of it credited)."""
    rng = np.random.default_rng(seed)
    spend = rng.exponential(revenue, n) if revenue > 0 else np.zeros(n)
    clicks = rng.binomial(10, ctr, n)
    return pd.DataFrame(
        {
            "exposure_date": day,
            "customer_id": [f"{prefix}{arm[0]}{i}" for i in range(n)],
            "placement": "for_you",
            "model_version": model_version,
            "arm": arm,
            "impressions": 10,
            "clicks": clicks,
            "carts": clicks // 2,
            "credited_units": (spend > revenue).astype(int),
            "credited_revenue": spend / 2,
            "credited_margin": spend / 5,
            "converted": spend > revenue,
            "orders": (spend > 0).astype(int),
            "units": (spend > 0).astype(int),
            "revenue": spend,
            "margin": spend * 0.4,
        }
    )


def warehouse(*frames: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    rows = pd.concat(frames, ignore_index=True)
    con.register("rows", rows)
    con.execute(f"CREATE TABLE {EXPOSURES} AS SELECT * FROM rows")
    con.unregister("rows")
    return con


def test_model_names_are_read_from_versions():
    assert model_name("ease-2025-01-09-1a2b3c4d") == "ease"
    assert model_name("segment_popularity-2025-01-09-00ff00ff") == "segment_popularity"
    assert model_name("oracle-2025-01-09") == "oracle"
    assert model_name("handmade") == "handmade"


def test_a_real_difference_has_an_interval_that_excludes_zero_and_covers_it():
    t = exposures(DAY, 2_000, "treatment", revenue=12.0, seed=1)
    c = exposures(DAY, 400, "control", revenue=8.0, seed=2)
    result = compare_arms(t, c, METRIC_BY_NAME["revenue"], seed=0)
    assert result["treatment"] == pytest.approx(t["revenue"].mean())
    assert result["control"] == pytest.approx(c["revenue"].mean())
    assert result["difference"] == pytest.approx(result["treatment"] - result["control"])
    assert 0 < result["ci_low"] < result["difference"] < result["ci_high"]
    assert result["ci_low"] < 4.0 < result["ci_high"]  # the true difference
    assert result["relative_uplift"] == pytest.approx(result["difference"] / result["control"])
    assert (result["treatment_customers"], result["control_customers"]) == (2_000, 400)


def test_no_difference_gives_an_interval_around_zero_and_ratios_are_ratios_of_sums():
    t = exposures(DAY, 1_500, "treatment", revenue=10.0, seed=3, ctr=0.05)
    c = exposures(DAY, 1_500, "control", revenue=10.0, seed=4, ctr=0.05)
    result = compare_arms(t, c, METRIC_BY_NAME["revenue"], seed=0)
    assert result["ci_low"] < 0 < result["ci_high"]
    ctr = compare_arms(t, c, METRIC_BY_NAME["ctr"], seed=0)
    assert ctr["treatment"] == pytest.approx(t["clicks"].sum() / t["impressions"].sum())
    assert ctr["ci_low"] < 0 < ctr["ci_high"]


def test_a_customer_seen_on_several_days_is_resampled_as_one_unit():
    """Two days of the same 300 customers: the value is per customer-day, the interval is as wide as the
    customer-level spread allows (not narrowed by counting each customer twice)."""
    first = exposures(DAY, 300, "treatment", revenue=10.0, seed=5)
    twice = pd.concat([first, first.assign(exposure_date=DAY + timedelta(days=1))], ignore_index=True)
    control = exposures(DAY, 300, "control", revenue=10.0, seed=6)
    once = compare_arms(first, control, METRIC_BY_NAME["revenue"], seed=0)
    doubled = compare_arms(twice, control, METRIC_BY_NAME["revenue"], seed=0)
    assert doubled["treatment"] == pytest.approx(once["treatment"])
    assert doubled["treatment_customers"] == 300
    assert (doubled["ci_high"] - doubled["ci_low"]) == pytest.approx(
        once["ci_high"] - once["ci_low"], rel=0.1
    )


def test_a_day_measures_the_exposures_of_the_day_before_and_a_rewrite_never_double_counts():
    yesterday = DAY - timedelta(days=1)
    con = warehouse(
        exposures(yesterday, 900, "treatment", revenue=12.0, seed=7, ctr=0.12),
        exposures(yesterday, 100, "control", revenue=6.0, seed=8, ctr=0.02),
        exposures(DAY, 50, "treatment", revenue=1.0, seed=9),  # D's own exposures: credit not complete yet
    )
    metrics, uplift = online_metrics_day(con, DAY, resamples=300)
    assert set(metrics["exposure_date"]) == {yesterday} and set(uplift["exposure_date"]) == {yesterday}
    assert metrics.set_index("arm")["exposed_customers"].to_dict() == {"treatment": 900, "control": 100}
    assert set(uplift["metric"]) == set(METRIC_BY_NAME)
    ctr = uplift.set_index("metric").loc["ctr"]
    assert ctr["ci_low"] > 0 and ctr["treatment"] == pytest.approx(0.12, abs=0.01)
    for _ in range(2):
        replace_partition(con, ONLINE_METRICS, "as_of_date", DAY, metrics)
        replace_partition(con, ONLINE_UPLIFT, "as_of_date", DAY, uplift)
    assert con.execute(f"SELECT count(*) FROM {ONLINE_METRICS}").fetchone()[0] == len(metrics) == 2
    assert con.execute(f"SELECT count(*) FROM {ONLINE_UPLIFT}").fetchone()[0] == len(uplift)
    shown = online_summary(metrics, uplift)["metrics"]
    assert shown["exposed_customers_treatment"] == 900
    assert shown["ctr_uplift"] == pytest.approx(ctr["difference"])
    assert shown["ctr_uplift_ci_low"] == pytest.approx(ctr["ci_low"])
    assert online_metrics_day(con, DAY - timedelta(days=5))[0].empty


def test_the_gate_blocks_a_model_whose_customers_bought_less_than_control():
    days = [DAY - timedelta(days=i) for i in range(1, 8)]
    frames = []
    for i, day in enumerate(days):
        frames += [
            exposures(
                day, 400, "treatment", revenue=6.0, seed=10 + i, model_version="ease-2025-03-01-0123abcd"
            ),
            exposures(
                day, 60, "control", revenue=10.0, seed=30 + i, model_version="popularity-2025-03-01-aa"
            ),
        ]
    con = warehouse(*frames)
    verdict = online_verdicts(con, DAY, resamples=300)["ease"]
    assert verdict["harmful"] and verdict["ci_high"] < 0 and verdict["days"] == 7
    # the same days with equal spending: no verdict against it
    fair = warehouse(
        *[
            f.assign(revenue=f["revenue"] * (10.0 / 6.0 if f["arm"].iloc[0] == "treatment" else 1.0))
            for f in frames
        ]
    )
    assert not online_verdicts(fair, DAY, resamples=300)["ease"]["harmful"]
    # the category pages' experiment has its own placement and never sways the recommender's gate
    pages = [
        exposures(day, 200, arm, revenue=r, seed=50 + i, model_version=f"{m}-2025-03-01", prefix="p").assign(
            placement="category_page"
        )
        for i, day in enumerate(days)
        for arm, r, m in (("treatment", 1.0, "category_pages"), ("control", 40.0, "bestsellers"))
    ]
    mixed = online_verdicts(warehouse(*frames, *pages), DAY, resamples=300)
    assert set(mixed) == {"ease"} and mixed["ease"]["difference"] == verdict["difference"]


def test_a_blocked_model_is_neither_promoted_nor_kept():
    rows = [
        {"date": DAY - timedelta(days=d), "model": m, "NDCG@10": v}
        for d in range(1, 6)
        for m, v in (("popularity", 0.10), ("ease", 0.20), ("itemknn", 0.15))
    ]
    history = pd.DataFrame(rows)
    assert choose_champion(history)["champion"] == "ease"
    blocked = choose_champion(history, blocked={"ease": "bought less"})
    assert blocked["champion"] == "itemknn" and "ease blocked online: bought less" in blocked["reason"]
    nothing_left = choose_champion(history, previous_champion="ease", blocked={"ease": "x", "itemknn": "y"})
    assert nothing_left["champion"] == "popularity"
    assert choose_champion(history, blocked={"popularity": "x"})["champion"] == "ease"


def ctr_history(rates: list[float]) -> duckdb.DuckDBPyConnection:
    """Treatment exposures whose click-through on day D-k is ``rates[-k]``."""
    frames = []
    for k, rate in enumerate(reversed(rates), start=1):
        day = DAY - timedelta(days=k)
        frame = exposures(day, 200, "treatment", revenue=5.0, seed=k)
        frame["clicks"] = 0
        frame.loc[: int(rate * 200) - 1, "clicks"] = 10  # exactly ``rate`` of the impressions clicked
        frames.append(frame)
    return warehouse(*frames)


def test_a_drop_in_click_through_triggers_a_retrain_off_the_weekday():
    settings = RecommendSettings()
    assert DAY.weekday() != settings.sasrec_retrain_weekday
    dropped = ctr_history([0.10] * 7 + [0.07])
    triggered, why = ctr_drop(dropped, DAY)
    assert triggered and "7.00%" in why and "10.00%" in why
    assert retrain_decision(dropped, DAY, True, settings)[0]
    held = ctr_history([0.10] * 7 + [0.085])
    assert not ctr_drop(held, DAY)[0] and not retrain_decision(held, DAY, True, settings)[0]
    unclicked_pages = exposures(DAY - timedelta(days=1), 2000, "treatment", 5.0, seed=9, ctr=0.0, prefix="p")
    rows = held.execute(f"SELECT * FROM {EXPOSURES}").df()
    with_pages = warehouse(rows, unclicked_pages.assign(placement="category_page"))
    assert ctr_drop(with_pages, DAY) == ctr_drop(held, DAY)
    too_short = ctr_history([0.10, 0.02])
    assert ctr_drop(too_short, DAY) == (False, "1 earlier exposure day(s), need 3 to judge a drop")
    assert retrain_decision(held, DAY, False, settings) == (True, "no previous bundle to carry weights over")


def test_the_champion_step_reads_the_online_verdict_and_ops_can_pin_a_model(tmp_path):
    """champion_day on a warehouse where EASE leads offline but its exposed customers bought less than control:
    the next model serves and the row says why; a pinned model serves whatever the gate says."""
    from ml.artifacts import ArtifactStore
    from ml.recommend.daily import CHAMPIONS, METRICS, champion_day

    frames = []
    for i in range(1, 8):
        day = DAY - timedelta(days=i)
        frames += [
            exposures(day, 400, "treatment", revenue=6.0, seed=50 + i),
            exposures(
                day, 60, "control", revenue=10.0, seed=70 + i, model_version="popularity-2025-03-01-aa"
            ),
        ]
    con = warehouse(*frames)
    offline = pd.DataFrame(
        [
            {"eval_date": DAY - timedelta(days=d), "model": m, "NDCG@10": v}
            for d in range(0, 5)
            for m, v in (("popularity", 0.10), ("ease", 0.20), ("itemknn", 0.15))
        ]
    )
    replace_partition(con, METRICS, "eval_date", (DAY - timedelta(days=4), DAY), offline)
    store = ArtifactStore(tmp_path)
    row, choice = champion_day(con, store, DAY, RecommendSettings())
    assert choice["champion"] == "itemknn" and row["blocked_online"].iloc[0] == "ease"
    assert "ease blocked online: revenue per exposed customer-day -" in choice["reason"]
    assert choice["online"]["ease"]["harmful"] and not choice["servable"]
    replace_partition(con, CHAMPIONS, "as_of_date", DAY, row)
    pinned, _ = champion_day(con, store, DAY, RecommendSettings(pinned_model="popularity"))
    assert pinned["champion"].iloc[0] == "popularity"
    assert pinned["reason"].iloc[0] == "pinned to popularity by ops; the gate would serve itemknn"
