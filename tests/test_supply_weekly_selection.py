"""The `demand_forecast` asset with `model: full`: a weekly selection stored once and reused on later days.

A real Dagster materialisation against a temporary DuckDB holding a `marts.fct_daily_sku_demand` of 260 days
(the simulated store's first weeks are too short for the full ensemble's validation windows).
"""

import dagster as dg
import duckdb
import pandas as pd

from ml.forecast.service import selection_anchor
from ml.forecast.synthetic import synthetic_store
from orchestration.defs.supply.assets import demand_forecast
from orchestration.resources import DataFilesResource, WarehouseResource
from tests.marts import demand_mart


def _write_mart(path) -> pd.DatetimeIndex:
    df, _ = synthetic_store(n_series=20, n_periods=260, season_length=7, seed=11, start="2025-01-01")
    mart = demand_mart(df)
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA marts")
        con.register("mart_frame", mart)
        con.execute("CREATE TABLE marts.fct_daily_sku_demand AS SELECT * FROM mart_frame")
    return pd.DatetimeIndex(sorted(pd.to_datetime(df["ds"]).unique()))


def test_full_model_selects_weekly_and_reuses_the_selection(tmp_path):
    days = _write_mart(tmp_path / "warehouse.duckdb")
    anchor = selection_anchor(days[250])
    thursday, monday = anchor + pd.Timedelta(days=3), anchor
    resources = {
        "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
        "files": DataFilesResource.under(tmp_path),
    }
    config = dg.RunConfig(ops={"supply__demand_forecast": {"config": {"model": "full"}}})
    metas = []
    for day in (thursday, monday):  # out of order, as a backfill may run
        result = dg.materialize(
            [demand_forecast], partition_key=str(day.date()), resources=resources, run_config=config
        )
        assert result.success
        (mat,) = result.asset_materializations_for_node("supply__demand_forecast")
        metas.append({k: v.value for k, v in mat.metadata.items()})
    assert [m["model_selected_on"] for m in metas] == [str(anchor.date())] * 2
    assert [m["model_selection_reused"] for m in metas] == [False, True]
    assert metas[0]["models"] == {"ensemble": 20}
    stored = list((tmp_path / "artifacts" / "supply" / "forecast_selection").iterdir())
    assert [p.name for p in stored] == [f"selection-{anchor.date()}-ensemble.pkl"]
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        rows = con.execute(
            "SELECT as_of_date, count(*), min(forecast_date) > as_of_date, min(q90 - q50) >= 0 "
            "FROM supply.demand_forecast GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert [(str(r[0]), r[1], r[2], r[3]) for r in rows] == [
        (str(monday.date()), 20 * 28, True, True),
        (str(thursday.date()), 20 * 28, True, True),
    ]
