"""Realistic dirt for the simulated store: duplicates, late re-sends and bad rows, with a ledger of each defect.

``DirtySource(inner, rate)`` delivers the inner source's days with extra rows of the kinds real upstream
systems send: the same event twice, yesterday's events sent again, rows with null keys, unknown SKUs or
customers, impossible quantities, timestamps from the future or from long ago, orders whose total disagrees
with their lines. The dirt is **additive**: every clean row is delivered unchanged and every defect is an
extra row, so the marts built from a dirty day must equal the marts of the clean day, and the raw quarantine
plus staging's deduplication must account for every injected row. :meth:`DirtySource.ledger` says, per
table, how many rows of each kind a day carries and the reason code the platform should give them.

The dirt of a day depends only on (seed, day, rate) and the clean tables, so it is as deterministic as the
store itself. ``rate`` is the number of defects of each kind per 1,000 clean event rows (at least one each).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml.sources import Source
from ml.sources.schema import CONTRACTS, LATE_ROW_TOLERANCE_DAYS, MAX_ABS_QUANTITY

DUPLICATE = "duplicate"
"""Ledger code for an exact copy of a row already delivered: kept in raw, removed by staging's dedup."""


@dataclass(frozen=True)
class Defect:
    table: str
    reason: str
    """The raw layer's quarantine reason code, or :data:`DUPLICATE`."""
    rows: int


class DirtySource(Source):
    """Wrap a source and add dirt to its days (see the module docstring)."""

    def __init__(self, inner: Source, rate: float = 1.0, seed: int = 7) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive; use the clean source for no dirt")
        self.inner = inner
        self.rate = rate
        self.seed = seed
        # Same name and landing layout as the clean source: dirt is a property of a delivery, not a new store.
        self.name = inner.name
        self.start_date = inner.start_date
        self.end_date = inner.end_date
        self.tables = inner.tables
        self._ledgers: dict[date, list[Defect]] = {}

    def ledger(self, day: date) -> list[Defect]:
        """The defects injected into ``day`` (built on demand)."""
        if day not in self._ledgers:
            self.day_tables(day)
        return self._ledgers[day]

    def day_tables(self, day: date, tables: Iterable[str] | None = None) -> dict[str, pa.Table]:
        clean = self.inner.day_tables(day)
        rng = np.random.default_rng([self.seed, day.toordinal()])
        n_events = clean["events"].num_rows
        per_kind = max(1, int(round(self.rate * n_events / 1000)))
        out = dict(clean)
        defects: list[Defect] = []

        def add(table: str, reason: str, extra: pa.Table) -> None:
            if extra.num_rows == 0:
                return
            out[table] = pa.concat_tables([out[table], extra.cast(CONTRACTS[table].schema)])
            defects.append(Defect(table, reason, extra.num_rows))

        events = clean["events"]
        if events.num_rows:
            add("events", DUPLICATE, _sample(events, per_kind, rng))
            if day > self.start_date:
                yesterday = self.inner.day_tables(day - timedelta(days=1), ["events"])["events"]
                # Re-sent by a retrying upstream: same ids and times, inside the late-row tolerance.
                add("events", DUPLICATE, _sample(yesterday, per_kind, rng))
            add(
                "events",
                "null_key:event_id",
                _with(_fresh(_sample(events, per_kind, rng), "event_id", "X"), "event_id", None),
            )
            add(
                "events",
                "invalid_value:event_type",
                _with(_fresh(_sample(events, per_kind, rng), "event_id", "T"), "event_type", "wishlist"),
            )
            add(
                "events",
                "unknown_ref:sku",
                _with(_fresh(_sample(events, per_kind, rng), "event_id", "S"), "sku", "SKU-UNKNOWN"),
            )
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            add(
                "events",
                "future_ts:ts",
                _with(
                    _fresh(_sample(events, per_kind, rng), "event_id", "F"),
                    "ts",
                    start + timedelta(days=1, hours=3),
                ),
            )
            stale = start - timedelta(days=LATE_ROW_TOLERANCE_DAYS + 2)
            add(
                "events",
                "stale_ts:ts",
                _with(_fresh(_sample(events, per_kind, rng), "event_id", "L"), "ts", stale),
            )

        orders, lines = clean["orders"], clean["order_items"]
        if orders.num_rows and lines.num_rows:
            # Copies of real orders with a new id, one line corrupted and the header total left at the clean sum,
            # so the bad line keeps its own reason and the order and its other lines fail the total check.
            for reason, column, value in (
                ("out_of_range:qty", "qty", int(MAX_ABS_QUANTITY) * 1000),
                ("negative:unit_price", "unit_price", -9.99),
            ):
                with_lines = orders.filter(pc.is_in(orders.column("order_id"), lines.column("order_id")))
                picked = _sample(with_lines, per_kind, rng)
                new_ids = [f"{oid}-D{reason[:3]}" for oid in picked.column("order_id").to_pylist()]
                mapping = dict(zip(picked.column("order_id").to_pylist(), new_ids, strict=True))
                copied_lines = lines.filter(pc.is_in(lines.column("order_id"), picked.column("order_id")))
                copied_lines = copied_lines.set_column(
                    0, "order_id", pa.array([mapping[o] for o in copied_lines.column("order_id").to_pylist()])
                )
                bad_line = np.array(_first_line_mask(copied_lines))
                values = copied_lines.column(column).to_pylist()
                values = [value if b else v for v, b in zip(values, bad_line, strict=True)]
                copied_lines = copied_lines.set_column(
                    copied_lines.schema.get_field_index(column),
                    column,
                    pa.array(values, copied_lines.schema.field(column).type),
                )
                headers = picked.set_column(0, "order_id", pa.array(new_ids))
                add("order_items", reason, copied_lines.filter(pa.array(bad_line)))
                add(
                    "order_items",
                    "order_total_mismatch:order_total",
                    copied_lines.filter(pa.array(~bad_line)),
                )
                add("orders", "order_total_mismatch:order_total", headers)
            add(
                "orders",
                "unknown_ref:customer_id",
                _with(_fresh(_sample(orders, per_kind, rng), "order_id", "C"), "customer_id", "C-UNKNOWN"),
            )

        inventory = clean["inventory"]
        if inventory.num_rows:
            bad = _sample(inventory, per_kind, rng)
            bad = _with(bad, "warehouse_id", "WH-DIRT")  # a new key, so the row cannot clash with a clean one
            add("inventory", "negative:on_hand", _with(bad, "on_hand", -5))

        self._ledgers[day] = defects
        wanted = self.tables if tables is None else tuple(tables)
        return {t: out[t] for t in wanted}


