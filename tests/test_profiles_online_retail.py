"""RFM on the real Online Retail data matches a direct pandas computation from the raw CSV.

The replay's days go through the landing zone, the raw loader and a real dbt build (tests/warehouses.py) and are
profiled as of 2011-01-10; the reference is computed here from the CSV alone, with the cleaning rule of
the marts (no 'C' invoice, quantity > 0, unit price > 0, known customer) and money rounded per line.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.dbt import build_warehouse
from ml.profiles import user_profiles
from ml.sources.online_retail import DEFAULT_CSV, OnlineRetailReplay

START, AS_OF = date(2010, 12, 1), date(2011, 1, 10)


@pytest.fixture(scope="module")
def profiles(tmp_path_factory) -> pd.DataFrame:
    warehouse = build_warehouse(
        tmp_path_factory.mktemp("online_retail"), OnlineRetailReplay(year_before_path=None), START, AS_OF
    )
    con = duckdb.connect(str(warehouse))
    summary = user_profiles(con, AS_OF)
    assert summary["row_count"] > 1000
    frame = con.execute("select * from features.user_profiles where as_of_date = ?", [AS_OF]).df()
    con.close()
    return frame.set_index("customer_id")


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    raw = pd.read_csv(
        DEFAULT_CSV,
        dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": "Int64"},
        parse_dates=["InvoiceDate"],
    )
    raw["day"] = raw["InvoiceDate"].dt.date
    clean = raw[
        ~raw["InvoiceNo"].str.startswith("C")
        & (raw["Quantity"] > 0)
        & (raw["UnitPrice"] > 0)
        & raw["CustomerID"].notna()
        & (raw["day"] <= AS_OF)
    ].copy()
    clean["customer_id"] = clean["CustomerID"].astype(str)
    clean["amount"] = (clean["Quantity"] * clean["UnitPrice"]).round(2)
    out = {}
    for days in (30, 90, 365):
        window = clean[clean["day"] > AS_OF - timedelta(days=days)]
        grouped = window.groupby("customer_id")
        out[f"orders_{days}d"] = grouped["InvoiceNo"].nunique()
        out[f"spend_{days}d"] = grouped["amount"].sum()
    ref = pd.DataFrame(out).fillna(0)
    last = clean.groupby("customer_id")["day"].max()
    ref["recency_days"] = [(AS_OF - d).days for d in last.reindex(ref.index)]
    # Scores as documented: ceil(5 * cume_dist) among buyers of the last 365 days.
    n = len(ref)
    ref["f_score"] = np.ceil(5 * ref["orders_365d"].rank(method="max") / n).astype(int)
    ref["m_score"] = np.ceil(5 * ref["spend_365d"].rank(method="max") / n).astype(int)
    ref["r_score"] = np.ceil(5 * (-ref["recency_days"]).rank(method="max") / n).astype(int)
    return ref


def _hand_checked(ref: pd.DataFrame) -> list[str]:
    """Most invoices, highest spend, a one-off buyer, and two who last bought before the 30-day window."""
    lapsed = ref[ref["orders_30d"] == 0].sort_values(["spend_90d", "recency_days"], ascending=False)
    one_off = ref[ref["orders_365d"] == 1].sort_index()
    picks = [
        ref["orders_365d"].idxmax(),
        ref["spend_365d"].idxmax(),
        one_off.index[0],
        *lapsed.index[:2],
    ]
    assert len(set(picks)) >= 4
    return list(dict.fromkeys(picks))


def test_rfm_matches_pandas_on_the_raw_csv(profiles, reference):
    for customer in _hand_checked(reference):
        got, want = profiles.loc[customer], reference.loc[customer]
        for column in ("orders_30d", "orders_90d", "orders_365d", "recency_days"):
            assert int(got[column]) == int(want[column]), (customer, column)
        for column in ("spend_30d", "spend_90d", "spend_365d"):
            assert math.isclose(float(got[column]), float(want[column]), abs_tol=0.005), (customer, column)
        for column in ("r_score", "f_score", "m_score"):
            assert int(got[column]) == int(want[column]), (customer, column)


def test_every_buyer_matches_pandas(profiles, reference):
    """Not only the hand-picked ones: all customers who bought by the as-of date agree."""
    got = profiles.loc[reference.index]
    np.testing.assert_array_equal(got["orders_365d"].to_numpy(), reference["orders_365d"].to_numpy())
    np.testing.assert_allclose(got["spend_90d"].to_numpy(float), reference["spend_90d"].to_numpy(), atol=0.01)
    np.testing.assert_array_equal(got["recency_days"].to_numpy(), reference["recency_days"].to_numpy())
    assert set(profiles.index[profiles["orders_365d"] > 0]) == set(reference.index)
    # Online Retail has no clickstream and no categories: those profile parts stay empty, not invented.
    assert profiles["category_affinity"].isna().all()
    assert (profiles["preferred_channel"].dropna() == "online").all()
