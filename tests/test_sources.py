"""Unit tests of the landing sources (no Dagster): the simulated store and the Online Retail replay.

The simulator is checked against its own ground truth (tastes, price sensitivity, stock) and against the
landing contract; the replay is checked against the CSV read independently with pandas.
"""

from __future__ import annotations

import logging
import re
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.sources import SOURCE_NAMES, Source, get_source
from ml.sources.online_retail import DEFAULT_CSV, DEFAULT_YEAR_BEFORE, OnlineRetailReplay
from ml.sources.schema import CONTRACTS, OPEN_LOOP_TABLES
from ml.sources.simulated import SCALES, SimulatedStore, build_world

SIM_START = date(2025, 1, 1)
N_SIM_DAYS = 40


def _days(start: date, n: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]


def _row_spearman(a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    """Spearman correlation of each row of ``a`` with the same row of ``b`` (ties get average ranks)."""
    ra, rb = a.rank(axis=1).to_numpy(), b.rank(axis=1).to_numpy()
    ra, rb = ra - ra.mean(axis=1, keepdims=True), rb - rb.mean(axis=1, keepdims=True)
    return (ra * rb).sum(axis=1) / np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))


# ------------------------------------------------------------------------------------------------------------
# registry
# ------------------------------------------------------------------------------------------------------------


def test_registry_returns_configured_sources() -> None:
    assert SOURCE_NAMES == ("simulated", "online_retail")
    sim = get_source("simulated", scale="small", seed=7)
    assert isinstance(sim, SimulatedStore) and isinstance(sim, Source)
    assert (sim.name, sim.scale, sim.seed, sim.start_date, sim.end_date) == (
        "simulated",
        "small",
        7,
        SIM_START,
        None,
    )
    assert sim.tables == OPEN_LOOP_TABLES
    retail = get_source("online_retail")
    assert isinstance(retail, OnlineRetailReplay)
    assert (retail.start_date, retail.end_date) == (date(2009, 12, 1), date(2011, 12, 9))
    assert OnlineRetailReplay(year_before_path=None).start_date == date(2010, 12, 1)
    assert retail.tables == ("customers", "products", "orders", "order_items")
    with pytest.raises(ValueError, match="unknown source"):
        get_source("nope")
    with pytest.raises(ValueError, match="unknown scale"):
        get_source("simulated", scale="huge")


def test_days_outside_the_range_are_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        get_source("simulated").day_tables(date(2024, 12, 31))
    with pytest.raises(ValueError, match="outside"):
        get_source("online_retail").day_tables(date(2011, 12, 10))


# ------------------------------------------------------------------------------------------------------------
# simulated store
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> SimulatedStore:
    return SimulatedStore(scale="small", seed=42)


@pytest.fixture(scope="module")
def sim_days(sim: SimulatedStore) -> dict[date, dict[str, pd.DataFrame]]:
    """The first N_SIM_DAYS days of the small store, every table, as pandas frames."""
    return {
        day: {name: t.to_pandas() for name, t in sim.day_tables(day).items()}
        for day in _days(SIM_START, N_SIM_DAYS)
    }


def _concat(sim_days: dict[date, dict[str, pd.DataFrame]], table: str) -> pd.DataFrame:
    frames = [tables[table].assign(day=day) for day, tables in sim_days.items()]
    return pd.concat(frames, ignore_index=True)


def test_simulated_day_is_byte_identical_and_independent_of_history(tmp_path: Path) -> None:
    day = date(2025, 3, 5)
    first = tmp_path / "a"
    SimulatedStore("small", 42).write_day(day, first)
    build_world.cache_clear()  # rebuild the world too: nothing may depend on process state
    second = tmp_path / "b"
    other = SimulatedStore("small", 42)
    other.write_day(day + timedelta(days=10), second)  # a later day first: no hidden sequential state
    counts = other.write_day(day, second)
    assert counts["events"] > 0 and counts["orders"] > 0
    for table in OPEN_LOOP_TABLES:
        rel = Path("simulated", table, f"date={day.isoformat()}", "part-0.parquet")
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), table
    reseeded = tmp_path / "c"
    SimulatedStore("small", 43).write_day(day, reseeded)
    rel = Path("simulated", "events", f"date={day.isoformat()}", "part-0.parquet")
    assert (first / rel).read_bytes() != (reseeded / rel).read_bytes()


