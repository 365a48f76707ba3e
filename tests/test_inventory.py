"""Replenishment arithmetic (textbook worked examples), supplier choice, the replay, and the bench end to end."""

import datetime as dt
import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ml.forecast.quantiles import nb1_quantile
from ml.inventory.policy import (
    Supplier,
    choose_supplier,
    implied_dispersion,
    interval_sum,
    plan,
    plan_by_class,
    plan_from_marts,
    reorder_point_normal,
    replenishment_plan,
    safety_stock_normal,
    stockout_alerts,
    warehouse_shares,
)
from ml.inventory.simulate import replay
from ml.supply.planning import plan_summary


def test_textbook_safety_stock_and_reorder_point():
    # Worked example: 20 units/day, sd 5/day, lead time 9 days, 95% cycle service level.
    z = 1.6448536
    assert safety_stock_normal(0.95, 5.0, 9) == pytest.approx(z * 5 * 3, rel=1e-6)  # 24.67
    assert reorder_point_normal(0.95, 20.0, 5.0, 9) == pytest.approx(180 + z * 15, rel=1e-6)  # 204.67


def test_plan_by_hand_with_poisson_demand():
    # 2 units/day, Poisson (phi = 1), lead time 3, daily review: protection interval 4 days, mean 8.
    mean = np.full((2, 28), 2.0)
    phi = np.ones(2)
    out = plan(mean, phi, lead_time=3, position=np.array([10.0, 14.0]), service_level=0.95, order_cycle=6)
    s = stats.poisson.ppf(0.95, 8)  # 13
    assert out["reorder_point"] == pytest.approx([s, s])
    assert out["safety_stock"] == pytest.approx([s - 8, s - 8])
    assert out["order_up_to"] == pytest.approx([s + 12, s + 12])
    assert out["order_qty"] == pytest.approx([s + 12 - 10, 0.0])  # only the position at or below s orders
    assert out["lead_time_demand"] == pytest.approx([6.0, 6.0])
    assert out["stockout_risk"] == pytest.approx(stats.poisson.sf([10, 14], 6))


def test_negative_binomial_lead_time_demand_adds_up():
    # NB1 with a common phi is closed under sums: the quantile of 4 days equals NB1(sum of means, phi).
    mean = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    assert interval_sum(mean, 1, 3)[0] == pytest.approx(9.0)
    # Past the horizon the mean of the last (up to) 6 periods repeats: here (1+2+3+4+5)/5 = 3.
    assert interval_sum(mean, 3, 4)[0] == pytest.approx(4 + 5 + 3 + 3)
    out = plan(mean, np.array([4.0]), lead_time=3, position=np.array([0.0]), service_level=0.9, order_cycle=1)
    assert out["reorder_point"][0] == nb1_quantile(np.array([10.0]), np.array([4.0]), 0.9)[0]


def test_implied_dispersion_recovers_phi():
    mean = np.full((3, 10), 4.0)
    phis = np.array([1.0, 6.0, 40.0])
    q90 = nb1_quantile(mean, phis[:, None], 0.9)
    back = implied_dispersion(mean, q90)
    assert nb1_quantile(mean, back[:, None], 0.9) == pytest.approx(q90)


def test_alternate_supplier_only_when_the_primary_cannot_prevent_a_stockout():
    mean = np.full((2, 28), 5.0)
    phi = np.ones(2)
    sups = [Supplier("primary", 7, 1.0), Supplier("express", 2, 1.3), Supplier("slow", 10, 0.9)]
    out = choose_supplier(mean, phi, np.array([15.0, 80.0]), sups, service_level=0.95)
    # SKU 0: 15 on hand covers 2 days (mean 10) but not 7 (mean 35) -> express; SKU 1: 80 covers 7 days.
    assert list(out["supplier"]) == ["express", "primary"]
    assert out.loc[0, "supplier_risk"] <= 0.05 < out.loc[0, "primary_risk"]


def test_replay_by_hand():
    demand = np.array([[3.0, 3.0, 3.0, 3.0]])

    def pol(d):
        return np.array([2.0]), np.array([6.0])

    r = replay(demand, pol, lead_time=1, initial_on_hand=np.array([5.0]), price=np.array([2.0]))
    # day0: serve 3 (2 left), order 4 -> arrives day 2; day1: serve 2, lose 1; day2: +4, serve 3 (1 left),
    # order 5; day3: serve 1, lose 2.
    assert r.fill_rate == pytest.approx(9 / 12)
    assert r.stockout_days == 2
    assert r.avg_inventory_units == pytest.approx((2 + 0 + 1 + 0) / 4)
    assert r.avg_inventory_value == pytest.approx(2 * 0.75)
    assert r.orders == 2


def test_replenishment_plan_table_and_alerts():
    fc = pd.DataFrame(
        {
            "unique_id": np.repeat(["a", "b", "c"], 10),
            "step": np.tile(np.arange(1, 11), 3),
            "mean": np.repeat([5.0, 5.0, 0.0], 10),
        }
    )
    fc["q90"] = nb1_quantile(fc["mean"].to_numpy(), 2.0, 0.9)
    stock = pd.DataFrame(
        {"unique_id": ["a", "b", "c"], "on_hand": [2.0, 200.0, 0.0], "price": [10.0, 1.0, 3.0]}
    )
    table = replenishment_plan(fc, stock, [Supplier("primary", 5), Supplier("express", 1, 1.2)], 0.95)
    a, b, c = (table.set_index("unique_id").loc[k] for k in "abc")
    assert a["order_qty"] > 0 and b["order_qty"] == 0 and c["order_qty"] == 0
    assert a["stockout_risk"] > 0.05 > b["stockout_risk"]
    assert a["revenue_at_risk"] > 0 and c["revenue_at_risk"] == 0
    alerts = stockout_alerts(table, 0.95)
    assert list(alerts["unique_id"]) == ["a"]


def test_inventory_bench_end_to_end(tmp_path):
    from bench.inventory import main
    from ml.forecast.synthetic import synthetic_store

    df, _ = synthetic_store(n_series=12, n_periods=200, season_length=7, seed=3)
    path = tmp_path / "tiny.csv"
    df[df["y"] > 0].to_csv(path, index=False)
    out = main(
        ["--data", str(path), "--out", str(tmp_path / "inv.json"), "--season-length", "7", "--model", "tsb"]
    )
    saved = json.loads((tmp_path / "inv.json").read_text())
    assert saved["n_series"] == out["n_series"] == 12
    for k in ("ours", "naive"):
        assert 0 <= saved["results"][k]["fill_rate"] <= 1
    assert saved["tuning_on_validation_window"]["naive_cover_days"] >= 0
    assert saved["assumptions"]["forecast"].startswith("refreshed every day")


