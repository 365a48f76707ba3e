"""What bench.loop changes in the exports the shop reads, per policy and plan setting (the benchmark itself is
not a test: python -m bench.loop)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from bench.loop import (
    configurations,
    orders_placed,
    parse_args,
    plan_against_naive,
    shape_exports,
    stock_summary,
    world_name,
    world_run_config,
)
from ml.exports import export_file, read_export, write_export
from ml.recommend.experiment import arms
from ml.shop.lists import oracle_lists
from ml.sources.simulated import SimulatedStore

DAY = date(2025, 1, 5)


@pytest.fixture(scope="module")
def world():
    return SimulatedStore("small", 42).world


def published(root, world) -> pd.DataFrame:
    """A popularity-like export for 40 customers (the same three SKUs for all), both arms."""
    customers = world.customer_ids[:40]
    lists = pd.DataFrame(
        {
            "target_date": date(2025, 1, 6),
            "customer_id": np.repeat(customers, 3),
            "rank": np.tile([1, 2, 3], len(customers)),
            "sku": np.tile(world.skus[:3], len(customers)),
            "model_version": "popularity-2025-01-05-00000000",
            "arm": np.repeat(arms(customers), 3),
        }
    )
    write_export(lists, root, "recommendations", DAY)
    write_export(
        pd.DataFrame({"sku": world.skus[:2], "order_qty": [5.0, 0.0]}), root, "replenishment_plan", DAY
    )
    return lists


def test_oracle_replaces_the_treatment_lists_only(tmp_path, world):
    before = published(tmp_path, world)
    shape_exports("oracle", "on", tmp_path, DAY, world, top_k=3)
    after = read_export(tmp_path, "recommendations", DAY)
    control = before[before["arm"] == "control"]
    kept = after[after["arm"] == "control"]
    assert len(control) > 0 and kept[control.columns].reset_index(drop=True).equals(
        control.reset_index(drop=True)
    )
    treated = after[after["arm"] == "treatment"]
    assert set(treated["customer_id"]) == set(before.loc[before["arm"] == "treatment", "customer_id"])
    positions = pd.Index(world.customer_ids).get_indexer(treated["customer_id"].unique())
    truth = oracle_lists(world, positions, date(2025, 1, 6), k=3)
    assert list(treated["sku"]) == list(truth["sku"])
    assert treated["list_id"].notna().all() and export_file(tmp_path, "replenishment_plan", DAY).exists()


def test_no_lists_and_no_plan_remove_what_the_shop_would_read(tmp_path, world):
    published(tmp_path, world)
    shape_exports("none", "off", tmp_path, DAY, world, top_k=3)
    assert read_export(tmp_path, "recommendations", DAY) is None
    assert read_export(tmp_path, "replenishment_plan", DAY) is None
    published(tmp_path, world)
    shape_exports("champion", "on", tmp_path, DAY, world, top_k=3)
    assert len(read_export(tmp_path, "recommendations", DAY)) == 120


def test_plan_off_runs_only_for_the_named_policies():
    args = parse_args(["--out", "x.json", "--plan", "on,off", "--plan-off-policies", "champion"])
    assert configurations(args) == [
        ("none", "on"),
        ("popularity", "on"),
        ("champion", "on"),
        ("oracle", "on"),
        ("champion", "off"),
    ]
    with pytest.raises(SystemExit):
        parse_args(["--out", "x.json", "--policies", "bandit"])


def test_message_worlds_keep_the_lists_and_none_withholds_the_messages(tmp_path, world):
    args = parse_args(["--out", "x.json", "--message-policies", "learnt,none", "--fixed-arm", "urgent/low"])
    assert configurations(args) == [("messages-learnt", "on"), ("messages-none", "on")]
    with pytest.raises(SystemExit):
        parse_args(["--out", "x.json", "--message-policies", "greedy"])
    with pytest.raises(SystemExit):
        parse_args(["--out", "x.json", "--message-policies", "fixed", "--fixed-arm", "loud/high"])
    published(tmp_path, world)
    write_export(pd.DataFrame({"message_id": ["m1"], "customer_id": ["c1"]}), tmp_path, "messages", DAY)
    shape_exports("messages-learnt", "on", tmp_path, DAY, world, top_k=3)
    assert len(read_export(tmp_path, "recommendations", DAY)) == 120
    assert read_export(tmp_path, "messages", DAY) is not None
    shape_exports("messages-none", "on", tmp_path, DAY, world, top_k=3)
    assert read_export(tmp_path, "messages", DAY) is None
    assert len(read_export(tmp_path, "recommendations", DAY)) == 120


def test_regret_is_against_the_best_fixed_arm_in_hindsight():
    from bench.loop import message_report

    days = [
        {
            "send_day": "2025-01-02",
            "messages": 10,
            "policy": 4.0,
            "oracle": 10.0,
            "fixed": {"a": 6.0, "b": 5.0},
        },
        {
            "send_day": "2025-01-03",
            "messages": 10,
            "policy": 7.0,
            "oracle": 10.0,
            "fixed": {"a": 6.0, "b": 8.0},
        },
    ]
    report = message_report(days, withheld=False)
    assert report["best_fixed_arm_in_hindsight"] == "b"  # 13 against 12 over both days
    assert report["cumulative_regret_vs_best_fixed"] == [1.0, 2.0]
    assert report["share_of_oracle"] == pytest.approx(11 / 20)
    assert report["share_of_oracle_by_day"] == [0.4, 0.7]
    withheld = message_report(days, withheld=True)
    assert withheld["share_of_oracle"] == 0 and withheld["cumulative_regret_vs_best_fixed"] == [5.0, 13.0]


def test_stock_summary_counts_units_and_prices_them():
    """Two SKUs over two days (one day outside the window): lost sales and stock in units and at list price."""
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.execute(
        "CREATE TABLE marts.fct_inventory_daily AS SELECT * FROM (VALUES "
        "(DATE '2025-01-02', 'cheap', 'WH1', 10, 4, 2, 6), (DATE '2025-01-02', 'dear', 'WH1', 0, 0, 3, 1), "
        "(DATE '2025-01-03', 'cheap', 'WH1', 6, 0, 0, 4), (DATE '2025-01-03', 'dear', 'WH1', 2, 5, 0, 2), "
        "(DATE '2025-01-04', 'dear', 'WH1', 0, 0, 99, 0)) "
        "AS t(snapshot_date, sku, warehouse_id, on_hand, on_order, units_lost, units_sold)"
    )
    con.execute(
        "CREATE TABLE marts.dim_products AS SELECT * FROM (VALUES ('cheap', 1.0), ('dear', 10.0)) AS t(sku, price)"
    )
    out = stock_summary(con, date(2025, 1, 2), date(2025, 1, 3))
    assert out["stockout_pair_days"] == 1 and out["lost_units"] == 5 and out["units_sold"] == 13
    assert out["avg_on_hand"] == pytest.approx((10 + 0 + 6 + 2) / 2) and out["avg_on_order"] == pytest.approx(
        4.5
    )
    assert out["lost_share_of_demand"] == pytest.approx(5 / 18)
    # priced: the dear SKU's 3 lost units weigh 30 against the cheap one's 2
    assert out["lost_value"] == pytest.approx(2 * 1.0 + 3 * 10.0)
    assert out["sold_value"] == pytest.approx(10 * 1.0 + 3 * 10.0)
    assert out["lost_share_of_demand_value"] == pytest.approx(32 / 72)
    assert out["avg_on_hand_value"] == pytest.approx((10 + 6 + 20) / 2)


def test_orders_placed_are_read_from_the_shops_daily_records(tmp_path):
    """Day offsets 3, 4, 5: an order due on day 4 arrives; two orders are placed on day 4, one on day 5."""
    from ml.shop.front import ShopState

    def save(day: str, rows: list[tuple[int, int, int, int]]) -> None:
        pipeline = pd.DataFrame(rows, columns=["product", "warehouse", "arrival_t", "qty"])
        ShopState(np.zeros((2, 1), dtype=np.int64), pipeline).save(tmp_path / f"date={day}" / "stock.npz")

    save("2025-01-04", [(0, 0, 4, 10), (1, 0, 9, 6)])
    save("2025-01-05", [(1, 0, 9, 6), (0, 0, 8, 12), (1, 0, 11, 5)])
    save("2025-01-06", [(1, 0, 9, 6), (0, 0, 8, 12), (1, 0, 11, 5), (0, 0, 12, 7)])
    assert orders_placed(tmp_path, date(2025, 1, 5), date(2025, 1, 6), None) == {
        "orders_placed": 3,
        "units_ordered": 24,
    }
    assert orders_placed(tmp_path, date(2025, 1, 6), date(2025, 1, 6), None) == {
        "orders_placed": 1,
        "units_ordered": 7,
    }


def _world(lost_share, on_hand, value, orders=3):
    return {
        "stock": {
            "lost_share_of_demand": lost_share,
            "avg_on_hand": on_hand,
            "avg_on_hand_value": value,
            "lost_units": 1.0,
            "orders_placed": orders,
        }
    }


def test_the_plan_is_judged_against_the_naive_cover_at_its_own_fill_rate():
    worlds = {
        "champion/plan-on": _world(0.09, 790.0, 4500.0),  # fill 0.91
        "champion/plan-naive@cover0": _world(0.15, 800.0, 4000.0, orders=5),  # fill 0.85
        "champion/plan-naive@cover14": _world(0.05, 1200.0, 6000.0),  # fill 0.95
        "champion/plan-off": _world(0.10, 1000.0, 5000.0),  # the shop's own rule, fill 0.90
        "champion/plan-on+cycle1": _world(0.16, 500.0, 2000.0),  # fills worse than every naive world
        "oracle/plan-on": _world(0.01, 10.0, 10.0),  # no baseline world of its own
    }
    found = plan_against_naive(worlds)
    assert set(found) == {"champion/plan-on", "champion/plan-on+cycle1"}
    on = found["champion/plan-on"]
    # 0.91 lies 60% of the way from the naive fill 0.85 to 0.95: 800 + 0.6 * 400 = 1040 units, 4000 + 1200 GBP
    matched = on["naive_cover_at_plan_fill"]
    assert matched["avg_on_hand"] == pytest.approx(1040.0) and matched["avg_on_hand_value"] == pytest.approx(
        5200.0
    )
    assert matched["stock_reduction"] == pytest.approx(1 - 790 / 1040) and matched["target_met"]
    assert matched["how"].startswith("interpolated") and on["target_met"]
    # world by world: 1% less than cover 0 (a worse fill), 34% less than cover 14 (at a better fill than the plan's)
    assert on["naive_cover"]["naive@cover0"]["stock_reduction"] == pytest.approx(1 - 790 / 800)
    assert not on["naive_cover"]["naive@cover0"]["target_met"]
    assert not on["naive_cover"]["naive@cover14"]["target_met"]  # fills better than the plan
    assert on["naive_cover"]["naive@cover0"]["orders_placed"] == 5 and on["plan"][
        "fill_rate"
    ] == pytest.approx(0.91)
    # the shop's own rule: 21% less stock at a better fill
    assert on["shop_rule"]["stock_reduction"] == pytest.approx(0.21) and on["shop_rule"]["target_met"]
    assert on["shop_rule"]["stock_value_reduction"] == pytest.approx(0.1)
    worse = found["champion/plan-on+cycle1"]
    assert worse["naive_cover_at_plan_fill"] == {
        "how": "below every naive world's fill rate",
        "target_met": False,
    }
    assert not worse["target_met"]


def test_above_every_naive_fill_the_best_filling_naive_world_is_the_bound():
    worlds = {
        "champion/plan-on": _world(0.02, 900.0, 4000.0),  # fill 0.98
        "champion/plan-naive@cover7": _world(0.10, 1000.0, 5000.0),
        "champion/plan-naive@cover28": _world(0.05, 1200.0, 6000.0),  # fill 0.95, the bound
    }
    matched = plan_against_naive(worlds)["champion/plan-on"]["naive_cover_at_plan_fill"]
    assert matched["how"].startswith("above") and matched["avg_on_hand"] == 1200.0
    assert matched["stock_reduction"] == pytest.approx(0.25) and matched["target_met"]


def test_naive_worlds_publish_the_naive_cover_policy_with_the_plans_order_cycle():
    args = parse_args(
        ["--out", "x.json", "--policies", "champion", "--plan", "on,naive,off", "--naive-cover-days", "0,7.5"]
        + ["--plan-order-cycle-days", "3", "--plan-service-level", "0.9"]
    )
    assert configurations(args) == [
        ("champion", "on"),
        ("champion", "naive@cover0"),
        ("champion", "naive@cover7.5"),
        ("champion", "off"),
    ]
    names = [world_name(policy, plan, args) for policy, plan in configurations(args)]
    assert names == [
        "champion/plan-on@0.9+cycle3",
        "champion/plan-naive@cover0+cycle3",
        "champion/plan-naive@cover7.5+cycle3",
        "champion/plan-off",
    ]
    assert world_run_config("champion", "naive@cover7.5", args)["ops"]["replenishment"]["config"] == {
        "policy": "naive_cover",
        "naive_cover_days": 7.5,
        "order_cycle_days": 3,
    }
    assert world_run_config("champion", "on", args)["ops"]["replenishment"]["config"] == {
        "service_level": 0.9,
        "order_cycle_days": 3,
    }
    assert "replenishment" not in world_run_config("champion", "off", args)["ops"]
    # the names the run config gives are the replenishment asset's settings
    from ml.supply.planning import PlanSettings

    settings = PlanSettings(
        **world_run_config("champion", "naive@cover7.5", args)["ops"]["replenishment"]["config"]
    )
    assert (settings.policy, settings.naive_cover_days, settings.order_cycle_days) == ("naive_cover", 7.5, 3)
    for bad in (["--naive-cover-days", "-1"], ["--naive-cover-days", "x"], ["--jobs", "0"]):
        with pytest.raises(SystemExit):
            parse_args(["--out", "x.json", "--plan", "naive", *bad])


def test_the_first_closed_loop_day_counts_from_the_open_loop_stock(tmp_path, world):
    """The store's first day keeps no record: orders placed on day 2 are counted against its open-loop pipeline."""
    from ml.shop.front import ClosedLoopStore, ShopState

    start = ClosedLoopStore.initial_state(world, 0)
    assert len(start.pipeline) > 0
    open_after = start.pipeline[start.pipeline["arrival_t"] > 1]
    new = pd.DataFrame({"product": [0, 1], "warehouse": [0, 0], "arrival_t": [9, 9], "qty": [4, 6]})
    ShopState(start.on_hand, pd.concat([open_after, new], ignore_index=True)).save(
        tmp_path / "date=2025-01-02" / "stock.npz"
    )
    assert orders_placed(tmp_path, date(2025, 1, 2), date(2025, 1, 2), world) == {
        "orders_placed": 2,
        "units_ordered": 10,
    }