def test_simulated_files_match_the_contract_exactly(sim: SimulatedStore, tmp_path: Path) -> None:
    day = date(2025, 1, 1)  # the first day has rows in every table, suppliers included
    built = sim.day_tables(day)
    counts = sim.write_day(day, tmp_path)
    assert set(counts) == set(OPEN_LOOP_TABLES)
    for name in OPEN_LOOP_TABLES:
        contract = CONTRACTS[name]
        assert built[name].schema.equals(contract.schema), name  # built in contract types, not only cast
        path = tmp_path / "simulated" / name / "date=2025-01-01" / "part-0.parquet"
        assert pq.read_schema(path).equals(contract.schema), name
        assert counts[name] == built[name].num_rows, name
        assert name == "promotions" or counts[name] > 0, name  # no promotion runs on 2025-01-01


def test_simulated_keys_unique_and_required_values_present(sim_days: dict) -> None:
    for name in OPEN_LOOP_TABLES:
        contract = CONTRACTS[name]
        frame = _concat(sim_days, name)
        assert not frame.duplicated(list(contract.key)).any(), name
        for col in (*contract.key, *contract.required):
            assert frame[col].notna().all(), (name, col)
        for col in contract.non_negative:
            assert (frame[col] >= 0).all(), (name, col)
        if contract.time_column:  # every row's UTC date is the day of its file
            assert (frame[contract.time_column].dt.date == frame["day"]).all(), name


def test_simulated_event_volume_near_target_with_seasonality(sim: SimulatedStore) -> None:
    target = SCALES["small"].events_per_day

    def events(day: date) -> int:
        return sim.day_tables(day, ["events"])["events"].num_rows

    march_weekdays = [d for d in _days(date(2025, 3, 3), 14) if d.weekday() < 5]
    weekday_counts = [events(d) for d in march_weekdays]
    assert 0.8 * target < np.mean(weekday_counts) < 1.2 * target
    assert all(0.6 * target < n < 1.4 * target for n in weekday_counts)
    weekends = [events(d) for d in _days(date(2025, 3, 3), 14) if d.weekday() >= 5]
    assert np.mean(weekends) > 1.05 * np.mean(weekday_counts)
    december = [events(d) for d in _days(date(2025, 12, 8), 7)]
    assert np.mean(december) > 1.2 * np.mean(weekday_counts)


def test_simulated_references_point_to_things_already_seen(sim: SimulatedStore, sim_days: dict) -> None:
    customers, products = _concat(sim_days, "customers"), _concat(sim_days, "products")
    suppliers = _concat(sim_days, "suppliers")
    events, items = _concat(sim_days, "events"), _concat(sim_days, "order_items")
    assert len(suppliers) == SCALES["small"].n_suppliers and (suppliers["day"] == SIM_START).all()
    assert set(products["supplier_id"]) | set(products["alt_supplier_id"]) <= set(suppliers["supplier_id"])
    # Some customers and products arrive after the first day, so "seen by then" is a real constraint.
    late_customers = set(customers.loc[customers["day"] > SIM_START, "customer_id"])
    late_skus = set(products.loc[products["day"] > SIM_START, "sku"])
    assert late_customers & set(events["customer_id"]) and late_skus & set(events["sku"])

    first_cust = customers.set_index("customer_id")["first_seen_ts"]
    first_sku = products.set_index("sku")["first_seen_ts"]
    assert events["customer_id"].isin(first_cust.index).all()
    assert events["sku"].isin(first_sku.index).all() and items["sku"].isin(first_sku.index).all()
    assert (events["ts"] >= events["customer_id"].map(first_cust)).all()
    assert (events["ts"] >= events["sku"].map(first_sku)).all()
    assert (items["ts"] >= items["sku"].map(first_sku)).all()
    inventory = _concat(sim_days, "inventory")
    assert inventory["sku"].isin(first_sku.index).all()
    assert (inventory["day"] >= inventory["sku"].map(products.set_index("sku")["day"])).all()

    # A day late in the year, built alone: its references are among the rows first seen up to then.
    late_day = date(2025, 11, 28)
    seen_customers: set[str] = set()
    seen_skus: set[str] = set()
    for day in _days(SIM_START, (late_day - SIM_START).days + 1):
        ref = sim.day_tables(day, ["customers", "products"])
        seen_customers.update(ref["customers"].column("customer_id").to_pylist())
        seen_skus.update(ref["products"].column("sku").to_pylist())
    late = sim.day_tables(late_day, ["events", "order_items"])
    assert set(late["events"].column("customer_id").to_pylist()) <= seen_customers
    assert set(late["order_items"].column("sku").to_pylist()) <= seen_skus
    assert len(seen_skus) > len(first_sku)  # launches kept coming after the first 40 days