def test_nearest_level_reads_the_tail_on_the_log_odds_scale():
    from ml.inventory.policy import nearest_level

    served = (0.5, 0.8, 0.9, 0.95, 0.99)
    assert nearest_level(served, 0.95) == 0.95 and nearest_level(served, 0.9999) == 0.99
    assert nearest_level(served, 0.98) == 0.99  # 0.98 is nearer 0.99 than 0.95 in log-odds (3.9 vs 2.9, 4.6)
    assert nearest_level(served, 0.97) == 0.95 and nearest_level(served, 0.6) == 0.5
    assert nearest_level((0.5, 0.9), 0.99) == 0.9
    with pytest.raises(ValueError):
        nearest_level((), 0.9)


def test_inventory_bench_level_dispersion_reads_the_served_quantiles(tmp_path):
    """--dispersion level: the forecast serves the five levels and each tuned service level plans with the
    dispersion of its nearest one; the run reports the mode and reaches the same outputs as the default."""
    from bench.inventory import main
    from ml.forecast.synthetic import synthetic_store

    df, _ = synthetic_store(n_series=12, n_periods=200, season_length=7, seed=3)
    path = tmp_path / "tiny.csv"
    df[df["y"] > 0].to_csv(path, index=False)
    common = ["--data", str(path), "--season-length", "7", "--model", "tsb"]
    level = main([*common, "--out", str(tmp_path / "level.json"), "--dispersion", "level"])
    saved = json.loads((tmp_path / "level.json").read_text())
    assert saved["assumptions"]["dispersion"] == "level" and level["n_series"] == 12
    for k in ("ours", "naive"):
        assert 0 <= saved["results"][k]["fill_rate"] <= 1
    default = main([*common, "--out", str(tmp_path / "max.json")])
    # the naive cover does not read the forecast's quantiles: tuned and replayed the same either way
    assert saved["results"]["naive"] == default["results"]["naive"]


def test_warehouse_shares_by_hand():
    inv = pd.DataFrame(
        {
            "sku": ["a", "a", "a", "b", "b"],
            "warehouse_id": ["W1", "W2", "W1", "W1", "W2"],
            "snapshot_date": pd.to_datetime(
                ["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-02", "2024-01-02"]
            ),
            "on_hand": [1.0] * 5,
            "on_order": [0.0] * 5,
            "units_sold": [3.0, 2.0, 3.0, 0.0, 0.0],
        }
    )
    sh = warehouse_shares(inv).set_index(["sku", "warehouse_id"])["share"]
    assert sh[("a", "W1")] == pytest.approx(6 / 8) and sh[("a", "W2")] == pytest.approx(2 / 8)
    assert sh[("b", "W1")] == sh[("b", "W2")] == pytest.approx(0.5)  # nothing sold: an even split


def poisson_shortage(x: float, mean: float) -> float:
    """E[(D - x)^+] for D ~ Poisson(mean), by summing the tail."""
    k = np.arange(int(x) + 1, 400)
    return float(((k - x) * stats.poisson.pmf(k, mean)).sum())


def fill_rate_reorder_point(s: float, mean: float, cycles_per_order: float) -> float:
    """The smallest reorder point whose expected shortage is within ``cycles_per_order`` times that of ``s``."""
    allowed = poisson_shortage(s, mean) * cycles_per_order
    return float(next(x for x in range(int(s) + 1) if poisson_shortage(x, mean) <= allowed + 1e-12))


