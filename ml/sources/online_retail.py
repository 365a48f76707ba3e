"""Replay of the real UCI Online Retail transactions (2010-12-01 .. 2011-12-09), one invoice day at a time.

Why a replay: the simulator is clean by construction; this file is dirty in real ways (cancellation invoices
``C...``, negative quantities, zero and negative prices, guest checkouts without a customer id, exact duplicate
lines, odd stock codes such as ``POST`` or ``M``). The platform must survive it, so the replay keeps every CSV
line verbatim and invents nothing: columns the data does not have (email, category, discount, warehouse ...)
are null, and derived values (order totals, first-seen customers and products) are computed from the lines.

Time: ``InvoiceDate`` is the UK shop's local clock. It is localised to Europe/London and converted to UTC, so
summer invoices move one hour earlier. The partition day is the local invoice date; the shop traded between
06:00 and 21:00 local time, so the local and the UTC date coincide for every line of the file.

The CSV (7.5 MB gzip) is parsed once per process and all four tables are precomputed, sorted by day, so that
building a day is a slice (the whole year replays in a second or two).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ml.sources import Source
from ml.sources.schema import CONTRACTS, ONLINE_RETAIL_CHANNEL

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "data" / "online_retail" / "online_retail.csv.gz"
"""The repo copy of the file (see ``data/online_retail/SOURCE.md`` for origin, columns and counts)."""

LOCAL_TZ = "Europe/London"
CURRENCY = "GBP"
TABLES: tuple[str, ...] = ("customers", "products", "orders", "order_items")


def read_csv(path: Path = DEFAULT_CSV) -> pd.DataFrame:
    """Read the CSV with the dtypes SOURCE.md prescribes (string codes, nullable integer customer id)."""
    return pd.read_csv(
        path,
        dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": "Int64"},
        parse_dates=["InvoiceDate"],
    )


@dataclass(frozen=True)
class _DayIndexed:
    """A table sorted by day with the day of each row (as a date ordinal), so a day is a slice."""

    table: pa.Table
    day_ordinals: np.ndarray

    def day(self, day: date) -> pa.Table:
        lo, hi = np.searchsorted(self.day_ordinals, [day.toordinal(), day.toordinal() + 1], side="left")
        return self.table.slice(int(lo), int(hi - lo))


def _indexed(frame: pd.DataFrame, days: pd.Series, table_name: str) -> _DayIndexed:
    """Sort ``frame`` by ``days`` (stable: the order within a day is kept) and convert it to the contract."""
    ordinals = np.fromiter((d.toordinal() for d in days), dtype=np.int64, count=len(days))
    order = np.argsort(ordinals, kind="stable")
    frame = frame.iloc[order].reset_index(drop=True)
    schema = CONTRACTS[table_name].schema
    table = pa.Table.from_pandas(frame[list(schema.names)], preserve_index=False).cast(schema)
    return _DayIndexed(table=table, day_ordinals=ordinals[order])


@lru_cache(maxsize=2)
def _load(path: str) -> dict[str, _DayIndexed]:
    """Parse the CSV and derive the four landing tables, each sorted by its partition day."""
    raw = read_csv(Path(path))
    raw["row"] = np.arange(len(raw))
    # Local clock -> instant. The file has no time inside a DST gap or overlap (trading hours are 06-21),
    # so "raise" costs nothing and makes any surprise loud instead of silently shifting an hour.
    local = raw["InvoiceDate"].dt.tz_localize(LOCAL_TZ, ambiguous="raise", nonexistent="raise")
    raw["ts"] = local.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    raw["day"] = raw["InvoiceDate"].dt.date
    raw["customer_id"] = (
        raw["CustomerID"].astype("string").astype(object).where(raw["CustomerID"].notna(), None)
    )

    # order_items: every line, verbatim; line_no is the position within its invoice in file order.
    items = pd.DataFrame(
        {
            "order_id": raw["InvoiceNo"],
            "line_no": raw.groupby("InvoiceNo", sort=False).cumcount().to_numpy() + 1,
            "ts": raw["ts"],
            "sku": raw["StockCode"],
            "qty": raw["Quantity"],
            "unit_price": raw["UnitPrice"],
            "discount": pd.Series(np.nan, index=raw.index, dtype="float64"),
            "warehouse_id": pd.Series(None, index=raw.index, dtype=object),
        }
    )

    # orders: one per invoice, in order of first appearance; the invoice time is its earliest line
    # (43 invoices have lines that straddle a minute boundary, none straddles midnight).
    raw["amount"] = raw["Quantity"] * raw["UnitPrice"]
    by_invoice = raw.groupby("InvoiceNo", sort=False)
    head = by_invoice.agg(
        ts=("ts", "min"),
        day=("day", "min"),
        customer_id=("customer_id", "first"),
        country=("Country", "first"),
        order_total=("amount", "sum"),
    ).reset_index()
    orders = pd.DataFrame(
        {
            "order_id": head["InvoiceNo"],
            "ts": head["ts"],
            "customer_id": head["customer_id"],
            "session_id": pd.Series(None, index=head.index, dtype=object),
            "channel": ONLINE_RETAIL_CHANNEL,
            "region": head["country"],
            "country": head["country"],
            "currency": CURRENCY,
            "order_total": head["order_total"].round(2),
            "status": np.where(head["InvoiceNo"].str.startswith("C"), "cancelled", "placed"),
        }
    )

    # customers: first seen at their earliest line (any invoice, cancellations included).
    in_time_order = raw.sort_values(["ts", "row"], kind="stable")
    known = in_time_order[raw["CustomerID"].notna()]
    first_cust = known.groupby("customer_id", sort=False).first().reset_index()
    customers = pd.DataFrame(
        {
            "customer_id": first_cust["customer_id"],
            "first_seen_ts": first_cust["ts"],
            "email": None,
            "phone": None,
            "region": first_cust["Country"],
            "country": first_cust["Country"],
            "preferred_device": None,
        }
    )

    # products: first seen at their earliest line; GroupBy.first skips nulls, so the title is the first
    # non-null description; the price is the median positive unit price over the first day's lines.
    first_prod = in_time_order.groupby("StockCode", sort=False).agg(
        title=("Description", "first"), first_seen_ts=("ts", "first"), day=("day", "first")
    )
    on_first_day = raw[(raw["day"] == raw["StockCode"].map(first_prod["day"])) & (raw["UnitPrice"] > 0)]
    first_price = on_first_day.groupby("StockCode")["UnitPrice"].median()
    first_prod = first_prod.reset_index()
    products = pd.DataFrame(
        {
            "sku": first_prod["StockCode"],
            "title": first_prod["title"],
            "description": None,
            "category": None,
            "brand": None,
            "price": first_prod["StockCode"].map(first_price).astype("float64"),
            "currency": CURRENCY,
            "supplier_id": None,
            "alt_supplier_id": None,
            "lead_time_days": pd.Series(pd.NA, index=first_prod.index, dtype="Int32"),
            "first_seen_ts": first_prod["first_seen_ts"],
        }
    )

    return {
        "order_items": _indexed(items, raw["day"], "order_items"),
        "orders": _indexed(orders, head["day"], "orders"),
        "customers": _indexed(customers, first_cust["day"], "customers"),
        "products": _indexed(products, first_prod["day"], "products"),
    }


class OnlineRetailReplay(Source):
    """The UCI Online Retail file, replayed by local invoice date; see the module docstring."""

    name = "online_retail"
    start_date = date(2010, 12, 1)
    end_date: date | None = date(2011, 12, 9)
    tables = TABLES

    def __init__(self, csv_path: Path | None = None) -> None:
        self.csv_path = Path(csv_path) if csv_path is not None else DEFAULT_CSV

    def day_tables(self, day: date, tables: Iterable[str] | None = None) -> dict[str, pa.Table]:
        self.check_day(day)
        wanted = tuple(tables) if tables is not None else self.tables
        unknown = set(wanted) - set(self.tables)
        if unknown:
            raise ValueError(f"{self.name} does not deliver {sorted(unknown)}")
        data = _load(str(self.csv_path))
        return {name: data[name].day(day) for name in wanted}
