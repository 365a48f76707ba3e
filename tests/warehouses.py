"""Warehouses built the real way for tests: landing files, the raw loader, dbt (no Dagster), then copied per test.

Tests of the profiles, the quality suites and the supply and recommend steps read marts and features that a real
``dbt build`` made, so a change in a dbt model is a change they see.
"""

from __future__ import annotations

import datetime as dt
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from ml.dbt import build_warehouse, load_and_build
from ml.ingest.raw_loader import create_raw_tables
from ml.sources.landing import write_table
from ml.sources.schema import CONTRACTS

SIM_DAYS = 68
"""Days of the small simulated store in the session's warehouse: enough for the churn model's out-of-time AUC
(a snapshot 60 days back with a week of history before it)."""


MARTS = "tag:staging tag:intermediate tag:marts"
"""The dbt models up to the marts (what the daily job's first dbt build makes; the feature layer is the second)."""


def build_simulated(data_dir: Path, days: int = SIM_DAYS, select: str | None = None) -> Path:
    """The small simulated store's first ``days`` days (seed 42, as the pipeline's tests run it) in
    ``data_dir/warehouse.duckdb``: dbt's models in ``select`` (default: every model)."""
    from ml.sources.simulated import START_DATE, SimulatedStore

    store = SimulatedStore(scale="small", seed=42)
    return build_warehouse(data_dir, store, START_DATE, START_DATE + timedelta(days=days - 1), select)