def worked_example() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One SKU, Poisson demand of 2/day (q90 consistent with phi = 1), lead time 3 from the primary, 1 from the
    alternate; daily review so the protection interval is L + 1. Returns the forecast, inventory and products."""
    fc = pd.DataFrame({"sku": "a", "step": np.arange(1, 29), "mean": 2.0})
    fc["q90"] = stats.poisson.ppf(0.9, 2.0)
    inv = pd.DataFrame(
        {
            "sku": ["a", "a", "a"],
            "warehouse_id": ["W1", "W2", "W1"],
            "snapshot_date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-02"]),
            "on_hand": [99.0, 3.0, 2.0],
            "on_order": [0.0, 0.0, 1.0],
            "units_sold": [1.0, 1.0, 2.0],  # shares over the window: W1 3/4, W2 1/4
        }
    )
    products = pd.DataFrame(
        {
            "sku": ["a"],
            "price": [4.0],
            "supplier_id": ["S1"],
            "lead_time_days": [3],
            "min_order_qty": [20],
            "alt_supplier_id": ["S2"],
            "alt_lead_time_days": [1],
        }
    )
    return fc, inv, products


def test_plan_from_marts_worked_example():
    fc, inv, products = worked_example()
    p = plan_from_marts(fc, inv, products, as_of="2024-01-02", service_level=0.95, order_cycle=7)
    w1, w2 = (p.set_index("warehouse_id").loc[w] for w in ("W1", "W2"))
    # W1: 1.5/day, position 2 + 1 = 3. Lead-time demand 4.5; risk P(D_3 > 3) is far above 5%, and even the
    # alternate's P(D_1 > 3) = P(Poisson(1.5) > 3) = 6.6% misses the 95% target: stay with the primary.
    assert w1["lead_time_demand"] == pytest.approx(4.5)
    assert w1["stockout_risk"] == pytest.approx(stats.poisson.sf(3, 4.5))
    assert w1["alt_stockout_risk"] == pytest.approx(stats.poisson.sf(3, 1.5))
    assert not w1["use_alternate"] and w1["order_from"] == "S1"
    s = stats.poisson.ppf(0.95, 1.5 * 4)
    assert w1["reorder_point"] == pytest.approx(s) and w1["safety_stock"] == pytest.approx(s - 6.0)
    assert w1["order_up_to"] == pytest.approx(s + 1.5 * 7)
    assert w1["order_qty"] == pytest.approx(max(np.ceil(s + 10.5 - 3), 20))  # rounded up to the MOQ
    # W2: 0.5/day, position 3 (the snapshot of 2024-01-01 is its latest). P(D_3 > 3) = P(Poisson(1.5) > 3) > 5%,
    # P(D_1 > 3) = P(Poisson(0.5) > 3) < 5%: the alternate prevents the stock-out; sized on its lead time.
    assert w2["stockout_risk"] == pytest.approx(stats.poisson.sf(3, 1.5))
    assert w2["use_alternate"] and w2["order_from"] == "S2" and w2["supplier_choice"] == "stock-out risk"
    assert w1["supplier_choice"] == "primary" and w1["min_order_qty"] == 20
    # the minimum of 20 lasts 20 / 3.5 cycles at W2: the reorder point keeps the fill rate of a cycle-sized order
    s_w2 = stats.poisson.ppf(0.95, 0.5 * 2)
    assert w2["reorder_point"] == fill_rate_reorder_point(s_w2, 0.5 * 2, 20 / 3.5) < s_w2
    assert w2["revenue_at_risk"] == pytest.approx(
        4.0 * (1.5 - sum(stats.poisson.sf(k, 1.5) for k in range(3)))
    )
    alerts = stockout_alerts(p, 0.95)
    assert list(alerts["warehouse_id"]) == ["W1", "W2"]  # W1 has more revenue at risk
    assert plan_by_class(p).empty  # one level for all: no per-class summary
    # The same SKU as "lumpy" with a level of its own: the reorder point follows that level.
    lumpy = plan_from_marts(
        fc,
        inv,
        products,
        as_of="2024-01-02",
        service_level=0.95,
        order_cycle=7,
        service_level_by_class={"lumpy": 0.99},
        demand_class=pd.Series({"a": "lumpy"}),
    ).set_index("warehouse_id")
    assert (lumpy["service_level"] == 0.99).all() and (lumpy["demand_class"] == "lumpy").all()
    assert lumpy.loc["W1", "reorder_point"] == pytest.approx(stats.poisson.ppf(0.99, 1.5 * 4))
    assert list(plan_by_class(lumpy.reset_index())["rows"]) == [2]
    # The SKU's own history is lumpier (phi 5) than the forecast's q90 says (phi 1): the plan takes the larger,
    # thinned to each warehouse's share (W1 3/4: 1 + 0.75 * 4 = 4; W2 1/4: 2).
    wide = plan_from_marts(  # without a minimum order, which would lower the reorder point (tested below)
        fc,
        inv,
        products.assign(min_order_qty=0),
        as_of="2024-01-02",
        order_cycle=7,
        dispersion=pd.Series({"a": 5.0}),
    ).set_index("warehouse_id")
    assert list(wide["phi"]) == pytest.approx([4.0, 2.0])
    assert wide.loc["W1", "reorder_point"] == pytest.approx(nb1_quantile(np.array([6.0]), 4.0, 0.95)[0])
    assert wide.loc["W1", "reorder_point"] > w1["reorder_point"]
    # History calmer than the forecast changes nothing.
    calm = plan_from_marts(
        fc, inv, products, as_of="2024-01-02", order_cycle=7, dispersion=pd.Series({"a": 1.0})
    )
    pd.testing.assert_frame_equal(calm, p)


def test_the_naive_cover_policy_orders_recent_sales_over_lead_time_plus_cover_from_the_primary():
    fc, inv, products = worked_example()
    forecast_plan = plan_from_marts(fc, inv, products, as_of="2024-01-02", order_cycle=7).set_index(
        "warehouse_id"
    )
    naive = plan_from_marts(
        fc, inv, products, as_of="2024-01-02", order_cycle=7, naive_cover_days=2.0
    ).set_index("warehouse_id")
    # Two snapshot days: W1 sold 1 + 2 units (1.5 a day), W2 1 unit (0.5 a day); lead time 3, one day's review.
    # W1: s = 1.5 * (3 + 1) + 2 * 1.5 = 9, S = 9 + 1.5 * 7 = 19.5; position 3 orders 17, raised to the minimum 20.
    assert naive.loc["W1", "reorder_point"] == pytest.approx(9.0)
    assert naive.loc["W1", "safety_stock"] == pytest.approx(3.0)
    assert naive.loc["W1", "order_up_to"] == pytest.approx(19.5)
    assert naive.loc["W1", "order_qty"] == 20 and naive.loc["W1", "units_over_need"] == 3
    # W2: s = 0.5 * 4 + 1 = 3 = its position, so it orders (S - 3 = 3.5 -> 4, raised to 20), from the primary
    # although the plan would have gone to the faster alternate.
    assert naive.loc["W2", "reorder_point"] == pytest.approx(3.0)
    assert naive.loc["W2", "order_qty"] == 20
    assert forecast_plan.loc["W2", "use_alternate"]
    assert not naive["use_alternate"].any() and (naive["order_from"] == "S1").all()
    assert (naive["supplier_choice"] == "primary").all()
    # The risk columns stay the forecast's: they describe the stock, not the rule that orders; the lead-time
    # demand is the forecast's over the primary's lead time (W2's plan row shows the alternate's).
    for column in ("stockout_risk", "revenue_at_risk"):
        pd.testing.assert_series_equal(naive[column], forecast_plan[column])
    assert list(naive["lead_time_demand"]) == pytest.approx([4.5, 1.5])
    # Without sales nothing is reordered: the naive rule cannot see demand it has not sold.
    unsold = plan_from_marts(
        fc, inv.assign(units_sold=0.0), products, as_of="2024-01-02", order_cycle=7, naive_cover_days=2.0
    )
    assert (unsold["order_qty"] == 0).all() and (unsold["reorder_point"] == 0).all()
    # the day's metadata says which rule ordered
    shown = plan_summary(naive.reset_index(), "naive_cover")["metrics"]
    assert shown["ordering_policy"] == "naive_cover" and shown["rows_to_order"] == 2


def test_a_minimum_order_that_would_overstock_a_slow_mover_moves_the_order_to_the_alternate():
    # 0.2 units/day (Poisson) at one warehouse, none on hand: the primary (lead time 3, minimum 100, ~500 days of
    # demand) and the alternate (lead time 2, minimum 6) both see a stock-out risk above 5%, the alternate less.
    fc = pd.DataFrame({"sku": "slow", "step": np.arange(1, 29), "mean": 0.2})
    fc["q90"] = stats.poisson.ppf(0.9, 0.2)
    inv = pd.DataFrame(
        {
            "sku": ["slow"],
            "warehouse_id": ["W1"],
            "snapshot_date": pd.to_datetime(["2024-01-02"]),
            "on_hand": [0.0],
            "on_order": [0.0],
            "units_sold": [1.0],
        }
    )
    products = pd.DataFrame(
        {
            "sku": ["slow"],
            "price": [10.0],
            "supplier_id": ["S1"],
            "lead_time_days": [3],
            "min_order_qty": [100],
            "alt_supplier_id": ["S2"],
            "alt_lead_time_days": [2],
            "alt_min_order_qty": [6],
        }
    )
    row = plan_from_marts(fc, inv, products, as_of="2024-01-02", order_cycle=7).iloc[0]
    assert row["alt_stockout_risk"] == pytest.approx(stats.poisson.sf(0, 0.4))
    assert row["alt_stockout_risk"] < row["stockout_risk"]
    assert row["use_alternate"] and row["supplier_choice"] == "minimum order" and row["order_from"] == "S2"
    s_alt = fill_rate_reorder_point(stats.poisson.ppf(0.95, 0.2 * 3), 0.2 * 3, 6 / 1.4)
    need = np.ceil(s_alt + 0.2 * 7)
    assert row["reorder_point"] == s_alt and row["min_order_qty"] == 6
    assert row["order_qty"] == max(need, 6) and row["units_over_need"] == max(6 - need, 0)
    # the same minimums at a fast mover (20/day, position at its reorder point): 100 units overshoot nothing
    s_fast = stats.poisson.ppf(0.95, 20 * 4)
    fast = plan_from_marts(
        fc.assign(mean=20.0, q90=stats.poisson.ppf(0.9, 20.0)),
        inv.assign(on_hand=s_fast),
        products,
        as_of="2024-01-02",
        order_cycle=7,
    ).iloc[0]
    assert not fast["use_alternate"] and fast["supplier_choice"] == "primary" and fast["min_order_qty"] == 100
    assert fast["reorder_point"] == s_fast and fast["order_qty"] == pytest.approx(20 * 7)
    assert fast["units_over_need"] == 0
    # an alternate whose minimum is no smaller is no reason to move; the primary's minimum of 100 then sets a
    # reorder point that keeps the fill rate of a cycle-sized order (a much lower one: 100 units last 71 cycles)
    same = plan_from_marts(
        fc, inv, products.assign(alt_min_order_qty=100), as_of="2024-01-02", order_cycle=7
    ).iloc[0]
    s_primary = fill_rate_reorder_point(stats.poisson.ppf(0.95, 0.2 * 4), 0.2 * 4, 100 / 1.4)
    assert not same["use_alternate"] and same["reorder_point"] == s_primary < stats.poisson.ppf(0.95, 0.8)
    assert same["order_qty"] == 100 and same["units_over_need"] == 100 - np.ceil(s_primary + 1.4)


def test_rolling_policy_with_an_unchanged_forecast_equals_the_fixed_one():
    from ml.forecast.quantiles import nb1_quantile
    from ml.inventory.policy import interval_sum
    from ml.inventory.simulate import ForecastIntervals, forecast_policy, initial_stock

    rng = np.random.default_rng(0)
    mean = rng.gamma(1.0, 3.0, size=(6, 40))
    phi = rng.uniform(1.0, 5.0, size=6)
    lead = np.array([3, 3, 2, 5, 3, 1])
    demand = rng.poisson(mean[:, :28]).astype(float)
    rolling = [mean[:, k:] for k in range(29)]
    per_series = np.array([0.95, 0.8, 0.99, 0.9, 0.95, 0.7])
    for level, ratio in (
        (0.95, None),
        (per_series, None),
        (0.9, np.array([1.5, np.nan, 2.0, np.nan, 1.1, 3.0])),
    ):
        fixed = forecast_policy(mean, phi, lead, level, order_cycle=7, ratio=ratio)
        policies = (
            forecast_policy(rolling, phi, lead, level, order_cycle=7, ratio=ratio),
            # the intervals made once, as a window replayed at many levels keeps them
            forecast_policy(
                ForecastIntervals.of(rolling, lead, order_cycle=7), phi, lead, level, ratio=ratio
            ),
        )
        for refreshed in policies:
            for day in range(-1, 28):
                # the definition, day by day: the quantile over lead time + review of the forecast made that day
                protection = interval_sum(rolling[day + 1], 0, lead + 1)
                s = nb1_quantile(protection, phi, level)
                if ratio is not None:
                    s = np.where(np.isfinite(ratio), np.nan_to_num(ratio) * protection, s)
                np.testing.assert_array_equal(refreshed(day)[0], s)
                np.testing.assert_array_equal(
                    refreshed(day)[1], s + interval_sum(rolling[day + 1], 0, np.full(6, 7))
                )
                # the fixed forecast sums the same periods from another offset: equal up to rounding
                np.testing.assert_allclose(refreshed(day), fixed(day), rtol=1e-12)
            a = replay(demand, fixed, lead, initial_stock(fixed))
            assert replay(demand, refreshed, lead, initial_stock(refreshed)) == a


def test_daily_refresh_catches_a_step_in_demand():
    from ml.inventory.simulate import forecast_policy, initial_stock

    demand = np.array([[2.0] * 5 + [10.0] * 23])
    phi = np.array([1.0])
    stale = np.full((1, 40), 2.0)
    # A forecast refreshed each day: the mean of the last 3 days seen (day k - 1 is the newest it may read).
    seen = np.hstack([[2.0, 2.0, 2.0], demand[0]])
    fresh = [np.full((1, 12), seen[k : k + 3].mean()) for k in range(29)]
    fixed = forecast_policy(stale, phi, 2, 0.95)
    refreshed = forecast_policy(fresh, phi, 2, 0.95)
    a = replay(demand, fixed, 2, initial_stock(fixed))
    b = replay(demand, refreshed, 2, initial_stock(refreshed))
    assert a.fill_rate < 0.6 and b.fill_rate > 0.9  # measured 0.575 and 0.925


def test_empirical_lead_time_demand_ratio_by_hand():
    from ml.inventory.policy import empirical_ratio_quantile

    # Series a: one big order in a quiet history; b: steady; c: too short (fewer complete windows than asked).
    a = np.zeros(30)
    a[10] = 60.0
    b = np.full(30, 2.0)
    c = np.r_[np.full(27, np.nan), 1.0, 1.0, 1.0]
    ratio = empirical_ratio_quantile(np.vstack([a, b, c]), 3, 0.95, lookback=30, min_windows=5)
    # a: 28 windows of 3 days, 3 of them hold the order (sum 60), 25 are 0: mean 60 * 3 / 28; the 0.95 quantile
    # of the sorted sums (25 zeros, 3 x 60) is 60.
    assert ratio[0] == pytest.approx(60 / (180 / 28))
    assert ratio[1] == pytest.approx(1.0)
    assert np.isnan(ratio[2])


def test_policy_uses_the_empirical_ratio_where_finite():
    from ml.inventory.simulate import forecast_policy

    mean = np.full((2, 10), 2.0)
    phi = np.array([3.0, 3.0])
    s_nb, _ = forecast_policy(mean, phi, 2, 0.9)(0)
    s_emp, big_s = forecast_policy(mean, phi, 2, 0.9, ratio=np.array([1.5, np.nan]))(0)
    assert s_emp[0] == pytest.approx(1.5 * 2.0 * 3)  # ratio x mean over lead time + review (3 days)
    assert s_emp[1] == s_nb[1]  # NB1 where there is no ratio
    assert big_s[0] == pytest.approx(s_emp[0] + 2.0 * 6)


def test_planning_forecast_is_the_cheapest_that_reaches_the_target_on_validation():
    from types import SimpleNamespace as R

    from bench.inventory import _cheapest_on_validation

    def tried(*windows):
        return {"validation": [R(fill_rate=f, avg_inventory_units=u) for f, u in windows]}

    cheap_but_short = tried((0.99, 10.0), (0.90, 10.0))  # misses the target on one window
    lean = tried((0.96, 50.0), (0.95, 70.0))  # mean stock 60
    heavy = tried((0.99, 80.0), (0.99, 90.0))
    assert _cheapest_on_validation({"a": cheap_but_short, "b": lean, "c": heavy}, 0.95) == "b"
    # None reaches the target: the least stock of all of them.
    assert _cheapest_on_validation({"a": cheap_but_short, "c": heavy}, 0.999) == "a"


def test_inventory_bench_chooses_its_planning_forecast_on_validation(tmp_path):
    from bench.inventory import main
    from ml.forecast.synthetic import synthetic_store

    df, _ = synthetic_store(n_series=12, n_periods=200, season_length=7, seed=3)
    path = tmp_path / "tiny.csv"
    df[df["y"] > 0].to_csv(path, index=False)
    main(
        ["--data", str(path), "--out", str(tmp_path / "inv.json"), "--season-length", "7", "--n-origins", "2"]
    )
    saved = json.loads((tmp_path / "inv.json").read_text())
    cands = saved["forecast_choice"]["candidates"]
    assert set(cands) == {"ensemble", "fast"}
    ok = [n for n, c in cands.items() if c["validation_min_fill_rate"] >= saved["target_fill_rate"]] or list(
        cands
    )
    assert saved["forecast_model"] == min(ok, key=lambda n: cands[n]["validation_mean_inventory_units"])
    chosen = cands[saved["forecast_model"]]
    tuning = saved["tuning_on_validation_window"]
    by_class = saved["service_levels_by_class"]  # the default: levels per class refined from the uniform one
    assert by_class["uniform_alpha"] == chosen["alpha"]
    assert by_class["uniform_validation_mean_inventory_units"] == chosen["validation_mean_inventory_units"]
    assert (
        by_class["by_class_validation_mean_inventory_units"]
        <= by_class["uniform_validation_mean_inventory_units"]
    )
    # The reported tuning is the chosen forecast's, at the per-class levels, every window at the target.
    assert tuning["ours_alpha"] == by_class["levels"]
    val = tuning["ours_validation"]
    assert min(r["fill_rate"] for r in val) >= saved["target_fill_rate"] or by_class["levels"] == {
        c: chosen["alpha"] for c in by_class["levels"]
    }
    mean_units = sum(r["avg_inventory_units"] for r in val) / len(val)
    assert mean_units == pytest.approx(by_class["by_class_validation_mean_inventory_units"], abs=0.1)
    assert "ours_uniform_alpha" in saved["results"]


def test_service_levels_by_class_shift_stock_to_where_it_buys_fill():
    from types import SimpleNamespace as R

    from ml.inventory.tuning import levels_by_class, smallest_feasible

    # A stylised replay: class "cheap" gains a lot of fill per unit of stock, class "dear" little; each level on
    # the grid costs its index in stock per class.
    grid = [0.5, 0.9, 0.99]
    fill = {"cheap": {0.5: 0.80, 0.9: 0.97, 0.99: 0.98}, "dear": {0.5: 0.90, 0.9: 0.92, 0.99: 0.95}}

    def run(levels, window):
        if not isinstance(levels, dict):
            levels = {"cheap": levels, "dear": levels}
        f = (fill["cheap"][levels["cheap"]] + fill["dear"][levels["dear"]]) / 2
        stock = sum(grid.index(v) for v in levels.values()) * window
        return R(fill_rate=f, avg_inventory_units=float(stock))

    uniform, _ = smallest_feasible(grid, run, [1, 2], 0.93)
    assert uniform == 0.9  # (0.97 + 0.92) / 2 = 0.945
    levels, res = levels_by_class(grid, run, [1, 2], 0.93, start=uniform, classes=["cheap", "dear"])
    # Lowering "dear" to 0.5 keeps (0.97 + 0.90) / 2 = 0.935 >= 0.93 with one grid step less stock.
    assert levels == {"cheap": 0.9, "dear": 0.5}
    assert [r.avg_inventory_units for r in res] == [1.0, 2.0]
    assert min(r.fill_rate for r in res) >= 0.93
    # A target nothing cheaper reaches leaves the uniform level alone.
    assert levels_by_class(grid, run, [1], 0.945, start=uniform, classes=["cheap", "dear"])[0] == {
        "cheap": 0.9,
        "dear": 0.9,
    }


def test_service_levels_by_class_raise_one_class_to_lower_a_dearer_one():
    from types import SimpleNamespace as R

    from ml.inventory.tuning import levels_by_class

    grid = [0.5, 0.9, 0.99]
    fill = {"cheap": {0.5: 0.80, 0.9: 0.97, 0.99: 0.98}, "dear": {0.5: 0.90, 0.9: 0.92, 0.99: 0.95}}
    cost = {"cheap": 1.0, "dear": 3.0}  # stock per grid step

    def run(levels, window):
        f = (fill["cheap"][levels["cheap"]] + fill["dear"][levels["dear"]]) / 2
        return R(fill_rate=f, avg_inventory_units=sum(grid.index(v) * cost[c] for c, v in levels.items()))

    # From 0.9 for both (fill 0.945, stock 4): lowering "dear" alone misses 0.939 (0.935); raising "cheap" to
    # 0.99 pays for it (fill 0.94, stock 2).
    levels, res = levels_by_class(grid, run, [0], 0.939, start=0.9, classes=["cheap", "dear"])
    assert levels == {"cheap": 0.99, "dear": 0.5}
    assert res[0].avg_inventory_units == 2.0


def _store_with_forecasts(n_days=60, forecast_days=15, seed=0):
    """Poisson daily demand per SKU, and stored daily forecasts that know each SKU's true rate."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2025-03-01", periods=n_days, freq="D")
    rates = np.array([0.3, 0.5, 1.0, 2.0, 4.0, 8.0, 0.2, 3.0])
    skus = [f"s{i}" for i in range(len(rates))]
    demand = pd.DataFrame(
        [(s, d, float(rng.poisson(r))) for s, r in zip(skus, rates, strict=True) for d in days],
        columns=["sku", "demand_date", "units"],
    )
    forecasts = pd.DataFrame(
        [
            (d, s, h, r, float(stats.poisson.ppf(0.9, r)))
            for d in days[-forecast_days:]
            for s, r in zip(skus, rates, strict=True)
            for h in range(1, 29)
        ],
        columns=["as_of_date", "sku", "horizon_day", "mean", "q90"],
    )
    products = pd.DataFrame({"sku": skus, "lead_time_days": 3, "price": 2.0})
    classes = pd.Series(["lumpy" if r < 1 else "smooth" for r in rates], index=skus)
    return days, demand, forecasts, products, classes