def test_simulated_funnel_order(sim_days: dict) -> None:
    events = _concat(sim_days, "events")
    counts = events["event_type"].value_counts()
    assert set(counts.index) == {"view", "cart", "purchase"}
    assert 0 < counts["purchase"] <= counts["cart"] <= counts["view"]
    # Within a session: each cart follows a view of the same sku, each purchase follows a cart of it.
    key = ["session_id", "sku"]
    first_ts = events.groupby(key + ["event_type"])["ts"].min().unstack()
    assert (first_ts["cart"].dropna().index.isin(first_ts["view"].dropna().index)).all()
    carted = first_ts.dropna(subset=["cart"])
    assert (carted["view"] < carted["cart"]).all()
    bought = first_ts.dropna(subset=["purchase"])
    assert (bought["cart"].notna() & (bought["cart"] < bought["purchase"])).all()
    # A session is one customer on one channel and device.
    per_session = events.groupby("session_id")[["customer_id", "channel", "device"]].nunique()
    assert (per_session == 1).all().all()


def test_simulated_orders_match_purchases_and_lines(sim_days: dict) -> None:
    events, orders, items = (_concat(sim_days, t) for t in ("events", "orders", "order_items"))
    purchases = events[events["event_type"] == "purchase"]
    assert len(items) == len(purchases)
    assert set(orders["session_id"]) == set(purchases["session_id"])
    assert orders["session_id"].is_unique
    assert set(orders["status"]) == {"placed", "cancelled"}
    assert 0.005 < (orders["status"] == "cancelled").mean() < 0.05
    # The order total is the sum of its lines each rounded to the cent, half up in exact decimal (what an invoice
    # shows, and what the staging models compute on every engine)
    from decimal import ROUND_HALF_UP, Decimal

    def cents(qty, price, discount) -> float:
        exact = (
            Decimal(int(qty)) * Decimal(str(price)) * (1 - Decimal(str(discount)).quantize(Decimal("0.0001")))
        )
        return float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))

    amounts = [
        cents(q, p, d) for q, p, d in zip(items["qty"], items["unit_price"], items["discount"], strict=True)
    ]
    lines = items.assign(amount=amounts)
    by_order = lines.groupby("order_id").agg(
        amount=("amount", "sum"), n=("line_no", "size"), top=("line_no", "max")
    )
    merged = orders.set_index("order_id").join(by_order, how="left")
    assert merged["amount"].notna().all()
    assert (merged["order_total"] - merged["amount"]).abs().max() <= 0.01
    assert (merged["n"] == merged["top"]).all()  # line numbers run 1..n
    assert items["qty"].between(1, 5).all() and (items["qty"] == 1).mean() > 0.5
    # Lines carry the list price and the warehouse of the customer's region.
    products = _concat(sim_days, "products").set_index("sku")
    assert np.allclose(items["unit_price"], items["sku"].map(products["price"]))
    region_wh = items.merge(orders[["order_id", "region"]], on="order_id").groupby("region")["warehouse_id"]
    assert (region_wh.nunique() == 1).all()


def test_simulated_discounts_come_from_active_promotions(sim_days: dict) -> None:
    items, orders, promos = (_concat(sim_days, t) for t in ("order_items", "orders", "promotions"))
    products = _concat(sim_days, "products").set_index("sku")
    assert len(promos) > 0 and promos["discount_pct"].between(0.05, 0.5).all()
    lines = items.merge(orders[["order_id", "channel"]], on="order_id")
    lines["category"] = lines["sku"].map(products["category"])
    # A promotion for "all" channels applies to every channel; the best applicable one wins.
    channels = sorted(set(orders["channel"]))
    promos = promos.assign(channel=promos["channel"].map(lambda c: channels if c == "all" else [c])).explode(
        "channel"
    )
    best = promos.groupby(["day", "category", "channel"], as_index=False)["discount_pct"].max()
    expected = lines.merge(best, on=["day", "category", "channel"], how="left")["discount_pct"].fillna(0.0)
    assert (expected > 0).sum() > 10
    np.testing.assert_allclose(lines["discount"], expected)


