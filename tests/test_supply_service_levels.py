"""The supply assets on a shop selling known demand: service levels per demand class, tuning on stored forecasts,
and the plan written next to a plan table without one of its columns (a column added to an asset lands beside the
days written before it).

Real Dagster materialisations against a copy of the session's demand shop (260 days of 24 SKUs landed, loaded and
modelled by a real dbt build, tests/warehouses.py).
"""

import datetime as dt
import itertools
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.forecast.classify import classify_panel
from ml.forecast.panel import to_panel
from orchestration.defs.supply.assets import demand_forecast, replenishment
from orchestration.resources import DataFilesResource, WarehouseResource
from tests.warehouses import copy_shop, demand_line, demand_order, demand_shop_days, reland

LEVELS = {"intermittent": 0.8, "lumpy": 0.8}


def _shop(demand_shop: Path, frame, folder: Path, one_big_sale: str | None = None):
    """A copy of the demand shop; ``one_big_sale``: None, ``"undone"`` (customer C1 buys 5,000 more units of the
    first SKU 10 days before the last day and returns them the same day) or ``"kept"`` (the same sale, not
    returned): that day delivered again with those orders. Returns (demand frame, last day, resources)."""
    df = frame.assign(ds=pd.to_datetime(frame["ds"]))
    day = df["ds"].max()
    copy_shop(demand_shop, folder)
    if one_big_sale is not None:
        big_day = (day - timedelta(days=10)).date()
        sku = df["unique_id"].min()
        price = float(df.loc[(df["unique_id"] == sku) & (df["ds"].dt.date == big_day), "price"].iloc[0])
        tables = demand_shop_days(frame)[big_day]
        at = dt.datetime.combine(big_day, dt.time(10), tzinfo=dt.UTC)
        tables["orders"].append(demand_order("BIG", at, "C1", 5000 * price))
        tables["order_items"].append(demand_line("BIG", at, sku, 5000, price))
        if one_big_sale == "undone":
            back = at + timedelta(minutes=30)
            tables["orders"].append(demand_order("BIG-R", back, "C1", -5000 * price))
            tables["order_items"].append(demand_line("BIG-R", back, sku, -5000, price))
        reland(folder, big_day, tables)
    with duckdb.connect(str(folder / "warehouse.duckdb")) as con:
        # a plan table written before the demand_class column existed
        con.execute("CREATE SCHEMA supply")
        con.execute(
            "CREATE TABLE supply.replenishment_plan AS SELECT ?::DATE AS as_of_date, ? AS sku, 1.0::DOUBLE AS order_qty",
            [(day - timedelta(days=1)).date(), df["unique_id"].min()],
        )
    resources = {
        "warehouse": WarehouseResource(path=str(folder / "warehouse.duckdb")),
        "files": DataFilesResource.under(folder),
    }
    return df, day, resources


def test_plan_gives_each_demand_class_its_own_service_level(demand_shop, demand_shop_frame, tmp_path):
    df, day, resources = _shop(demand_shop, demand_shop_frame[0], tmp_path / "shop")
    config = dg.RunConfig(
        ops={"replenishment": {"config": {"service_level": 0.95, "service_level_by_class": LEVELS}}}
    )
    result = dg.materialize(
        [demand_forecast, replenishment],
        partition_key=str(day.date()),
        resources=resources,
        run_config=config,
    )
    assert result.success
    (plan_mat,) = [
        m
        for m in result.get_asset_materialization_events()
        if m.asset_key == dg.AssetKey(["supply", "replenishment_plan"])
    ]
    summary = plan_mat.materialization.metadata["by_demand_class"].value
    with duckdb.connect(str(tmp_path / "shop" / "warehouse.duckdb")) as con:
        plan = con.execute("SELECT * FROM supply.replenishment_plan ORDER BY as_of_date, sku").df()
        alerts = con.execute("SELECT * FROM supply.stockout_alerts").df()
    # The older row is kept (new columns NULL there) and the new day sits next to it.
    old, new = plan[plan["as_of_date"] < day], plan[plan["as_of_date"] == day]
    assert len(old) == 1 and old["demand_class"].isna().all() and old["order_qty"].iloc[0] == 1.0
    assert len(new) == 24
    # Classes from the SKU's last 224 days of demand up to the day, nothing later.
    recent = df[(df["ds"] <= day) & (df["ds"] > day - timedelta(days=224))]
    expected = classify_panel(to_panel(recent)).set_index("unique_id")["demand_class"]
    got = new.set_index("sku")
    assert (got["demand_class"] == expected.reindex(got.index)).all()
    assert set(got["demand_class"]) & set(LEVELS) and set(got["demand_class"]) - set(LEVELS)
    want = got["demand_class"].map(LEVELS).fillna(0.95)
    # The UI's per-class summary: one line per class present, with its level and row count.
    for cls, n in got["demand_class"].value_counts().items():
        assert f"| {cls} | {n} | {LEVELS.get(cls, 0.95):.3f} |" in summary
    np.testing.assert_allclose(got["service_level"], want)
    # A lower level means a lower reorder point for the same forecast: the 0.8 classes hold less safety stock
    # per unit of lead-time demand than the 0.95 ones.
    ratio = got["safety_stock"] / got["lead_time_demand"].where(got["lead_time_demand"] > 0)
    low, high = ratio[want == 0.8].median(), ratio[want == 0.95].median()
    assert low < high
    # Alerts judge each row against its own level.
    flagged = got.loc[alerts["sku"]]
    assert (flagged["stockout_risk"] > 1 - flagged["service_level"]).all()
    not_flagged = got.drop(index=alerts["sku"])
    assert (not_flagged["stockout_risk"] <= 1 - not_flagged["service_level"]).all()