def test_recent_service_levels_replay_the_stored_forecasts():
    from ml.inventory.tuning import ALPHA_GRID, recent_service_levels

    days, demand, forecasts, products, classes = _store_with_forecasts()
    res = recent_service_levels(forecasts, demand, products, classes, target=0.95, window_days=10)
    # The last 10 demand days are replayed; each decision reads the forecast stored on its day.
    assert res.window == (days[-10].date(), days[-1].date()) and res.n_skus == 8
    assert res.uniform.demand_units == demand[demand["demand_date"] >= days[-10]]["units"].sum()
    assert res.uniform.fill_rate >= 0.95 and res.by_class.fill_rate >= 0.95 and res.naive.fill_rate >= 0.95
    assert res.uniform_level in ALPHA_GRID and set(res.levels) == {"lumpy", "smooth"}
    assert res.by_class.avg_inventory_units <= res.uniform.avg_inventory_units
    # Per class: the rows add up to the window's totals, for ours and for the naive cover.
    table = res.classes.set_index("demand_class")
    assert table["skus"].sum() == 8 and table["demand_units"].sum() == res.by_class.demand_units
    assert table["avg_stock_units"].sum() == pytest.approx(res.by_class.avg_inventory_units)
    assert (table["fill_rate"] * table["demand_units"]).sum() / table["demand_units"].sum() == pytest.approx(
        res.by_class.fill_rate
    )
    assert table["naive_avg_stock_units"].sum() == pytest.approx(res.naive.avg_inventory_units)
    assert table["service_level"].to_dict() == res.levels
    # Fewer stored forecasts than the window: the replay shrinks to what is stored (9 forecasts: 8 days).
    short = recent_service_levels(forecasts[forecasts["as_of_date"] >= days[-9]], demand, products, classes)
    assert short.window == (days[-8].date(), days[-1].date())
    # Under 28 days of demand before the window: levels still, but no naive yardstick.
    young = recent_service_levels(forecasts, demand[demand["demand_date"] >= days[-30]], products, classes)
    assert young.naive is None and young.naive_cover_days is None and young.by_class.fill_rate >= 0.95
    assert "naive_fill_rate" not in young.classes
    assert res.naive is not None
    # Too few to say anything: a reason, not levels.
    few = recent_service_levels(forecasts[forecasts["as_of_date"] >= days[-5]], demand, products, classes)
    assert isinstance(few, str) and "need at least 7" in few
    # A gap in the stored forecasts ends the replay window there: day -11's order needed day -12's forecast.
    gap = forecasts[forecasts["as_of_date"] != days[-12]]
    assert recent_service_levels(gap, demand, products, classes, window_days=28).window[0] == days[-10].date()