def _sample(t: pa.Table, n: int, rng: np.random.Generator) -> pa.Table:
    if t.num_rows == 0:
        return t
    idx = np.sort(rng.choice(t.num_rows, size=min(n, t.num_rows), replace=False))
    return t.take(pa.array(idx))


def _fresh(t: pa.Table, key: str, tag: str) -> pa.Table:
    """Give copied rows new key values so they are new rows, not duplicates."""
    values = [f"{v}-DIRT{tag}{i}" for i, v in enumerate(t.column(key).to_pylist())]
    return t.set_column(t.schema.get_field_index(key), key, pa.array(values, t.schema.field(key).type))


def _with(t: pa.Table, column: str, value) -> pa.Table:
    field = t.schema.field(column)
    return t.set_column(t.schema.get_field_index(column), column, pa.array([value] * t.num_rows, field.type))


def _first_line_mask(lines: pa.Table) -> list[bool]:
    seen: set[str] = set()
    mask = []
    for oid in lines.column("order_id").to_pylist():
        mask.append(oid not in seen)
        seen.add(oid)
    return mask


def expected_outcome(defects: list[Defect]) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """(quarantine rows per table and reason, duplicate rows per table) that a day's defects should produce."""
    quarantined: dict[str, dict[str, int]] = {}
    duplicates: dict[str, int] = {}
    for d in defects:
        if d.reason == DUPLICATE:
            duplicates[d.table] = duplicates.get(d.table, 0) + d.rows
        else:
            per = quarantined.setdefault(d.table, {})
            per[d.reason] = per.get(d.reason, 0) + d.rows
    return quarantined, duplicates