def test_simulated_purchases_recover_true_tastes(sim: SimulatedStore, sim_days: dict) -> None:
    world = sim.world
    events = _concat(sim_days, "events")
    bought = events[events["event_type"] == "purchase"]
    counts = (
        bought.assign(category=bought["sku"].map(world.product_category))
        .groupby(["customer_id", "category"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=list(world.categories), fill_value=0)
    )
    counts = counts[counts.sum(axis=1) >= 10]
    assert len(counts) > 200
    truth = world.true_category_affinity.loc[counts.index]
    recovered = np.nanmean(_row_spearman(counts, truth))
    shuffled = truth.sample(frac=1.0, random_state=0).set_axis(truth.index)
    baseline = np.nanmean(_row_spearman(counts, shuffled))
    assert recovered > 0.45 and recovered > baseline + 0.35

    # Price sensitivity: sensitive customers view cheaper items (relative to their category's median).
    views = events[events["event_type"] == "view"]
    rel = pd.Series(world.rel_price, index=world.skus)
    mean_log_rel = np.log(views["sku"].map(rel)).groupby(views["customer_id"]).mean()
    corr = mean_log_rel.corr(world.price_sensitivity.loc[mean_log_rel.index], method="spearman")
    assert corr < -0.3


def test_simulated_inventory_has_stockouts_and_blocks_carts(sim: SimulatedStore, sim_days: dict) -> None:
    inventory = _concat(sim_days, "inventory")
    n_wh = SCALES["small"].n_warehouses
    assert (inventory.groupby(["day", "sku"]).size() == n_wh).all()
    out = (inventory["on_hand"] == 0).mean()
    assert 0.005 < out < 0.3
    assert (inventory["on_order"] > 0).mean() > 0.1
    # Stock moves: a sku x warehouse is not constant over 40 days.
    assert (inventory.groupby(["sku", "warehouse_id"])["on_hand"].nunique() > 1).mean() > 0.3
    # Nobody carts an item that was out of stock at their warehouse at the end of the previous day.
    world = sim.world
    events = _concat(sim_days, "events")
    carts = events[(events["event_type"] == "cart") & (events["day"] > SIM_START)].copy()
    wh_of = pd.Series(world.customer_warehouse, index=world.customer_ids)
    carts["warehouse_id"] = carts["customer_id"].map(wh_of).map(lambda i: f"WH{i + 1:02d}")
    carts["prev_day"] = carts["day"] - timedelta(days=1)
    empty = inventory[inventory["on_hand"] == 0][["day", "sku", "warehouse_id"]].rename(
        columns={"day": "prev_day"}
    )
    assert len(empty) > 0
    assert len(carts.merge(empty, on=["prev_day", "sku", "warehouse_id"])) == 0


def test_simulated_reference_rows_are_plausible(sim_days: dict) -> None:
    customers, products, suppliers = (_concat(sim_days, t) for t in ("customers", "products", "suppliers"))
    first = customers["day"] == SIM_START
    assert 0.5 < first.sum() / SCALES["small"].n_customers < 0.7  # ~60% exist from the start
    assert customers["email"].str.fullmatch(r"[a-z]+\.[a-z]+\d+@example\.com").all()
    assert customers["email"].is_unique
    assert customers["phone"].str.fullmatch(r"\+44 7\d{3} \d{6}|\+353 8\d \d{3} \d{4}").all()
    assert set(customers["preferred_device"]) == {"app", "web_mobile", "desktop"}
    assert customers.groupby("region")["country"].nunique().max() == 1
    assert 0.8 < (products["day"] == SIM_START).sum() / SCALES["small"].n_products < 0.9
    assert products["category"].nunique() == 20 and (products["price"] > 0).all()
    assert (products["title"].str.len() > 10).all()
    # The description names the category's range, which is what text features will pick up.
    assert all(
        cat.replace("_", " ") in text
        for cat, text in zip(products["category"], products["description"], strict=True)
    )
    lead = suppliers.set_index("supplier_id")["lead_time_days"]
    assert lead.between(2, 30).all() and (suppliers["min_order_qty"] >= 1).all()
    assert (products["supplier_id"] != products["alt_supplier_id"]).all()
    assert (products["lead_time_days"] == products["supplier_id"].map(lead)).all()
    assert (products["alt_supplier_id"].map(lead) != products["lead_time_days"]).mean() > 0.95


# ------------------------------------------------------------------------------------------------------------
# Online Retail replay
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def retail() -> OnlineRetailReplay:
    return OnlineRetailReplay()


@pytest.fixture(scope="module")
def year_one() -> pd.DataFrame:
    """Online Retail (I) read independently, with the recipe of its SOURCE.md."""
    return pd.read_csv(
        DEFAULT_CSV,
        dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": "Int64"},
        parse_dates=["InvoiceDate"],
    )


@pytest.fixture(scope="module")
def year_before() -> pd.DataFrame:
    """Online Retail II's first sheet read independently, up to the day before (I) starts (its SOURCE.md)."""
    ii = pd.read_parquet(DEFAULT_YEAR_BEFORE)
    ii = ii[ii["InvoiceDate"] < "2010-12-01"]
    return pd.DataFrame(
        {
            "InvoiceNo": ii["Invoice"],
            "StockCode": ii["StockCode"],
            "Quantity": ii["Quantity"],
            "InvoiceDate": ii["InvoiceDate"],
            "UnitPrice": ii["Price"],
            "CustomerID": ii["Customer ID"].astype("Int64"),
        }
    )


@pytest.fixture(scope="module")
def raw(year_before: pd.DataFrame, year_one: pd.DataFrame) -> pd.DataFrame:
    """Both years, each overlap day once."""
    return pd.concat([year_before, year_one[list(year_before.columns)]], ignore_index=True)


@pytest.fixture(scope="module")
def retail_all(retail: OnlineRetailReplay) -> dict[str, pd.DataFrame]:
    """Every day of the replay, built through the per-day API and concatenated (no files written)."""
    parts: dict[str, list[pa.Table]] = {t: [] for t in retail.tables}
    days: dict[str, list[date]] = {t: [] for t in retail.tables}
    n_days = (retail.end_date - retail.start_date).days + 1
    for day in _days(retail.start_date, n_days):
        for name, table in retail.day_tables(day).items():
            parts[name].append(table)
            days[name].extend([day] * table.num_rows)
    return {name: pa.concat_tables(parts[name]).to_pandas().assign(day=days[name]) for name in parts}


def test_retail_replay_keeps_every_line_of_both_years(
    retail_all: dict, raw: pd.DataFrame, year_one: pd.DataFrame
) -> None:
    items = retail_all["order_items"]
    assert len(items) == 1_044_847 == len(raw) == 502_938 + 541_909
    assert items["day"].nunique() == 604 == 299 + 305
    assert items["qty"].sum() == raw["Quantity"].sum()
    assert np.isclose((items["qty"] * items["unit_price"]).sum(), (raw["Quantity"] * raw["UnitPrice"]).sum())
    assert len(retail_all["orders"]) == 53_628 == raw["InvoiceNo"].nunique() == 27_728 + 25_900
    assert retail_all["orders"]["order_id"].is_unique
    customers = retail_all["customers"]
    assert customers["customer_id"].is_unique
    assert set(customers["customer_id"]) == set(raw["CustomerID"].dropna().astype(str))
    products = retail_all["products"]
    assert products["sku"].is_unique and set(products["sku"]) == set(raw["StockCode"])
    assert not items.duplicated(["order_id", "line_no"]).any()
    # the nine days both files hold come once, as (I) has them
    overlap = items[(items["day"] >= date(2010, 12, 1)) & (items["day"] <= date(2010, 12, 9))]
    in_one = year_one[year_one["InvoiceDate"] < "2010-12-10"]
    assert len(overlap) == len(in_one) == 22_523
    assert list(overlap["order_id"]) == list(in_one["InvoiceNo"])
    # the year-one days are (I) line for line
    later = items[items["day"] >= date(2010, 12, 1)]
    assert len(later) == 541_909 and list(later["sku"]) == list(year_one["StockCode"])


def test_retail_dirt_is_kept(retail_all: dict, raw: pd.DataFrame) -> None:
    orders, items = retail_all["orders"], retail_all["order_items"]
    cancelled = orders["status"] == "cancelled"
    assert cancelled.sum() == 3_836 + 4_456 and orders.loc[cancelled, "order_id"].str.startswith("C").all()
    assert orders["customer_id"].isna().sum() > 1_000
    assert (items["qty"] <= 0).sum() == 10_624 + 11_933 == (raw["Quantity"] <= 0).sum()
    assert (items["unit_price"] <= 0).sum() == 2_517 + 3_512 == (raw["UnitPrice"] <= 0).sum()
    assert items.duplicated(["order_id", "sku", "qty", "unit_price", "ts"]).sum() > 0  # exact duplicate lines
    assert items["discount"].isna().all() and items["warehouse_id"].isna().all()
    assert orders["session_id"].isna().all() and set(orders["currency"]) == {"GBP"}
    customers = retail_all["customers"]
    assert customers[["email", "phone", "preferred_device"]].isna().all().all()  # nothing invented


def test_the_year_before_reads_in_year_one_conventions(retail_all: dict) -> None:
    products = retail_all["products"].set_index("sku")
    # its copy kept a trailing space that (I) trims; "nan" was a missing description, not a title
    assert products.loc["22041", "title"] == 'RECORD FRAME 7" SINGLE SIZE'
    assert not products["title"].dropna().str.endswith(" ").any()
    assert "nan" not in set(products["title"].dropna())
    assert products.loc["85048", "day"] == date(2009, 12, 1)
    # a customer of both years is first seen once, in the year before
    customer = retail_all["customers"].set_index("customer_id").loc["17850"]
    assert str(customer["first_seen_ts"]) == "2009-12-05 12:28:00+00:00" and customer["day"] == date(
        2009, 12, 5
    )


def test_retail_hand_checked_day(retail: OnlineRetailReplay, year_one: pd.DataFrame) -> None:
    raw = year_one
    day = date(2011, 6, 14)  # a summer Tuesday: British Summer Time, UTC = local - 1h
    expected = raw[raw["InvoiceDate"].dt.date == day]
    built = retail.day_tables(day)
    items, orders = built["order_items"].to_pandas(), built["orders"].to_pandas()
    assert len(items) == len(expected) > 1_000
    assert list(items["order_id"]) == list(expected["InvoiceNo"])  # file order kept
    assert list(items["sku"]) == list(expected["StockCode"])
    utc = (expected["InvoiceDate"] - pd.Timedelta(hours=1)).dt.tz_localize("UTC")
    assert (items["ts"].to_numpy() == utc.to_numpy()).all()
    assert len(orders) == expected["InvoiceNo"].nunique()
    totals = (expected["Quantity"] * expected["UnitPrice"]).groupby(expected["InvoiceNo"]).sum().round(2)
    assert np.allclose(orders.set_index("order_id")["order_total"], totals.loc[orders["order_id"]].to_numpy())
    assert items.groupby("order_id")["line_no"].apply(lambda s: list(s) == list(range(1, len(s) + 1))).all()


def test_retail_first_day_rows_of_year_one_alone(year_one: pd.DataFrame) -> None:
    raw, retail = year_one, OnlineRetailReplay(year_before_path=None)
    built = {k: v.to_pandas() for k, v in retail.day_tables(date(2010, 12, 1)).items()}
    first_invoice = built["order_items"][built["order_items"]["order_id"] == "536365"]
    assert list(first_invoice["line_no"]) == list(range(1, 8))
    assert str(first_invoice["ts"].iloc[0]) == "2010-12-01 08:26:00+00:00"  # winter: UTC = local
    order = built["orders"].set_index("order_id").loc["536365"]
    assert (order["customer_id"], order["status"], order["country"]) == ("17850", "placed", "United Kingdom")
    assert order["order_total"] == round(float((first_invoice["qty"] * first_invoice["unit_price"]).sum()), 2)
    customer = built["customers"].set_index("customer_id").loc["17850"]
    assert (
        str(customer["first_seen_ts"]) == "2010-12-01 08:26:00+00:00"
        and customer["country"] == "United Kingdom"
    )
    sku_rows = raw[(raw["StockCode"] == "85123A") & (raw["InvoiceDate"].dt.date == date(2010, 12, 1))]
    product = built["products"].set_index("sku").loc["85123A"]
    assert product["title"] == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert product["price"] == sku_rows.loc[sku_rows["UnitPrice"] > 0, "UnitPrice"].median()
    assert pd.isna(product["category"]) and pd.isna(product["description"])


def test_retail_saturday_writes_empty_files_and_logs(
    retail: OnlineRetailReplay, tmp_path: Path, caplog
) -> None:
    with caplog.at_level(logging.INFO, logger="ml.sources"):
        written = retail.write_days(date(2010, 12, 3), date(2010, 12, 5), tmp_path)
    assert [r.getMessage().split()[1] for r in caplog.records] == ["2010-12-03", "2010-12-04", "2010-12-05"]
    saturday = written[date(2010, 12, 4)]
    assert saturday == dict.fromkeys(retail.tables, 0)
    assert written[date(2010, 12, 5)]["order_items"] > 0
    for table in retail.tables:
        path = tmp_path / "online_retail" / table / "date=2010-12-04" / "part-0.parquet"
        assert pq.read_table(path).num_rows == 0
        assert pq.read_schema(path).equals(CONTRACTS[table].schema)
    assert not (tmp_path / "online_retail" / "events").exists()
    assert re.search(r"order_items=\d+", caplog.records[0].getMessage())