def test_recent_service_levels_are_the_smallest_that_meet_the_target():
    from ml.inventory.tuning import recent_service_levels

    days, demand, forecasts, products, classes = _store_with_forecasts(seed=1)
    strict = recent_service_levels(forecasts, demand, products, classes, target=0.99, window_days=14)
    loose = recent_service_levels(forecasts, demand, products, classes, target=0.80, window_days=14)
    assert loose.uniform_level <= strict.uniform_level
    assert loose.uniform.avg_inventory_units <= strict.uniform.avg_inventory_units
    assert loose.naive_cover_days <= strict.naive_cover_days
    assert strict.uniform.fill_rate >= 0.99 or strict.uniform_level == 0.9999


def test_recent_service_levels_over_several_windows_must_meet_the_target_on_each():
    from ml.inventory.tuning import recent_service_levels

    days, demand, forecasts, products, classes = _store_with_forecasts(forecast_days=26, seed=0)
    one = recent_service_levels(forecasts, demand, products, classes, target=0.97, window_days=10)
    two = recent_service_levels(
        forecasts, demand, products, classes, target=0.97, window_days=10, n_windows=2
    )
    # 26 stored forecasts give 25 replayable days: two full windows of 10 (a third would be partial).
    assert (one.n_windows, two.n_windows) == (1, 2)
    three = recent_service_levels(forecasts, demand, products, classes, window_days=10, n_windows=3)
    assert three.n_windows == 2
    # The newest window is the same; the level must now also hold on the older one, which here needs more.
    assert one.window == two.window == (days[-10].date(), days[-1].date())
    assert (one.uniform_level, two.uniform_level) == (0.5, 0.7)
    assert two.uniform.avg_inventory_units > one.uniform.avg_inventory_units
    assert one.reached and two.reached
    # A target no level reaches: the grid's top, reported as not reached (what the asset check fails on).
    out_of_reach = recent_service_levels(
        forecasts, demand, products, classes, target=1.01, window_days=10, n_windows=2
    )
    assert out_of_reach.uniform_level == 0.9999 and not out_of_reach.reached


