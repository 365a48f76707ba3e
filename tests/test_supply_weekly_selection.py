"""The `demand_forecast` asset with `model: full`: a weekly selection stored once and reused on later days.

Real Dagster materialisations against a copy of the session's demand shop (260 days of 24 SKUs landed, loaded and
modelled by a real dbt build, tests/warehouses.py; the simulated store's first weeks are too short for the full
ensemble's validation windows).
"""

import datetime as dt
import logging
import re
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd

from ml.artifacts import ArtifactStore
from ml.forecast.marts import demand_from_mart
from ml.forecast.selection import SELECTIONS, history_fingerprint, selection_anchor
from orchestration.defs.supply.assets import demand_forecast
from orchestration.resources import DataFilesResource, WarehouseResource
from tests.warehouses import copy_shop, demand_line, demand_order, demand_shop_days, reland_days


def _shop(demand_shop: Path, frame, folder: Path) -> pd.DatetimeIndex:
    copy_shop(demand_shop, folder)
    return pd.DatetimeIndex(sorted(pd.to_datetime(frame["ds"]).unique()))


def _more_sold_on(folder: Path, frame, days: list[pd.Timestamp], units: int = 5) -> None:
    """Each of ``days`` delivered again with one more order of ``units`` of the first SKU (re-landed data), loaded
    and rebuilt in one window."""
    sku = frame["unique_id"].min()
    delivered = demand_shop_days(frame)
    relanded = {}
    for day in days:
        price = float(
            frame.loc[(frame["unique_id"] == sku) & (pd.to_datetime(frame["ds"]) == day), "price"].iloc[0]
        )
        tables = delivered[day.date()]
        at = dt.datetime.combine(day.date(), dt.time(15), tzinfo=dt.UTC)
        tables["orders"].append(demand_order(f"LATE-{day.date()}", at, None, units * price))
        tables["order_items"].append(demand_line(f"LATE-{day.date()}", at, sku, units, price))
        relanded[day.date()] = tables
    reland_days(folder, relanded)


def _materialise_full(tmp_path, day) -> dict:
    resources = {
        "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
        "files": DataFilesResource.under(tmp_path),
    }
    config = dg.RunConfig(ops={"supply__demand_forecast": {"config": {"model": "full"}}})
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [demand_forecast],
        partition_key=str(day.date()),
        resources=resources,
        run_config=config,
        instance=instance,
    )
    assert result.success
    (mat,) = result.asset_materializations_for_node("supply__demand_forecast")
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    return {k: v.value for k, v in mat.metadata.items()} | {"warnings": warnings}


def _stored(tmp_path) -> list[str]:
    return ArtifactStore(tmp_path / "artifacts").names(SELECTIONS)


def test_full_model_selects_weekly_and_reuses_the_selection(demand_shop, demand_shop_frame, tmp_path):
    days = _shop(demand_shop, demand_shop_frame[0], tmp_path)
    anchor = selection_anchor(days[250])
    thursday, monday = anchor + pd.Timedelta(days=3), anchor
    metas = [
        _materialise_full(tmp_path, day) for day in (thursday, monday)
    ]  # out of order, as a backfill may
    assert [m["model_selected_on"] for m in metas] == [str(anchor.date())] * 2
    assert [m["model_selection_reused"] for m in metas] == [False, True]
    assert metas[0]["models"] == {"ensemble": 24}
    (stored,) = _stored(tmp_path)
    assert re.fullmatch(rf"selection-{anchor.date()}-ensemble-[0-9a-f]{{12}}\.pkl", stored)
    # the metadata names the stored selection with its size and hash
    info = ArtifactStore(tmp_path / "artifacts").info(SELECTIONS, stored)
    assert [m["model_selection_artifact"] for m in metas] == [info.as_metadata()] * 2
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        rows = con.execute(
            "SELECT as_of_date, count(*), min(forecast_date) > as_of_date, min(q90 - q50) >= 0 "
            "FROM supply.demand_forecast GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert [(str(r[0]), r[1], r[2], r[3]) for r in rows] == [
        (str(monday.date()), 24 * 28, True, True),
        (str(thursday.date()), 24 * 28, True, True),
    ]


def test_a_changed_history_is_selected_again_not_served_from_the_stale_selection(
    demand_shop, demand_shop_frame, tmp_path
):
    """Re-landed data (here: a day before the anchor delivered again with one more order) changes what the week's
    selection was fitted on: the next day selects again and replaces the stale selection; a day after the anchor
    does not count, so a new day's demand keeps the selection."""
    frame = demand_shop_frame[0]
    days = _shop(demand_shop, frame, tmp_path)
    anchor = selection_anchor(days[250])
    first = _materialise_full(tmp_path, anchor + pd.Timedelta(days=2))
    (before,) = _stored(tmp_path)
    # a day before the anchor delivered again, and demand on a day after it: part of the update, not of the
    # selection's history
    _more_sold_on(tmp_path, frame, [anchor - pd.Timedelta(days=10), anchor + pd.Timedelta(days=1)])
    second = _materialise_full(tmp_path, anchor + pd.Timedelta(days=3))
    (after,) = _stored(tmp_path)
    third = _materialise_full(tmp_path, anchor + pd.Timedelta(days=4))
    assert [m["model_selection_reused"] for m in (first, second, third)] == [False, False, True]
    assert {m["model_selected_on"] for m in (first, second, third)} == {str(anchor.date())}
    assert after != before and after.startswith(f"selection-{anchor.date()}-ensemble-")
    assert [len(m["warnings"]) for m in (first, second, third)] == [0, 1, 0]
    assert "changed since the week's stored model selection" in second["warnings"][0]
    histories = [m["model_selection_history"] for m in (first, second, third)]
    assert histories[0] != histories[1] == histories[2] and after.endswith(f"-{histories[1]}.pkl")
    assert _stored(tmp_path) == [after]


def test_history_fingerprint_reads_only_the_history_up_to_the_day_and_ignores_row_order(demand_shop):
    with duckdb.connect(str(demand_shop / "warehouse.duckdb"), read_only=True) as con:
        demand = demand_from_mart(con.execute("SELECT * FROM marts.fct_daily_sku_demand").df())
    day = pd.Timestamp("2025-02-10")
    assert demand["ds"].max() > day
    base = history_fingerprint(demand, day)
    shuffled = demand.sample(frac=1.0, random_state=0)[demand.columns[::-1]]
    assert history_fingerprint(shuffled, day) == base
    later = demand.copy()
    later.loc[later["ds"] > day, "y"] += 1.0
    assert history_fingerprint(later, day) == base
    earlier = demand.copy()
    earlier.loc[earlier.index[np.flatnonzero(earlier["ds"] == day)[0]], "y"] += 1.0
    assert history_fingerprint(earlier, day) != base
    assert re.fullmatch(r"[0-9a-f]{12}", base)