def copy_warehouse(template: Path, folder: Path) -> Path:
    """A private copy of a built warehouse (the template stays untouched for the other tests)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "warehouse.duckdb"
    shutil.copy(template, target)
    return target


def contract_table(table: str, rows: list[dict]) -> pa.Table:
    """Rows of a landing table, typed by its contract (missing columns are null)."""
    schema = CONTRACTS[table].schema
    return pa.Table.from_pylist([{c: r.get(c) for c in schema.names} for r in rows], schema=schema)


def build_handmade(
    data_dir: Path, day: date, tables: dict[str, list[dict]], source: str = "handmade"
) -> Path:
    """A warehouse from a hand-written landing day (``table -> rows``): the raw loader and dbt decide the rest, so
    a test states what the shop sent, never what the marts should hold."""
    for table, rows in tables.items():
        write_table(contract_table(table, rows), Path(data_dir) / "landing", source, table, day)
    return load_and_build(data_dir, source, tuple(tables), day, day)


def date_columns(
    con: duckdb.DuckDBPyConnection, schemas=("raw", "staging", "intermediate", "marts", "features")
):
    """``{table: [date columns]}`` of every table in ``schemas``."""
    rows = con.execute(
        "select table_schema || '.' || table_name, column_name from information_schema.columns "
        f"where data_type = 'DATE' and table_schema in ({', '.join('?' for _ in schemas)})",
        list(schemas),
    ).fetchall()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


def forget_after(con: duckdb.DuckDBPyConnection, day: date) -> int:
    """Delete every row dated after ``day`` (by any of its date columns) in every layer: the warehouse as it
    stood when ``day`` was the newest. Returns the rows deleted."""
    deleted = 0
    for table, columns in date_columns(con).items():
        where = " or ".join(f'"{c}" > ?' for c in columns)
        deleted += con.execute(f"delete from {table} where {where}", [day] * len(columns)).fetchall()[0][0]
    return deleted


# -- a four-day shop written straight into the raw layer (the quality suites' and dbt tests' fixture) ---------

DAYS = [dt.date(2025, 1, 1) + dt.timedelta(days=i) for i in range(4)]
D1, D2, D3, D4 = DAYS
PER_DAY = {"customers": 3, "products": 2, "events": 6, "orders": 2, "order_items": 4, "inventory": 2}


def _ts(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC)


def _insert(con: duckdb.DuckDBPyConnection, table: str, day: dt.date, rows: list[dict]) -> None:
    contract = CONTRACTS[table]
    cols = list(contract.columns)
    for i, row in enumerate(rows):
        ts = row[contract.time_column]
        values = [row.get(c) for c in cols] + [day, ts.astimezone(dt.UTC).date(), f"{table}/{day}.parquet", i]
        names = ", ".join(f'"{c}"' for c in cols) + ", _landing_date, _event_date, _source_file, _file_row"
        con.execute(f"INSERT INTO raw.{table} ({names}) VALUES ({', '.join('?' * len(values))})", values)


def build_four_day_shop(con: duckdb.DuckDBPyConnection) -> None:
    """Four clean days of raw tables (as the raw loader creates them) whose numbers agree with each other."""
    for contract in CONTRACTS.values():
        create_raw_tables(con, contract)
    _insert(
        con,
        "suppliers",
        D1,
        [{"supplier_id": "S1", "name": "Acme Ltd", "country": "GB", "lead_time_days": 5, "min_order_qty": 6,
          "first_seen_ts": _ts(D1, 0)}],
    )  # fmt: skip
    for n, day in enumerate(DAYS):
        tag = day.strftime("%m%d")
        customers = [f"C{tag}{i}" for i in range(3)]
        skus = [f"P{tag}{i}" for i in range(2)]
        _insert(con, "customers", day, [
            {"customer_id": c, "first_seen_ts": _ts(day, 8 + i), "email": f"{c.lower()}@example.com",
             "phone": f"+44 7000 00{i}", "region": "london", "country": "GB", "preferred_device": "app"}
            for i, c in enumerate(customers)
        ])  # fmt: skip
        _insert(con, "products", day, [
            {"sku": s, "title": f"thing {s}", "description": "a thing", "category": "home", "brand": "Lum",
             "price": 10.0 + i, "currency": "GBP", "supplier_id": "S1", "alt_supplier_id": None,
             "lead_time_days": 4, "first_seen_ts": _ts(day, 0)}
            for i, s in enumerate(skus)
        ])  # fmt: skip
        _insert(con, "events", day, [
            {"event_id": f"E{tag}{i:02d}", "ts": _ts(day, 9, i), "customer_id": customers[i % 3],
             "session_id": f"S{tag}{i % 3}", "sku": skus[i % 2], "event_type": ("view", "cart", "purchase")[i // 2],
             "channel": "web", "placement": "home", "region": "london", "device": "desktop"}
            for i in range(6)
        ])  # fmt: skip
        # Two orders of two lines each; the total is the sum of the rounded discounted lines.
        orders, lines = [], []
        for o in range(2):
            order_id = f"O{tag}{o}"
            order_lines = [(skus[0], 2, 10.0, 0.1), (skus[1], 1, 11.0, 0.0)]
            total = sum(round(q * p * (1 - d), 2) for _, q, p, d in order_lines)
            orders.append(
                {"order_id": order_id, "ts": _ts(day, 10 + o), "customer_id": customers[o],
                 "session_id": f"S{tag}{o}", "channel": "web", "region": "london", "country": "GB",
                 "currency": "GBP", "order_total": round(total, 2), "status": "placed"}
            )  # fmt: skip
            for line_no, (sku, qty, price, disc) in enumerate(order_lines, start=1):
                lines.append(
                    {"order_id": order_id, "line_no": line_no, "ts": _ts(day, 10 + o), "sku": sku, "qty": qty,
                     "unit_price": price, "discount": disc, "warehouse_id": "WH01"}
                )  # fmt: skip
        _insert(con, "orders", day, orders)
        _insert(con, "order_items", day, lines)
        _insert(con, "inventory", day, [
            {"snapshot_ts": dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC), "sku": s,
             "warehouse_id": "WH01", "on_hand": 5 + n, "on_order": 0}
            for s in skus
        ])  # fmt: skip
        _insert(con, "promotions", day, [
            {"promo_id": f"PR{tag}", "active_ts": _ts(day, 0), "category": "home", "discount_pct": 0.2,
             "channel": "all"}
        ])  # fmt: skip


# -- a shop selling known synthetic demand (the supply tests' fixture) ---------------------------------------

DEMAND_SHOP = "demand_shop"
"""The landing source name of the shop below."""
DEMAND_SHOP_TABLES = ("customers", "suppliers", "products", "orders", "order_items", "inventory")


def demand_shop_days(df, on_hand: float = 3.0) -> dict[date, dict[str, list[dict]]]:
    """The landing rows, day by day, of a shop whose SKUs sell the synthetic store's demand (``unique_id, ds, y,
    price``; :func:`ml.forecast.synthetic.synthetic_store`): one guest order per SKU and selling day at that day's
    price, the catalogue and its supplier (lead time 5 days) and one known customer on the first day, and the
    stock (``on_hand`` of every SKU in warehouse W1) at the end of the last day."""
    import pandas as pd

    df = df.assign(day=pd.to_datetime(df["ds"]).dt.date)
    first, last = df["day"].min(), df["day"].max()
    days: dict[date, dict[str, list[dict]]] = {
        d: {t: [] for t in DEMAND_SHOP_TABLES} for d in sorted(df["day"].unique())
    }
    opening = dt.datetime.combine(first, dt.time(0), tzinfo=dt.UTC)
    days[first]["customers"].append({"customer_id": "C1", "first_seen_ts": opening, "region": "london"})
    days[first]["suppliers"].append(
        {"supplier_id": "S1", "name": "Acme Ltd", "country": "GB", "lead_time_days": 5, "min_order_qty": 0,
         "first_seen_ts": opening}
    )  # fmt: skip
    for sku, rows in df.groupby("unique_id", sort=True):
        days[first]["products"].append(
            {"sku": sku, "title": f"thing {sku}", "description": "a thing", "category": "home", "brand": "Lum",
             "price": float(rows["price"].iloc[0]), "currency": "GBP", "supplier_id": "S1", "lead_time_days": 5,
             "first_seen_ts": opening}
        )  # fmt: skip
        days[last]["inventory"].append(
            {"snapshot_ts": dt.datetime.combine(last, dt.time(23, 59, 59), tzinfo=dt.UTC), "sku": sku,
             "warehouse_id": "W1", "on_hand": int(on_hand), "on_order": 0}
        )  # fmt: skip
    for row in df[df["y"] > 0].itertuples(index=False):
        order_id = f"O{row.day:%Y%m%d}-{row.unique_id}"
        at = dt.datetime.combine(row.day, dt.time(12), tzinfo=dt.UTC)
        days[row.day]["orders"].append(demand_order(order_id, at, None, int(row.y) * row.price))
        days[row.day]["order_items"].append(demand_line(order_id, at, row.unique_id, int(row.y), row.price))
    return days


def demand_order(order_id: str, at: dt.datetime, customer: str | None, total: float) -> dict:
    return {"order_id": order_id, "ts": at, "customer_id": customer, "channel": "web", "region": "london",
            "country": "GB", "currency": "GBP", "order_total": round(total, 2), "status": "placed"}  # fmt: skip


def demand_line(order_id: str, at: dt.datetime, sku: str, qty: int, price: float) -> dict:
    return {"order_id": order_id, "line_no": 1, "ts": at, "sku": sku, "qty": qty, "unit_price": float(price),
            "discount": 0.0, "warehouse_id": "W1"}  # fmt: skip


def land_day(data_dir: Path, day: date, tables: dict[str, list[dict]], source: str = DEMAND_SHOP) -> None:
    """Write (or write again) one landing day of ``source``, every table of it."""
    for table, rows in tables.items():
        write_table(contract_table(table, rows), Path(data_dir) / "landing", source, table, day)


def build_demand_shop(data_dir: Path, df) -> Path:
    """The synthetic demand as it would land, loaded and modelled by the raw loader and a real dbt build."""
    days = demand_shop_days(df)
    for day, tables in days.items():
        land_day(data_dir, day, tables)
    return load_and_build(data_dir, DEMAND_SHOP, DEMAND_SHOP_TABLES, min(days), max(days))


def reland(data_dir: Path, day: date, tables: dict[str, list[dict]]) -> Path:
    """Deliver ``day`` again with these rows (the day's files replaced, as an upstream re-send does), then load
    it and rebuild the dbt window around it, as the pipeline's run of that day would."""
    return reland_days(data_dir, {day: tables})


def reland_days(data_dir: Path, days: dict[date, dict[str, list[dict]]]) -> Path:
    """Deliver each of ``days`` again with its rows, then load and rebuild them in one window (first to last day),
    as one backfill run of that range would (the days between are loaded again as they are)."""
    for day, tables in days.items():
        land_day(data_dir, day, tables)
    return load_and_build(data_dir, DEMAND_SHOP, DEMAND_SHOP_TABLES, min(days), max(days))


def copy_shop(template_dir: Path, folder: Path) -> Path:
    """A private copy of a built shop: its landing files and its warehouse."""
    shutil.copytree(template_dir, folder, ignore=shutil.ignore_patterns("dbt"), dirs_exist_ok=True)
    return folder
