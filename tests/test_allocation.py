"""Delivery allocation: the simulated store's lanes, the transport programme and the dispatch rules, on networks
small enough to work out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.sources.logistics import CAPACITY_HEADROOM
from ml.sources.simulated import SimulatedStore, build_world
from ml.supply.allocation import AllocationSettings, Network, solve
from ml.supply.fulfilment import MAX_WAIT_DAYS, Ledger, dispatch_day, ledger_metrics, parcels

SETTINGS = AllocationSettings(horizon_days=7, late_penalty_per_unit_day=2.0)


def two_by_two_lanes(capacity=(100, 100)) -> pd.DataFrame:
    """Warehouse A sits in region a, B in b. Each ships its own region next day for 3 GBP a parcel; the other
    region takes 2 days (still within the promise of 2) for 6 GBP. A pallet unit between them costs 0.1."""
    rows = []
    for w, site in (("A", "a"), ("B", "b")):
        for region in ("a", "b"):
            home = region == site
            rows.append(
                {
                    "warehouse_id": w,
                    "region": region,
                    "site_region": site,
                    "daily_capacity_units": capacity[0 if w == "A" else 1],
                    "delivery_days": 1 if home else 2,
                    "promise_days": 2,
                    "cost_per_order": 3.0 if home else 6.0,
                    "cost_per_unit": 0.1,
                    "bulk_cost_per_unit": 0.1,
                }
            )
    return pd.DataFrame(rows)


def two_by_two(capacity=(100, 100)) -> Network:
    return Network.from_lanes(two_by_two_lanes(capacity))


def lines(*specs) -> pd.DataFrame:
    """(order_id, sku, region, home, qty) tuples as dispatch lines of day 0, in the order given."""
    return pd.DataFrame(
        [
            {"order_id": o, "order_day": 0, "ts": i, "sku_i": s, "region_i": r, "home_i": h, "qty": q}
            for i, (o, s, r, h, q) in enumerate(specs)
        ]
    )


def test_the_simulated_store_lands_its_warehouses_and_lanes_on_the_first_day_only():
    store, world = SimulatedStore("small", 42), build_world("small", 42)
    first = store.day_tables(store.start_date, ["warehouses", "shipping_lanes"])
    later = store.day_tables(pd.Timestamp("2025-01-02").date(), ["warehouses", "shipping_lanes"])
    warehouses, lanes = first["warehouses"].to_pandas(), first["shipping_lanes"].to_pandas()
    assert later["warehouses"].num_rows == 0 and later["shipping_lanes"].num_rows == 0
    assert list(warehouses["warehouse_id"]) == ["WH01", "WH02", "WH03"]
    # a warehouse sits in the busiest region it serves; capacity is the headroom over an ordinary day
    assert list(warehouses["site_region"]) == ["london", "north", "ireland"]
    expected = np.ceil(CAPACITY_HEADROOM * world.expected_demand.sum(axis=0))
    assert list(warehouses["daily_capacity_units"]) == list(expected.astype(int))
    lane = lanes.set_index(["warehouse_id", "region"])
    assert len(lane) == 3 * 8
    # a warehouse's own region: next day at the base parcel price; London to Dublin: 565 road km and the sea
    assert lane.loc[("WH01", "london"), ["delivery_days", "cost_per_order"]].tolist() == [1, 3.2]
    assert lane.loc[("WH01", "ireland"), ["road_km", "delivery_days", "promise_days"]].tolist() == [
        564.9,
        3,
        3,
    ]
    assert lane.loc[("WH03", "scotland"), "delivery_days"] > lane.loc[("WH03", "scotland"), "promise_days"]


def test_the_network_ranks_lanes_and_refuses_a_missing_one():
    network = two_by_two()
    assert network.nearest().tolist() == [[0, 1], [1, 0]]
    cost, days = network.transfer_lanes()
    assert np.isinf(cost[0, 0]) and cost[0, 1] == 0.1 and days[0, 1] == 2
    lanes = two_by_two_lanes()
    partial = lanes[lanes["region"] == lanes["site_region"]]  # each warehouse's own region only
    with pytest.raises(ValueError, match="lanes missing for 2"):
        Network.from_lanes(partial)
    with pytest.raises(ValueError, match="no shipping lanes"):
        Network.from_lanes(partial.iloc[:0])


def test_a_full_warehouse_hands_its_orders_to_one_with_room_instead_of_letting_them_wait():
    network = two_by_two(capacity=(5, 100))
    stock = np.array([[20.0, 20.0]])
    open_orders = np.array([[8.0, 0.0]])  # region a wants 8, its warehouse can dispatch 5
    solution = solve(network, stock, open_orders, np.zeros((1, 2)), np.array([10.0]), SETTINGS, 1.0)
    shipped = solution.shipments.set_index("warehouse_id")["units"]
    assert shipped["A"] == pytest.approx(5) and shipped["B"] == pytest.approx(3)
    assert solution.unserved.empty
    # the nearest rule sends the same lines to A, which is full after five: three wait for tomorrow
    todo = lines(*[(f"o{i}", 0, 0, 0, 1) for i in range(8)])
    results = {}
    for rule in ("nearest", "optimised"):
        ledger = Ledger(stock=stock.copy())
        dispatch_day(rule, 0, todo, ledger, network, np.zeros((1, 2)), np.array([10.0]), SETTINGS, 1.0)
        results[rule] = ledger_metrics(ledger, network, 8)
    assert results["nearest"]["units_dispatched"] == 5 and results["nearest"]["units_waiting_at_end"] == 3
    assert results["optimised"]["units_dispatched"] == 8 and results["optimised"]["on_time_orders"] == 1.0
    assert results["optimised"]["cost_per_order"] == pytest.approx((5 * 3.1 + 3 * 6.1) / 8)


def test_stock_moves_to_where_the_forecast_is_when_a_pallet_is_cheaper_than_far_parcels():
    network = two_by_two()
    stock = np.array([[0.0, 30.0]])  # all of it at B
    forecast = np.array([[12.0, 5.0]])  # region a will want 12 over the horizon, b only 5
    solution = solve(network, stock, np.zeros((1, 2)), forecast, np.array([10.0]), SETTINGS, 1.0)
    moves = solution.transfers
    assert moves[["from_warehouse_id", "to_warehouse_id"]].values.tolist() == [["B", "A"]]
    assert moves["units"].tolist() == [12] and moves["cost"].tolist() == pytest.approx([1.2])
    assert moves["arrives_in_days"].tolist() == [2]
    # with the horizon shorter than the trip, nothing may move: the forecast ships from B as parcels
    short = solve(
        network, stock, np.zeros((1, 2)), forecast, np.array([10.0]), AllocationSettings(horizon_days=2), 1.0
    )
    assert short.transfers.empty


def test_a_paid_order_comes_before_a_forecast_and_what_cannot_ship_is_reported():
    network = two_by_two()
    stock = np.array([[1.0, 0.0], [0.0, 0.0]])
    open_orders = np.array([[0.0, 1.0], [2.0, 0.0]])  # SKU 0: one unit for b; SKU 1: none in stock anywhere
    forecast = np.array([[6.0, 0.0], [0.0, 0.0]])  # SKU 0: a's forecast would like that unit too
    solution = solve(
        network, stock, open_orders, forecast, np.array([50.0, 10.0]), SETTINGS, 1.0, skus=["S0", "S1"]
    )
    now = solution.shipments[solution.shipments["demand"] == "open_orders"]
    assert now[["sku", "warehouse_id", "region"]].values.tolist() == [["S0", "A", "b"]]
    assert solution.unserved[["sku", "region", "units"]].values.tolist() == [["S1", "a", 2.0]]


def _random_day(n_sku: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    stock = rng.integers(0, 6, size=(n_sku, 2)).astype(float)
    open_orders = rng.integers(0, 3, size=(n_sku, 2)).astype(float)
    forecast = rng.integers(0, 8, size=(n_sku, 2)).astype(float)
    price = rng.uniform(5, 50, size=n_sku)
    return stock, open_orders, forecast, price


def test_a_programme_over_the_variable_limit_is_solved_in_sku_blocks_with_the_same_plan_when_capacity_is_ample(
    monkeypatch,
):
    import ml.supply.allocation as allocation

    network = two_by_two(capacity=(10_000, 10_000))
    day = _random_day(60)
    skus = [f"S{i}" for i in range(60)]
    whole = solve(network, *day, SETTINGS, 1.0, skus=skus)
    assert whole.blocks == 1
    monkeypatch.setattr(allocation, "MAX_LP_VARIABLES", whole.size[0] // 3)
    split = solve(network, *day, SETTINGS, 1.0, skus=skus)
    assert split.blocks >= 3
    assert split.objective == pytest.approx(whole.objective, rel=1e-9)
    # every SKU ships and leaves unserved the same units, wherever the blocks split the catalogue
    for frame in ("shipments", "unserved"):
        a = getattr(whole, frame).groupby("sku")["units"].sum()
        b = getattr(split, frame).groupby("sku")["units"].sum()
        pd.testing.assert_series_equal(a.sort_index(), b.sort_index(), check_exact=False)


def test_blocks_share_a_binding_capacity_and_never_exceed_it(monkeypatch):
    import ml.supply.allocation as allocation

    network = two_by_two(capacity=(15, 15))
    day = _random_day(60, seed=5)
    skus = [f"S{i}" for i in range(60)]
    whole = solve(network, *day, SETTINGS, 1.0, skus=skus)
    monkeypatch.setattr(allocation, "MAX_LP_VARIABLES", whole.size[0] // 4)
    split = solve(network, *day, SETTINGS, 1.0, skus=skus)
    assert split.blocks >= 4
    for solution in (whole, split):
        ships = solution.shipments
        today = ships[ships["demand"] == "open_orders"].groupby("warehouse_id")["units"].sum()
        later = ships[ships["demand"] == "forecast"].groupby("warehouse_id")["units"].sum()
        assert (today <= 15 + 1e-6).all() and (later <= 15 * SETTINGS.horizon_days + 1e-6).all()
    # a block cannot borrow another's unused share: the split plan costs at least the whole programme's
    assert split.objective >= whole.objective - 1e-6


def test_the_rules_differ_only_where_they_should_and_parcels_are_priced_by_hand():
    network = two_by_two()
    # SKU 0 is out at a's home warehouse; order o1 has two lines of SKU 1 (one parcel)
    stock = np.array([[0.0, 4.0], [5.0, 5.0]])
    todo = lines(("o0", 0, 0, 0, 2), ("o1", 1, 0, 0, 1), ("o1", 1, 0, 0, 2))
    home, nearest = Ledger(stock=stock.copy()), Ledger(stock=stock.copy())
    dispatch_day("home", 0, todo, home, network)
    dispatch_day("nearest", 0, todo, nearest, network)
    assert ledger_metrics(home, network, 5)["units_lost"] == 2  # the home rule has no second warehouse
    sent = pd.concat(nearest.dispatched)
    assert sent["warehouse_i"].tolist() == [1, 0, 0]
    box = parcels(sent, network).set_index("order_id")
    assert box.loc["o0", "cost"] == pytest.approx(6.0 + 2 * 0.1) and bool(box.loc["o0", "on_time"])
    assert box.loc["o1", "units"] == 3 and box.loc["o1", "cost"] == pytest.approx(3.0 + 3 * 0.1)


def test_a_line_waits_for_room_and_is_lost_after_the_longest_wait():
    network = two_by_two(capacity=(1, 1))
    ledger = Ledger(stock=np.array([[10.0, 0.0]]))
    todo = lines(("o0", 0, 0, 0, 1), ("o1", 0, 0, 0, 1))
    dispatch_day("nearest", 0, todo, ledger, network)
    assert len(ledger.waiting) == 1
    late = parcels(pd.concat([ledger.dispatched[0]]), network)
    assert late["on_time"].all()
    dispatch_day("nearest", 1, todo.iloc[:0], ledger, network)  # the waiting line goes out a day late
    tomorrow = parcels(ledger.dispatched[1], network)
    assert tomorrow["on_time"].tolist() == [True]  # 1 day waited + 1 day on the lane = the promise of 2
    stuck = Ledger(stock=np.array([[10.0, 0.0]]))
    stuck.waiting = lines(("old", 0, 0, 0, 5)).assign(order_day=-MAX_WAIT_DAYS)
    dispatch_day("nearest", 0, todo.iloc[:0], stuck, network)
    assert stuck.waiting.empty and ledger_metrics(stuck, network, 5)["units_lost"] == 5


def test_bench_allocation_takes_a_warehouse_or_a_scale_and_times_a_synthetic_day():
    from bench.allocation import parse_args, solve_time

    for argv in (
        ["--out", "x.json"],
        ["--out", "x.json", "--warehouse", "w.duckdb", "--solve-time", "small"],
    ):
        with pytest.raises(SystemExit):
            parse_args(argv)
    day = solve_time("small", SETTINGS)
    assert (day["skus"], day["warehouses"], day["regions"]) == (500, 3, 8)
    # every SKU has a forecast in every region: that block alone is SKUs x regions x warehouses variables
    assert day["variables"] > 500 * 8 * 3 and day["constraints"] > 2 * 500 * 3
    assert 0 <= day["open_units_unserved"] < day["open_order_units"]
    assert day == {**solve_time("small", SETTINGS), "seconds": day["seconds"]}  # seeded: the same programme