def test_a_sale_undone_the_same_day_changes_neither_forecast_nor_plan(
    demand_shop, demand_shop_frame, tmp_path
):
    """The supply chain plans on demand net of sales the customer undid the same day (Online Retail's 74,215-unit
    order cancelled minutes later); the same sale kept is real demand and moves that SKU's forecast and plan."""
    tables = {}
    for case in (None, "undone", "kept"):
        _, day, resources = _shop(demand_shop, demand_shop_frame[0], tmp_path / str(case), one_big_sale=case)
        path = tmp_path / str(case) / "warehouse.duckdb"
        assert dg.materialize(
            [demand_forecast, replenishment], partition_key=str(day.date()), resources=resources
        ).success
        with duckdb.connect(str(path)) as con:
            tables[case] = {
                name: con.execute(
                    f"SELECT * FROM supply.{name} WHERE as_of_date = ? ORDER BY ALL", [day.date()]
                ).df()
                for name in ("demand_forecast", "replenishment_plan")
            }
    for name in ("demand_forecast", "replenishment_plan"):
        pd.testing.assert_frame_equal(tables["undone"][name], tables[None][name])
    sku = tables[None]["replenishment_plan"]["sku"].min()
    plan = {case: t["replenishment_plan"].set_index("sku") for case, t in tables.items()}
    # Kept, the sale is one day of 5,000 units in a SKU selling a few a day: its dispersion explodes and its
    # plan changes (here the forecast drops to nothing and so does the order: the spike is read as noise).
    assert plan["kept"].loc[sku, "phi"] > 100 * plan[None].loc[sku, "phi"]
    assert plan["kept"].loc[sku, "order_qty"] != plan[None].loc[sku, "order_qty"]