def test_class_replays_add_up_to_the_direct_replay_of_a_per_class_policy():
    from ml.inventory.simulate import forecast_policy, initial_stock, replay, replay_series
    from ml.inventory.tuning import ClassReplays, per_series_levels

    rng = np.random.default_rng(4)
    forecast = [rng.gamma(1.0, 2.0, size=(9, 20)) for _ in range(11)]  # refreshed daily: 10 days + the origin
    phi, lead = rng.uniform(1, 6, 9), rng.integers(1, 6, 9)
    demand = rng.poisson(6.0, size=(9, 10)).astype(float) * rng.integers(0, 2, size=(9, 10))
    price = rng.uniform(1, 5, 9)
    classes = np.array(["lumpy", "smooth", "erratic"] * 3, dtype=object)

    def direct(level):
        pol = forecast_policy(forecast, phi, lead, per_series_levels(level, classes), order_cycle=7)
        return replay(demand, pol, lead, initial_stock(pol), price)

    replayed = []

    def at(level):
        replayed.append(level)
        pol = forecast_policy(forecast, phi, lead, level, order_cycle=7)
        return replay_series(demand, pol, lead, initial_stock(pol), price)

    replays = ClassReplays(at, classes)
    for level in (0.9, {"lumpy": 0.99, "smooth": 0.8}, {"lumpy": 0.5, "smooth": 0.7, "erratic": 0.999}):
        want, got = direct(level), replays(level)
        for field, value in want.__dict__.items():
            assert getattr(got, field) == pytest.approx(value, rel=1e-12), field
    # one replay per distinct level: 0.9, then 0.99 (also for erratic, unnamed), 0.8, 0.5, 0.7, 0.999
    assert sorted(replayed) == [0.5, 0.7, 0.8, 0.9, 0.99, 0.999]
    # the levels matter here: stock differs and the lowest levels lose sales
    assert direct({"lumpy": 0.99, "smooth": 0.8}).avg_inventory_units != direct(0.9).avg_inventory_units
    assert direct({"lumpy": 0.5, "smooth": 0.7, "erratic": 0.999}).lost_units > 0


def test_forward_replay_of_a_window_equals_the_tuning_replay_that_ends_there():
    from ml.inventory.tuning import ForwardReplay, recent_service_levels

    days, demand, forecasts, products, classes = _store_with_forecasts(forecast_days=26, seed=2)
    # Tune on data up to day -6 (10 demand days), then replay the same levels forward from 10 days before.
    end = days[-6]
    tuned = recent_service_levels(
        forecasts[forecasts["as_of_date"] <= end],
        demand[demand["demand_date"] <= end],
        products,
        classes,
        target=0.95,
        window_days=10,
    )
    forward = ForwardReplay(forecasts, demand, products)
    window = forward.window(days[-16], 10, classes)
    assert window.days[0] == days[-16] and window.days[-1] == end and window.demand.shape == (8, 10)
    for level, expected in ((tuned.levels, tuned.by_class), (tuned.uniform_level, tuned.uniform)):
        got = forward.run(window, level)
        assert got.fill_rate == pytest.approx(expected.fill_rate)
        assert got.avg_inventory_units == pytest.approx(expected.avg_inventory_units)
    # More stock buys fill: a higher level never fills less on the same window.
    assert forward.run(window, 0.999).fill_rate >= forward.run(window, 0.5).fill_rate
    # No window without `n_days` trading days after the day, or without a forecast on every decision day.
    assert forward.window(days[-5], 10, classes) is None
    assert (
        ForwardReplay(forecasts[forecasts["as_of_date"] != days[-12]], demand, products).window(
            days[-16], 10, classes
        )
        is None
    )
    assert forward.window(days[-16] + pd.Timedelta(hours=1), 10, classes) is None  # not a trading day