def test_bench_inventory_closed_loop_runs_the_plan_and_the_naive_world_and_keeps_the_comparison(
    tmp_path, monkeypatch
):
    """The plumbing only (the two real worlds are a benchmark run: `python -m bench.inventory --closed-loop`): the
    loop benchmark is asked for the champion's plan-on and plan-off worlds with the plan's settings, and its
    comparison is carried to the top of the report."""
    import json

    import bench.loop
    from bench.inventory import main as inventory

    asked = []

    def fake_loop(argv):
        asked.append(argv)
        args = parse_args(argv)
        baseline = {
            "fill_rate": 0.88,
            "orders_placed": 12,
            "stock_reduction": 0.25,
            "stock_value_reduction": 0.2,
        }
        row = {
            "target_met": True,
            "plan": {"fill_rate": 0.9, "orders_placed": 10, "avg_on_hand": 100.0},
            "naive_cover": {"naive@cover7": baseline},
            "naive_cover_at_plan_fill": {"how": "interpolated", "stock_reduction": 0.3, "target_met": True},
            "shop_rule": baseline,
        }
        report = {"findings": {"plan_against_naive_cover": {"champion/plan-on+cycle1": row}}}
        args.out.write_text(json.dumps(report))
        return 0

    monkeypatch.setattr(bench.loop, "main", fake_loop)
    out = tmp_path / "inventory.json"
    report = inventory(
        ["--closed-loop", "--days", "9", "--seed", "7", "--plan-order-cycle-days", "1", "--out", str(out)]
        + ["--naive-cover-days", "0,14", "--jobs", "2"]
    )
    args = parse_args(asked[0])
    assert (args.days, args.seed, args.policies, args.plan, args.plan_order_cycle_days, args.jobs) == (
        9,
        7,
        ["champion"],
        ["on", "naive", "off"],
        1,
        2,
    )
    assert configurations(args) == [
        ("champion", "on"),
        ("champion", "naive@cover0"),
        ("champion", "naive@cover14"),
        ("champion", "off"),
    ]
    saved = json.loads(out.read_text())
    assert saved["plan_against_naive_cover"]["champion/plan-on+cycle1"]["target_met"] is True
    inventory(["--closed-loop", "--no-shop-rule", "--out", str(out)])
    assert parse_args(asked[1]).plan == ["on", "naive"]
    assert report["command"].startswith("python -m bench.inventory")