def test_service_levels_are_tuned_on_the_stored_forecasts_and_used_by_the_plan(
    demand_shop, demand_shop_frame, tmp_path
):
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from orchestration.defs.supply.assets import service_levels

    df, day, resources = _shop(demand_shop, demand_shop_frame[0], tmp_path / "shop")
    first = (day - timedelta(days=14)).date()
    # Fifteen days of forecasts in one run (a backfill), then the tuning and the plan for the last day.
    forecasts = dg.materialize(
        [demand_forecast],
        resources=resources,
        tags={ASSET_PARTITION_RANGE_START_TAG: str(first), ASSET_PARTITION_RANGE_END_TAG: str(day.date())},
    )
    assert forecasts.success
    config = dg.RunConfig(
        ops={
            "supply__service_levels": {"config": {"window_days": 10}},
            "replenishment": {"config": {"use_tuned_service_levels": True}},
        }
    )
    result = dg.materialize(
        [service_levels, replenishment], partition_key=str(day.date()), resources=resources, run_config=config
    )
    assert result.success
    plan_materialised = next(
        m
        for m in result.asset_materializations_for_node("replenishment")
        if m.asset_key == dg.AssetKey(["supply", "replenishment_plan"])
    )
    assert plan_materialised.metadata["ordering_policy"].value == "forecast"
    (mat,) = result.asset_materializations_for_node("supply__service_levels")
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["window"] == f"{(day - timedelta(days=9)).date()} .. {day.date()}"
    assert meta["skus_replayed"] == 24
    assert meta["windows_replayed"] == 1  # 14 replayable days: one window of 10, no full second one
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "replay_reaches_target" and check.passed
    assert check.metadata["days_tuned"].value == 1 and check.metadata["days_missing_target"].value == 0
    assert meta["replay_fill_rate"] >= 0.95 and meta["naive_fill_rate"] >= 0.95
    assert meta["replay_avg_inventory_units"] <= meta["uniform_avg_inventory_units"]
    assert meta["inventory_vs_naive"] == pytest.approx(
        meta["replay_avg_inventory_units"] / meta["naive_avg_inventory_units"] - 1
    )
    # The per-class table in the UI: one row per tuned class, with the naive cover's stock beside ours.
    lines = meta["levels"].splitlines()
    assert "avg_stock_units" in lines[0] and "naive_avg_stock_units" in lines[0]
    assert len(lines) == 2 + meta["dagster/row_count"]
    with duckdb.connect(str(tmp_path / "shop" / "warehouse.duckdb")) as con:
        tuned = dict(con.execute("SELECT demand_class, service_level FROM supply.service_levels").fetchall())
        plan = con.execute(
            "SELECT demand_class, service_level FROM supply.replenishment_plan WHERE as_of_date = ?",
            [day.date()],
        ).df()
    assert tuned and set(plan["demand_class"]) <= set(tuned)
    exported = pd.read_parquet(tmp_path / "shop" / "exports" / "service_levels" / f"date={day.date()}")
    assert dict(zip(exported["demand_class"], exported["service_level"], strict=True)) == tuned
    assert (plan["service_level"] == plan["demand_class"].map(tuned)).all()
    # Two windows of 7 days and a 99.5% target: pooled over both, the level is lower than the one that must hold
    # on each (0.8 against 0.9 on this store).
    stored = {}
    for rule in ("every_window", "pooled"):
        run_config = {"window_days": 7, "n_windows": 2, "fill_rule": rule, "target_fill_rate": 0.995}
        result = dg.materialize(
            [service_levels],
            partition_key=str(day.date()),
            resources=resources,
            run_config=dg.RunConfig(ops={"supply__service_levels": {"config": run_config}}),
        )
        (mat,) = result.asset_materializations_for_node("supply__service_levels")
        assert mat.metadata["fill_rule"].value == rule and mat.metadata["windows_replayed"].value == 2
        # The check judges the levels by the run's rule: pooled, the newest window alone fills 0.994 < 0.995,
        # yet both windows' units together reach the target, so the day is not a miss.
        (check,) = result.get_asset_check_evaluations()
        assert check.passed
        newest_fill = mat.metadata["replay_fill_rate"].value
        assert newest_fill < 0.995 if rule == "pooled" else newest_fill >= 0.995
        with duckdb.connect(str(tmp_path / "shop" / "warehouse.duckdb")) as con:
            stored[rule] = dict(
                con.execute("SELECT demand_class, uniform_level FROM supply.service_levels").fetchall()
            )
    assert set(stored["pooled"]) == set(stored["every_window"])
    assert all(stored["pooled"][c] < stored["every_window"][c] for c in stored["pooled"])