def test_a_replay_window_puts_every_stored_forecast_in_its_day_sku_and_horizon():
    """A window picks its forecast rows by the integer codes of their days and SKUs: each value must land in its
    own (decision day, SKU, horizon) cell whatever the rows' order, rows of other days or of SKUs not forecast
    on the window's first day must stay out, and one copy of the inputs must serve any window."""
    from ml.inventory.tuning import ForwardReplay, ReplayInputs

    days, demand, forecasts, products, classes = _store_with_forecasts(forecast_days=12, seed=3)
    skus = sorted(products["sku"])
    # a value that names its cell; s7 is only forecast from the window's second day, so it is not in the window
    forecasts = forecasts.assign(
        mean=lambda f: (
            1000.0 * days.get_indexer(f["as_of_date"])
            + 10.0 * pd.Index(skus).get_indexer(f["sku"])
            + f["horizon_day"]
        ),
        q90=lambda f: f["mean"] + 0.5,
    )
    first = days[-10]
    forecasts = forecasts[(forecasts["sku"] != "s7") | (forecasts["as_of_date"] > first)]
    forecasts = forecasts.sample(frac=1.0, random_state=0)  # stored rows come in any order
    inputs = ReplayInputs(forecasts, demand)
    forward = ForwardReplay.from_inputs(inputs, products)
    window = forward.window(first, 4, classes)
    in_window = [s for s in skus if s != "s7"]
    assert list(window.days) == list(days[-10:-5]) and window.demand.shape == (7, 4)
    for k, day in enumerate(window.days):
        expected = (
            1000.0 * days.get_loc(day)
            + 10.0 * np.array([skus.index(s) for s in in_window])[:, None]
            + np.arange(1, 29)[None, :]
        )
        np.testing.assert_array_equal(window.means[k], expected)
    # the same inputs serve another window, and ForwardReplay built from the frames reads the same one
    later = forward.window(days[-6], 4, classes)
    assert later.days[0] == days[-6] and later.means[0].shape == (8, 28)  # s7 is forecast by then
    again = ForwardReplay(forecasts, demand, products).window(first, 4, classes)
    for a, b in zip(again.means, window.means, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(again.phi, window.phi)


def test_service_levels_forward_bench_on_a_warehouse(tmp_path):
    import duckdb

    from bench.service_levels_forward import main as forward_main

    days, demand, forecasts, products, classes = _store_with_forecasts(forecast_days=26, seed=3)
    mart = demand.assign(
        revenue=demand["units"] * 2.0,
        n_orders=(demand["units"] > 0).astype(int),
        units_reversed_same_day=0.0,
        revenue_reversed_same_day=0.0,
    )
    tuned_on = [days[-20], days[-19], days[-18], days[-2]]  # the last has no 10 days after it
    covers = (20.0, float("nan"), 5.0, 20.0)  # the second day had no naive cover (NULL in the table)
    levels = pd.DataFrame(
        [
            (d.date(), c, lvl, 0.9, 0.95, cover)
            for d, lumpy, cover in zip(tuned_on, (0.9, 0.95, 0.95, 0.99), covers, strict=True)
            for c, lvl in (("lumpy", lumpy), ("smooth", 0.8))
        ],
        columns=[
            "as_of_date",
            "demand_class",
            "service_level",
            "uniform_level",
            "target_fill_rate",
            "naive_cover_days",
        ],
    )
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        for schema, name, frame in (
            ("marts", "fct_daily_sku_demand", mart),
            ("marts", "dim_products", products),
            ("supply", "demand_forecast", forecasts),
            ("supply", "service_levels", levels),
        ):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            con.register("frame", frame)
            con.execute(f"CREATE TABLE {schema}.{name} AS SELECT * FROM frame")
            con.unregister("frame")
    out = tmp_path / "forward.json"
    assert forward_main(["--warehouse", str(path), "--out", str(out), "--window-days", "10"]) == 0
    result = json.loads(out.read_text())
    assert [r["day"] for r in result["days"]] == [str(d.date()) for d in tuned_on[:3]]
    first = result["days"][0]
    assert first["levels"] == {"lumpy": 0.9, "smooth": 0.8} and first["uniform_level"] == 0.9
    assert first["window_end"] == str(days[-10].date())  # 10 demand days after the tuned day
    # The fixed setting is 0.95 for every SKU: above every tuned level here, so it holds the most stock.
    for row in result["days"]:
        assert row["fixed"]["avg_inventory_units"] >= row["tuned_by_class"]["avg_inventory_units"]
    summary = result["summary"]["tuned_by_class"]
    assert summary["windows"] == 3
    assert summary["windows_reaching_target"] == sum(
        r["tuned_by_class"]["fill_rate"] >= 0.95 for r in result["days"]
    )
    # The naive yardstick on the days with a cover only; a smaller cover holds less stock on the same days.
    rows = result["days"]
    assert ["naive" in r for r in rows] == [True, False, True]
    assert [r.get("naive_cover_days") for r in rows] == [20.0, None, 5.0]
    assert rows[2]["naive"]["avg_inventory_units"] < rows[0]["naive"]["avg_inventory_units"]
    assert result["summary"]["naive"]["windows"] == 2
    by_hand = sum(rows[i]["tuned_by_class"]["avg_inventory_units"] for i in (0, 2)) / sum(
        rows[i]["naive"]["avg_inventory_units"] for i in (0, 2)
    )
    assert summary["inventory_change_vs_naive"] == pytest.approx(by_hand - 1, abs=1e-4)
    fixed_by_hand = sum(r["tuned_by_class"]["avg_inventory_units"] for r in rows) / sum(
        r["fixed"]["avg_inventory_units"] for r in rows
    )
    assert summary["inventory_change_vs_fixed"] == pytest.approx(fixed_by_hand - 1, abs=1e-4)
    assert "inventory_change_vs_fixed" not in result["summary"]["fixed"]
    assert "hindsight_uniform" not in result["summary"]

    # The oracles, tuned on each forward window itself: the first grid level (and cover) reaching the target there.
    from ml.inventory.tuning import ALPHA_GRID, COVER_GRID, ForwardReplay

    with duckdb.connect(str(path)) as con:  # a target this store's forecasts reach only at some higher levels
        con.execute("UPDATE supply.service_levels SET target_fill_rate = 0.995")
    args = ["--warehouse", str(path), "--out", str(out), "--window-days", "10", "--hindsight"]
    assert forward_main(args) == 0
    oracle = json.loads(out.read_text())
    forward = ForwardReplay(forecasts, mart, products)
    for row, day in zip(oracle["days"], tuned_on, strict=False):
        window = forward.window(day, 10, classes)
        fills = [forward.run(window, a).fill_rate for a in ALPHA_GRID]
        reaching = [a for a, f in zip(ALPHA_GRID, fills, strict=True) if f >= 0.995]
        assert row["hindsight_level"] == (reaching[0] if reaching else ALPHA_GRID[-1])
        cover_fills = [forward.run_naive(window, c).fill_rate for c in COVER_GRID]
        first_cover = next(
            (c for c, f in zip(COVER_GRID, cover_fills, strict=True) if f >= 0.995), COVER_GRID[-1]
        )
        assert row["hindsight_cover_days"] == first_cover
        assert row["hindsight_naive"]["fill_rate"] == pytest.approx(
            forward.run_naive(window, first_cover).fill_rate, abs=1e-4
        )
    assert oracle["summary"]["hindsight_uniform"]["windows"] == 3
    assert any(r["hindsight_level"] > ALPHA_GRID[0] for r in oracle["days"])  # the search did search
    assert any(r["hindsight_cover_days"] > 0 for r in oracle["days"])
    assert "inventory_change_vs_hindsight_naive" in oracle["summary"]["hindsight_uniform"]
    # Stability by hand: lumpy 0.9 -> 0.95 -> 0.95 -> 0.99 is +1, 0, +3 grid steps; smooth never moves.
    stab = result["stability"]
    assert stab["tuned_days"] == 4 and stab["share_of_days_any_class_changed"] == pytest.approx(
        2 / 3, abs=1e-4
    )
    assert stab["by_class"]["lumpy"]["mean_abs_step_change"] == pytest.approx(4 / 3, abs=1e-4)
    assert stab["by_class"]["smooth"]["share_changed"] == 0.0


def test_smallest_feasible_bisects_to_the_first_value_reaching_the_target():
    from types import SimpleNamespace

    from ml.inventory.tuning import COVER_GRID, smallest_feasible

    calls = []

    def run(cover, window):  # fill rises with the cover; window 2 needs 5 more days than window 1
        calls.append((cover, window))
        return SimpleNamespace(fill_rate=min(1.0, (cover - 5 * (window - 1)) / 40))

    value, results = smallest_feasible(COVER_GRID, run, [1, 2], 0.95)
    assert value == 43.0 and [r.fill_rate for r in results] == [1.0, 0.95]
    assert len(calls) <= 2 * 9  # about log2(161) values, each on both windows
    # the first value on the grid: 42.5 misses on window 2
    assert run(42.5, 2).fill_rate < 0.95
    # no value reaches the target: the last one, as before
    assert smallest_feasible(COVER_GRID, run, [1, 2], 1.01)[0] == COVER_GRID[-1]


def test_pooled_fill_rule_counts_the_units_of_all_windows_together():
    from types import SimpleNamespace

    from ml.inventory.tuning import COVER_GRID, reaches, smallest_feasible

    def res(lost, demand):
        fill = 1 - lost / demand if demand else 1.0
        return SimpleNamespace(fill_rate=fill, lost_units=lost, demand_units=demand)

    # A hard small month (80%) and an easy big one (99%): 29 lost of 1,100 units is 97.4% pooled.
    months = [res(20, 100), res(9, 1000)]
    assert not reaches(months, 0.95) and reaches(months, 0.95, "pooled")
    assert not reaches(months, 0.98, "pooled")
    assert reaches([res(0, 0), res(0, 0)], 0.95, "pooled")  # no demand: nothing to miss
    with pytest.raises(ValueError, match="unknown fill rule"):
        reaches(months, 0.95, "mean")

    def run(cover, window):  # window 2 is small and needs 20 more cover days than window 1
        demand = 100.0 if window == 2 else 900.0
        fill = min(1.0, max(0.0, (cover - 20 * (window - 1)) / 40))
        return res((1 - fill) * demand, demand)

    every, _ = smallest_feasible(COVER_GRID, run, [1, 2], 0.94)
    pooled, results = smallest_feasible(COVER_GRID, run, [1, 2], 0.94, "pooled")
    assert every == 58.0  # window 2: (58 - 20) / 40 = 0.95; 57.5 gives 0.9375
    # pooled, below c = 40: (900 * c / 40 + 100 * (c - 20) / 40) / 1000 = (25 c - 50) / 1000 >= 0.94 -> c >= 39.6
    assert pooled == 40.0 and reaches(results, 0.94, "pooled") and not reaches(results, 0.94)


@pytest.mark.parametrize(
    ("level", "by_class", "named"),
    [(1.0, None, "service_level"), (0.95, {"lumpy": 95.0}, "service_level_by_class[lumpy]")],
)
def test_a_service_level_outside_0_1_stops_the_plan(level, by_class, named):
    # Before, a level of 1 planned zero stock (scipy's infinite quantile was read as nothing to cover).
    with pytest.raises(ValueError, match=rf"strictly between 0 and 1.*{re.escape(named)}"):
        plan_from_marts(
            pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), 0, level, service_level_by_class=by_class
        )


