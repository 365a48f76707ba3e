"""Replay of the real UCI Online Retail transactions, two years (2009-12-01 .. 2011-12-09), one invoice day at a time.

Why a replay: the simulator is clean by construction; this file is dirty in real ways (cancellation invoices
``C...``, negative quantities, zero and negative prices, guest checkouts without a customer id, exact duplicate
lines, odd stock codes such as ``POST`` or ``M``). The platform must survive it, so the replay keeps every CSV
line verbatim and invents nothing: columns the data does not have (email, category, discount, warehouse ...)
are null, and derived values (order totals, first-seen customers and products) are computed from the lines.

Time: ``InvoiceDate`` is the UK shop's local clock. It is localised to Europe/London and converted to UTC, so
summer invoices move one hour earlier. The partition day is the local invoice date; the shop traded between
06:00 and 21:00 local time, so the local and the UTC date coincide for every line of the file.

Two files, one shop: Online Retail II's first sheet (``data/online_retail_ii``) holds 2009-12-01 .. 2010-12-09 and
Online Retail (I) (``data/online_retail``) 2010-12-01 .. 2011-12-09. The nine days both hold are identical rows, so
each is taken once: the year before up to 2010-11-30, (I) from 2010-12-01 (the day the single-year replay always
started, so its days keep their bytes except for what the earlier year changes: who and what was seen first).
The year before is read in (I)'s column names and conventions: its copy wrote missing descriptions as the text
"nan" (read as missing) and kept trailing spaces that (I) trimmed (trimmed here too, or a product first sold in
2009 would carry a title (I) never shows). ``OnlineRetailReplay(year_before_path=None)`` replays (I) alone.

The files (7.5 MB gzip CSV and 3.7 MB Parquet) are parsed once per process and all four tables are precomputed, sorted by day, so that
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
"""The repo copy of Online Retail (I) (see ``data/online_retail/SOURCE.md`` for origin, columns and counts)."""
DEFAULT_YEAR_BEFORE = (
    Path(__file__).resolve().parents[2] / "data" / "online_retail_ii" / "online_retail_ii_2009_2010.parquet"
)
"""The repo copy of Online Retail II's first sheet, 2009-12-01 .. 2010-12-09 (``data/online_retail_ii/SOURCE.md``)."""
FIRST_DAY_OF_I = date(2010, 12, 1)
"""Where the two files join: the year before is taken up to the day before, (I) from this day on."""

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


def read_year_before(path: Path = DEFAULT_YEAR_BEFORE) -> pd.DataFrame:
    """Online Retail II's first sheet up to the day before (I) starts, in (I)'s column names and dtypes."""
    raw = pd.read_parquet(path).rename(
        columns={"Invoice": "InvoiceNo", "Price": "UnitPrice", "Customer ID": "CustomerID"}
    )
    raw = raw[raw["InvoiceDate"] < pd.Timestamp(FIRST_DAY_OF_I)]
    description = raw["Description"].astype(object)
    description = description.where(description.notna() & (description != "nan"), None)
    return pd.DataFrame(
        {
            "InvoiceNo": raw["InvoiceNo"].astype(str),
            "StockCode": raw["StockCode"].astype(str),
            "Description": description.map(lambda d: d.rstrip() if isinstance(d, str) else d),
            "Quantity": raw["Quantity"].astype("int64"),
            "InvoiceDate": raw["InvoiceDate"].astype("datetime64[ns]"),
            "UnitPrice": raw["UnitPrice"].astype("float64"),
            "CustomerID": raw["CustomerID"].astype("Int64"),
            "Country": raw["Country"].astype(str),
        }
    ).reset_index(drop=True)


def read_lines(
    csv_path: Path = DEFAULT_CSV, year_before_path: Path | None = DEFAULT_YEAR_BEFORE
) -> pd.DataFrame:
    """Every invoice line the replay lands, in file order: the year before (if given), then (I)."""
    year_one = read_csv(csv_path)
    if year_before_path is None:
        return year_one
    before = read_year_before(year_before_path)
    return pd.concat([before, year_one[list(before.columns)]], ignore_index=True)


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
def _load(csv_path: str, year_before_path: str | None) -> dict[str, _DayIndexed]:
    """Parse the files and derive the four landing tables, each sorted by its partition day."""
    raw = read_lines(Path(csv_path), Path(year_before_path) if year_before_path else None)
    raw["row"] = np.arange(len(raw))
    # Local clock -> instant. The files have no time inside a DST gap or overlap (trading hours are 06-21),
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
    """The UCI Online Retail files, replayed by local invoice date; see the module docstring."""

    name = "online_retail"
    end_date: date | None = date(2011, 12, 9)
    tables = TABLES

    def __init__(
        self, csv_path: Path | None = None, year_before_path: Path | None = DEFAULT_YEAR_BEFORE
    ) -> None:
        self.csv_path = Path(csv_path) if csv_path is not None else DEFAULT_CSV
        self.year_before_path = Path(year_before_path) if year_before_path is not None else None
        self.start_date = date(2009, 12, 1) if self.year_before_path is not None else FIRST_DAY_OF_I

    def day_tables(self, day: date, tables: Iterable[str] | None = None) -> dict[str, pa.Table]:
        self.check_day(day)
        wanted = tuple(tables) if tables is not None else self.tables
        unknown = set(wanted) - set(self.tables)
        if unknown:
            raise ValueError(f"{self.name} does not deliver {sorted(unknown)}")
        data = _load(str(self.csv_path), str(self.year_before_path) if self.year_before_path else None)
        return {name: data[name].day(day) for name in wanted}
