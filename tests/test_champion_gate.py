"""The champion gate that really gates (issue 24 point 5): a champion clearly worse than popularity on the
latest evaluated day does not serve; the last published lists keep serving, and the blocking check stops the
day's lists in Dagster."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import duckdb
import pandas as pd
import pytest

from ml.artifacts import ArtifactStore
from ml.recommend.bundles import BUNDLES
from ml.recommend.champion import regression_verdict
from ml.recommend.daily import CHAMPIONS, LISTS, METRICS, RecommendSettings, champion_day, recommend_day_parts
from ml.warehouse import replace_partition

DAY = date(2025, 1, 20)


def _metrics(days: int, last_day_interval: tuple[float, float]) -> pd.DataFrame:
    """EASE well ahead of popularity on every evaluated day; on the last one, the given paired interval."""
    rows = []
    for i in range(days):
        d = DAY - timedelta(days=days - 1 - i)
        lo, hi = last_day_interval if i == days - 1 else (0.01, 0.03)
        rows.append({"eval_date": d, "model": "popularity", "NDCG@10": 0.05})
        rows.append(
            {
                "eval_date": d,
                "model": "ease",
                "NDCG@10": 0.08,
                "NDCG@10_vs_popularity_lo": lo,
                "NDCG@10_vs_popularity_hi": hi,
            }
        )
    return pd.DataFrame(rows)


def _warehouse(path, last_day_interval) -> None:
    with duckdb.connect(str(path)) as con:
        metrics = _metrics(7, last_day_interval)
        replace_partition(con, METRICS, "eval_date", (metrics["eval_date"].min(), DAY), metrics)
        # the lists published the day before: what keeps serving when the gate holds the day back
        yesterday = DAY - timedelta(days=1)
        replace_partition(
            con,
            LISTS,
            "as_of_date",
            yesterday,
            pd.DataFrame({"as_of_date": [yesterday], "customer_id": ["C1"], "sku": ["S1"], "rank": [1]}),
        )
        replace_partition(
            con,
            CHAMPIONS,
            "as_of_date",
            yesterday,
            pd.DataFrame(
                {
                    "as_of_date": [yesterday],
                    "champion": ["ease"],
                    "reason": ["r"],
                    "beats_baseline": [True],
                    "blocked_online": [""],
                }
            ),
        )


def test_regression_verdict_needs_the_whole_interval_below_zero():
    row = {"model": "ease", "date": DAY, "NDCG@10_vs_popularity_lo": -0.03, "NDCG@10_vs_popularity_hi": -0.01}
    assert "ease is worse than popularity" in regression_verdict(row)
    assert regression_verdict({**row, "NDCG@10_vs_popularity_hi": 0.002}) is None  # a noisy day is not enough
    assert regression_verdict({**row, "model": "popularity"}) is None
    assert (
        regression_verdict({"model": "ease", "date": DAY}) is None
    )  # days evaluated before the gate existed
    assert regression_verdict(None) is None


@pytest.mark.parametrize("interval,serves", [((-0.04, -0.01), False), ((-0.02, 0.01), True)])
def test_a_champion_worse_than_popularity_on_the_latest_day_does_not_serve(tmp_path, interval, serves):
    _warehouse(tmp_path / "w.duckdb", interval)
    store = ArtifactStore(tmp_path / "artifacts")
    store.path(BUNDLES, DAY.isoformat()).mkdir(parents=True)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        row, choice = champion_day(con, store, DAY, RecommendSettings())
        # the 7-day window still chooses EASE; only the latest day's verdict differs
        assert choice["champion"] == "ease" and choice["beats_baseline"]
        assert choice["served"] is serves and bool(row["served"].iloc[0]) is serves
        if not serves:
            assert "gate blocked serving" in choice["reason"]
            assert f"the lists of {DAY - timedelta(days=1)} keep serving" in choice["reason"]
            replace_partition(con, CHAMPIONS, "as_of_date", DAY, row)
            assert (
                list(recommend_day_parts(con, store, DAY, RecommendSettings())) == []
            )  # no lists for the day


def test_the_blocking_check_stops_the_days_lists_in_dagster(tmp_path):
    from tests.pipeline_helpers import all_assets, resources_for

    data = tmp_path / "data"
    data.mkdir()
    _warehouse(data / "warehouse.duckdb", (-0.04, -0.01))
    resources = resources_for(data)
    resources["files"].artifacts().path(BUNDLES, DAY.isoformat()).mkdir(parents=True)
    run = dg.materialize(
        all_assets(),
        selection=dg.AssetSelection.assets(
            dg.AssetKey(["recommend", "champion"]), dg.AssetKey(["recommend", "recommendations"])
        ),
        resources=resources,
        partition_key=DAY.isoformat(),
        raise_on_error=False,
    )
    (gate,) = [e for e in run.get_asset_check_evaluations() if e.check_name == "champion_gate"]
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.ERROR
    assert gate.metadata["served"].value is False
    assert "keep serving" in gate.metadata["reason"].value
    made = {e.asset_key.to_user_string() for e in run.get_asset_materialization_events()}
    assert "recommend/champion" in made and "recommend/recommendations" not in made
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute(f"SELECT max(as_of_date) FROM {LISTS}").fetchall()[0][0] == DAY - timedelta(days=1)
        assert con.execute(f"SELECT served FROM {CHAMPIONS} WHERE as_of_date = ?", [DAY]).fetchall() == [
            (False,)
        ]


def test_the_shop_keeps_showing_the_newest_lists_published_within_a_week(tmp_path):
    from ml.exports import read_latest_export, write_export

    write_export(pd.DataFrame({"sku": ["S1"]}), tmp_path, "recommendations", DAY - timedelta(days=2))
    assert read_latest_export(tmp_path, "recommendations", DAY)["sku"].tolist() == ["S1"]
    write_export(pd.DataFrame({"sku": ["S2"]}), tmp_path, "recommendations", DAY)
    assert read_latest_export(tmp_path, "recommendations", DAY)["sku"].tolist() == ["S2"]
    assert read_latest_export(tmp_path, "recommendations", DAY + timedelta(days=9)) is None  # too old to show