def test_the_plan_config_refuses_a_service_level_of_one():
    from pydantic import ValidationError

    from orchestration.defs.supply.assets import ReplenishmentConfig

    assert ReplenishmentConfig(service_level=0.999).service_level == 0.999
    with pytest.raises(ValidationError, match="less than 1"):
        ReplenishmentConfig(service_level=1.0)


def test_walk_forward_split_keeps_choice_and_judge_windows_apart():
    from bench.service_levels_forward import split

    def row(day, end, fill, stock):
        return {
            "day": day,
            "window_end": end,
            "target_fill_rate": 0.95,
            "tuned_by_class": {"fill_rate": fill, "avg_inventory_units": stock},
        }

    rows = [
        row("2011-06-28", "2011-08-03", 0.96, 100.0),
        row("2011-06-30", "2011-08-05", 0.94, 300.0),
        row("2011-07-01", "2011-08-08", 0.90, 999.0),  # shares demand days with both parts: dropped
        row("2011-08-04", "2011-09-09", 0.99, 999.0),  # starts before the last choice window ends: dropped
        row(
            "2011-08-05", "2011-09-12", 0.97, 50.0
        ),  # the choice windows' last demand day: its demand is after
        row("2011-09-01", "2011-10-07", 0.93, 70.0),
    ]
    parts = split(rows, dt.date(2011, 6, 30))
    assert parts["judge_from"] == "2011-08-05" and parts["dropped_windows"] == 2
    choice, judge = parts["choice"]["tuned_by_class"], parts["judge"]["tuned_by_class"]
    assert (choice["windows"], choice["windows_reaching_target"]) == (2, 1)
    assert choice["mean_fill_rate"] == pytest.approx(0.95) and choice["mean_avg_inventory_units"] == 200.0
    assert (judge["windows"], judge["windows_reaching_target"]) == (2, 1)
    assert judge["mean_fill_rate"] == pytest.approx(0.95) and judge["mean_avg_inventory_units"] == 60.0
    assert "naive" not in parts["choice"]  # no row has that setting
    with pytest.raises(ValueError, match="no tuned day"):
        split(rows, dt.date(2011, 1, 1))