def test_levels_set_a_window_ago_are_replayed_over_the_days_since(demand_shop, demand_shop_frame, tmp_path):
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from ml.forecast.marts import demand_classes
    from ml.inventory.tuning import ForwardReplay
    from orchestration.defs.supply.assets import service_levels

    df, day, resources = _shop(demand_shop, demand_shop_frame[0], tmp_path / "shop")

    def backfill(assets, first, last, run_config=None):
        result = dg.materialize(
            assets,
            resources=resources,
            run_config=run_config,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: str(first.date()),
                ASSET_PARTITION_RANGE_END_TAG: str(last.date()),
            },
        )
        assert result.success
        return result

    backfill([demand_forecast], day - timedelta(days=19), day)
    config = dg.RunConfig(ops={"supply__service_levels": {"config": {"window_days": 7, "n_windows": 1}}})
    # Tune the last 8 days in one run: the levels of day - 7 are then replayed over the 7 days up to the last day.
    result = backfill([service_levels], day - timedelta(days=7), day, config)
    mat = result.asset_materializations_for_node("supply__service_levels")[-1]
    assert mat.partition == str(day.date())
    meta = {k: v.value for k, v in mat.metadata.items()}
    set_on = day - timedelta(days=7)
    assert meta["realised_levels_set_on"] == str(set_on.date())
    # The same replay by hand: the levels stored for day - 7, the classes of that day, the days after it.
    with duckdb.connect(str(tmp_path / "shop" / "warehouse.duckdb")) as con:
        stored = con.execute(
            "SELECT demand_class, service_level, naive_cover_days FROM supply.service_levels WHERE as_of_date = ?",
            [set_on.date()],
        ).df()
        forecasts = con.execute("SELECT * FROM supply.demand_forecast").df()
        mart = con.execute("SELECT * FROM marts.fct_daily_sku_demand").df()
        products = con.execute("SELECT * FROM marts.dim_products").df()
    dates = pd.to_datetime(mart["demand_date"])
    forward = ForwardReplay(forecasts, mart, products)
    classes = demand_classes(mart[(dates <= set_on) & (dates > set_on - timedelta(days=224))])
    window = forward.window(set_on, 7, classes)
    expected = forward.run(window, dict(zip(stored["demand_class"], stored["service_level"], strict=True)))
    assert meta["realised_fill_rate"] == pytest.approx(expected.fill_rate)
    assert meta["realised_avg_inventory_units"] == pytest.approx(expected.avg_inventory_units)
    assert meta["realised_target_met"] == (expected.fill_rate >= 0.95)
    # The naive cover tuned that day (260 days of history: there is one) is stored and replayed the same way.
    (cover,) = stored["naive_cover_days"].unique()
    assert pd.notna(cover) and cover >= 0
    naive = forward.run_naive(window, cover)
    assert meta["realised_naive_fill_rate"] == pytest.approx(naive.fill_rate)
    assert meta["realised_naive_avg_inventory_units"] == pytest.approx(naive.avg_inventory_units)
    assert meta["realised_inventory_vs_naive"] == pytest.approx(
        expected.avg_inventory_units / naive.avg_inventory_units - 1
    )
    # Only the last day has levels set 7 trading days before it within this run's tuned days.
    (check,) = result.get_asset_check_evaluations()
    assert check.metadata["days_tuned"].value == 8 and check.metadata["days_realised"].value == 1
    assert check.metadata["days_realised_below_target"].value == int(expected.fill_rate < 0.95)


def test_the_forecasts_kept_between_days_are_the_rows_a_fresh_read_gives():
    """One run tuning consecutive days reads each day's new forecasts only (``StoredForecasts``); whatever the
    moves of the window, the kept rows must be exactly those of the range, as a fresh read gives them."""
    from ml.supply.forecasting import FORECASTS
    from ml.supply.service_levels import StoredForecasts

    made = pd.date_range("2025-03-01", "2025-03-20").date
    rows = pd.DataFrame(
        [
            (d, f"S{s}", h, float(i), 2.0 * i)
            for i, (d, s, h) in enumerate(itertools.product(made, range(3), (1, 2)))
        ],
        columns=["as_of_date", "sku", "horizon_day", "mean", "q90"],
    )
    con = duckdb.connect()
    con.execute("CREATE SCHEMA supply")
    con.register("rows_frame", rows)
    con.execute(f"CREATE TABLE {FORECASTS} AS SELECT * FROM rows_frame")
    kept = StoredForecasts(con)
    key = ["as_of_date", "sku", "horizon_day"]
    day = pd.Timestamp("2025-03-01").date()
    # forward by one day, by several, the same range again, then back (read afresh)
    for first, last in ((0, 5), (1, 6), (4, 12), (4, 12), (2, 8), (10, 19)):
        got = kept.between(day + timedelta(days=first), day + timedelta(days=last))
        fresh = StoredForecasts(con).between(day + timedelta(days=first), day + timedelta(days=last))
        assert len(got) == (last - first + 1) * 6
        pd.testing.assert_frame_equal(
            got.sort_values(key, ignore_index=True), fresh.sort_values(key, ignore_index=True)
        )
