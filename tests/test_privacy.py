"""Partner statistics released with differential privacy (ml/privacy): the noise has the scale the budget
implies, the budget adds up, small cells are suppressed, contributions are bounded, and re-runs spend nothing."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.privacy.daily import LEDGER, RELEASES, partner_release_day
from ml.privacy.partner_stats import (
    DIMENSIONS,
    PrivacySettings,
    customer_days,
    mechanism,
    privacy_loss,
    release,
    true_cells,
)

DAY = date(2025, 1, 10)


def test_the_noise_has_the_scale_the_budget_implies():
    settings = PrivacySettings(epsilon_per_day=1.0)
    b = 1 / (1.0 / 9)  # sensitivity 1, epsilon 1/9 per release
    counts = np.array([mechanism("customers", settings)(100) for _ in range(4000)]) - 100
    assert abs(counts.mean()) < 1.0 and counts.std() == pytest.approx(np.sqrt(2) * b, rel=0.1)
    revenue = np.array([mechanism("revenue", settings)(1000.0) for _ in range(4000)]) - 1000.0
    assert revenue.std() == pytest.approx(np.sqrt(2) * 500.0 * 9, rel=0.1)
    # a tenth of the budget: ten times the noise
    tight = np.array([mechanism("customers", PrivacySettings(epsilon_per_day=0.1))(100) for _ in range(2000)])
    assert (tight - 100).std() > 7 * counts.std()


def test_the_accounting_adds_up_to_the_days_budget():
    settings = PrivacySettings(epsilon_per_day=0.9)
    for stat in ("customers", "orders", "revenue"):
        assert privacy_loss(stat, settings) == pytest.approx(0.1, rel=1e-6)
    cells = pd.DataFrame(
        {"dimension": ["channel"], "value": ["web"], "customers": [50], "orders": [60], "revenue": [900.0]}
    )
    _, accounting = release(cells, settings)
    assert (
        accounting["epsilon_spent"] == pytest.approx(0.9, rel=1e-6)
        and accounting["epsilon_spent"] <= 0.9 + 1e-9
    )


def test_each_customer_day_counts_once_per_dimension_with_bounded_contributions():
    orders = pd.DataFrame(
        {
            "order_date": [DAY] * 6,
            "customer_id": ["a", "a", "a", "a", "b", None],
            "channel": ["web", "app", "app", "app", "web", "web"],
            "region": ["north"] * 4 + ["south", "south"],
            "order_total": [10.0, 400.0, 300.0, 5.0, 20.0, 99.0],
        }
    )
    days = customer_days(orders, pd.DataFrame({"customer_id": ["a"], "segment": ["loyal"]}))
    assert len(days) == 2  # the guest order is left out: it cannot be bounded per person
    a = days.set_index("customer_id").loc["a"]
    assert (a["channel"], a["orders"], a["revenue"], a["segment"]) == ("app", 4, 715.0, "loyal")
    cells = true_cells(days, PrivacySettings(max_orders=3, max_revenue=500.0)).set_index(
        ["dimension", "value"]
    )
    assert cells.loc[("channel", "app"), "orders"] == 3 and cells.loc[("channel", "app"), "revenue"] == 500.0
    for dim in DIMENSIONS:
        assert cells.loc[dim, "customers"].sum() == 2  # disjoint cells: parallel composition holds
    assert cells.loc[("segment", "unsegmented"), "customers"] == 1


def test_cells_under_the_minimum_noisy_count_are_suppressed():
    settings = PrivacySettings(min_customers=10)
    cells = pd.DataFrame(
        {
            "dimension": ["region"] * 40,
            "value": [f"r{i}" for i in range(40)],
            "customers": [0] * 20 + [1000] * 20,
            "orders": [0] * 20 + [1200] * 20,
            "revenue": [0.0] * 20 + [5e4] * 20,
        }
    )
    released, accounting = release(cells, settings)
    assert (released["customers"] >= 10).all()
    assert accounting["cells_released"] + accounting["cells_suppressed"] == 40
    assert {f"r{i}" for i in range(20, 40)} <= set(released["value"])  # large cells always survive
    assert accounting["cells_suppressed"] >= 10  # most empty cells are withheld
    assert (released[["customers", "orders", "revenue"]] >= 0).all().all()


def _orders(con, extra: int = 0) -> None:
    rng = np.random.default_rng(0)
    n = 600 + extra
    frame = pd.DataFrame(
        {
            "order_date": [DAY] * n,
            "customer_id": [f"c{i % 300}" for i in range(n)],
            "channel": rng.choice(["web", "app", "email"], n),
            "region": rng.choice(["north", "south"], n),
            "order_total": rng.gamma(2.0, 30.0, n),
            "is_cancelled": [False] * n,
        }
    )
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.register("orders_frame", frame)
    con.execute("CREATE OR REPLACE TABLE marts.fct_orders AS SELECT * FROM orders_frame")


def test_a_rerun_on_the_same_data_spends_nothing_and_a_restatement_spends_within_the_cap(tmp_path):
    settings = PrivacySettings(epsilon_per_day=1.0, max_epsilon_per_day_total=2.0)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        _orders(con)
        first, info = partner_release_day(con, DAY, settings)
        assert info["action"] == "released" and first is not None and len(first) > 0
        stored = con.execute(f"SELECT * FROM {RELEASES} ORDER BY ALL").df()
        again, info = partner_release_day(con, DAY, settings)
        assert again is None and info["action"].startswith("kept: same data")
        pd.testing.assert_frame_equal(stored, con.execute(f"SELECT * FROM {RELEASES} ORDER BY ALL").df())
        assert con.execute(f"SELECT count(*), sum(epsilon) FROM {LEDGER}").fetchall()[0][0] == 1
        _orders(con, extra=5)  # late orders restate the day
        _, info = partner_release_day(con, DAY, settings)
        assert info["action"].startswith("restated") and info["epsilon_spent_total"] == pytest.approx(2.0)
        _orders(con, extra=9)  # another restatement would pass the cap: the last release stands
        kept, info = partner_release_day(con, DAY, settings)
        assert kept is None and "cap" in info["action"]
        count, total = con.execute(f"SELECT count(*), sum(epsilon) FROM {LEDGER}").fetchall()[0]
        assert count == 2 and total == pytest.approx(2.0)
