"""The daily partner release: read the day's orders and segments, release or keep, account in the ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb
import pandas as pd

from ml.privacy.partner_stats import (
    PrivacySettings,
    customer_days,
    fingerprint,
    may_release,
    release,
    true_cells,
)
from ml.warehouse import ensure_schema, replace_partition, table_exists

RELEASES = "outputs.partner_aggregates"
LEDGER = "outputs.privacy_ledger"


def day_inputs(con: duckdb.DuckDBPyConnection, day: date) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The day's orders (not cancelled) and the newest customer segments on or before the day."""
    orders = con.execute(
        "SELECT order_date, customer_id, channel, region, order_total FROM marts.fct_orders "
        "WHERE order_date = ? AND NOT coalesce(is_cancelled, false)",
        [day],
    ).df()
    segments = None
    if table_exists(con, "features.customer_segments"):
        segments = con.execute(
            "SELECT customer_id, segment FROM features.customer_segments WHERE as_of_date = "
            "(SELECT max(as_of_date) FROM features.customer_segments WHERE as_of_date <= ?)",
            [day],
        ).df()
    return orders, segments


def spent_on(con: duckdb.DuckDBPyConnection, day: date) -> tuple[float, str | None]:
    """(epsilon spent on ``day`` by every release so far, the fingerprint of the latest release)."""
    if not table_exists(con, LEDGER):
        return 0.0, None
    rows = con.execute(
        f"SELECT epsilon, fingerprint FROM {LEDGER} WHERE release_date = ? ORDER BY released_at", [day]
    ).fetchall()
    return float(sum(r[0] for r in rows)), (rows[-1][1] if rows else None)


def partner_release_day(
    con: duckdb.DuckDBPyConnection, day: date, settings: PrivacySettings
) -> tuple[pd.DataFrame | None, dict]:
    """The day's released cells (None: the earlier release stands) and what happened, for the metadata."""
    orders, segments = day_inputs(con, day)
    cells = true_cells(customer_days(orders, segments), settings)
    mark = fingerprint(cells)
    spent, last_mark = spent_on(con, day)
    info = {"day": str(day), "fingerprint": mark, "epsilon_spent_before": round(spent, 6)}
    if last_mark == mark:
        return None, {**info, "action": "kept: same data as the earlier release, nothing more spent"}
    if not may_release(spent, settings):
        return None, {
            **info,
            "action": f"kept: another release would pass the day's cap of {settings.max_epsilon_per_day_total}",
        }
    released, accounting = release(cells, settings)
    released.insert(0, "release_date", day)
    replace_partition(con, RELEASES, "release_date", day, released)
    ensure_schema(con, "outputs")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {LEDGER} (release_date DATE, released_at TIMESTAMP, epsilon DOUBLE, "
        "fingerprint VARCHAR, cells_released INTEGER, cells_suppressed INTEGER)"
    )
    con.execute(
        f"INSERT INTO {LEDGER} VALUES (?, ?, ?, ?, ?, ?)",
        [
            day,
            datetime.now(UTC).replace(tzinfo=None),
            accounting["epsilon_spent"],
            mark,
            accounting["cells_released"],
            accounting["cells_suppressed"],
        ],
    )
    action = "restated: the data changed since the last release" if last_mark else "released"
    return released, {
        **info,
        **accounting,
        "action": action,
        "epsilon_spent_total": spent + accounting["epsilon_spent"],
    }
