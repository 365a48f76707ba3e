"""Row-count reconciliation between the landing files, the raw layer and staging, and the quarantine summary.

The platform's promise is that nothing is lost silently. For every landing day and table

    landing rows = raw rows + quarantined rows                        (raw loader)

and for every window of event dates that staging rebuilt

    raw rows = staged rows + duplicate rows                           (staging deduplicates on the natural key)

where duplicate rows = raw rows - distinct keys among them. The functions here measure both sides
independently (the landing side from the Parquet footers, not from the loader's own counters), so a check
built on them can fail.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ml.sources.landing import day_files
from ml.sources.schema import CONTRACTS
from ml.warehouse import replace_partition, sql_date, table_exists


@dataclass(frozen=True)
class StagingModel:
    model: str
    date_column: str | None
    """The model's date partition column; None for keyed dimensions reconciled over the whole table."""


STAGING: dict[str, StagingModel] = {
    "customers": StagingModel("stg_customers", None),
    "products": StagingModel("stg_products", None),
    "suppliers": StagingModel("stg_suppliers", None),
    "warehouses": StagingModel("stg_warehouses", None),
    "shipping_lanes": StagingModel("stg_shipping_lanes", None),
    "events": StagingModel("stg_events", "event_date"),
    "orders": StagingModel("stg_orders", "order_date"),
    "order_items": StagingModel("stg_order_items", "order_date"),
    "inventory": StagingModel("stg_inventory", "snapshot_date"),
    "promotions": StagingModel("stg_promotions", "active_date"),
    "impressions": StagingModel("stg_impressions", "impression_date"),
    "lost_sales": StagingModel("stg_lost_sales", "lost_date"),
    "message_events": StagingModel("stg_message_events", "event_date"),
}


@dataclass(frozen=True)
class LandingReconciliation:
    table: str
    first_day: date
    last_day: date
    landed: int
    raw: int
    quarantined: int

    @property
    def ok(self) -> bool:
        return self.landed == self.raw + self.quarantined

    def as_metadata(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(self).items()} | {
            "difference": self.landed - self.raw - self.quarantined
        }


@dataclass(frozen=True)
class StagingReconciliation:
    table: str
    model: str
    first_day: date | None
    last_day: date | None
    raw: int
    staged: int
    duplicates: int

    @property
    def ok(self) -> bool:
        return self.raw == self.staged + self.duplicates

    def as_metadata(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(self).items()} | {
            "difference": self.raw - self.staged - self.duplicates
        }


def landed_rows(landing_root: Path, source: str, table: str, days: list[date]) -> int:
    """Rows in the landing files of ``days``, read from the Parquet footers (unreadable files count as 0)."""
    total = 0
    for day in days:
        for path in day_files(landing_root, source, table, day):
            try:
                total += pq.read_metadata(path).num_rows
            except Exception:  # an unreadable file fails the raw load with its own message
                continue
    return total


def reconcile_landing(
    con: duckdb.DuckDBPyConnection, landing_root: Path, source: str, table: str, days: list[date]
) -> LandingReconciliation:
    lo, hi = min(days), max(days)

    def count(name: str) -> int:
        if not table_exists(con, f"raw.{name}"):
            return 0
        return con.execute(
            f"SELECT count(*) FROM raw.{name} WHERE _landing_date BETWEEN ? AND ?", [lo, hi]
        ).fetchall()[0][0]

    raw, quarantined = count(table), count(f"quarantine_{table}")
    return LandingReconciliation(
        table, lo, hi, landed_rows(landing_root, source, table, days), raw, quarantined
    )


def reconcile_staging(
    con: duckdb.DuckDBPyConnection, table: str, first_day: date, last_day: date
) -> StagingReconciliation:
    """Raw rows whose event date falls in the window against the staged rows of those dates."""
    spec = STAGING[table]
    key = ", ".join(f'"{c}"' for c in CONTRACTS[table].key)
    if spec.date_column is None:
        raw_filter, stg_filter, params = "", "", []
        first, last = None, None
    else:
        raw_filter = "WHERE _event_date BETWEEN ? AND ?"
        stg_filter = f"WHERE {spec.date_column} BETWEEN ? AND ?"
        params = [first_day, last_day]
        first, last = first_day, last_day
    if not table_exists(con, f"staging.{spec.model}"):
        return StagingReconciliation(table, spec.model, first, last, 0, 0, 0)
    # Inventory and promotions are keyed by day as well (a snapshot per day, a promotion per active day).
    if table in ("inventory", "promotions"):
        key = {"inventory": '"sku", "warehouse_id", _event_date', "promotions": '"promo_id", _event_date'}[
            table
        ]
    raw, distinct = con.execute(
        f"SELECT count(*), count(DISTINCT ({key})) FROM raw.{table} {raw_filter}", params
    ).fetchall()[0]
    staged = con.execute(f"SELECT count(*) FROM staging.{spec.model} {stg_filter}", params).fetchall()[0][0]
    return StagingReconciliation(table, spec.model, first, last, raw, staged, raw - distinct)


QUARANTINE_DAILY = "quality.quarantine_daily"
"""Quarantined rows per landing day, table and reason code."""


def _quarantine_counts_sql(con: duckdb.DuckDBPyConnection, first_day: date, last_day: date) -> str:
    window = f"_landing_date between {sql_date(first_day)} and {sql_date(last_day)}"
    parts = [
        f"select _landing_date as landing_date, '{table}' as table_name, _reason as reason, count(*) as n_rows "
        f"from raw.quarantine_{table} where {window} group by 1, 3"
        for table in CONTRACTS
        if table_exists(con, f"raw.quarantine_{table}")
    ]
    empty = "select null::date as landing_date, null::varchar as table_name, null::varchar as reason, 0::bigint as n_rows where false"
    return " union all ".join(parts) if parts else empty


def write_quarantine_summary(con: duckdb.DuckDBPyConnection, first_day: date, last_day: date) -> pd.DataFrame:
    """Count the quarantined rows per landing day, table and reason of ``[first_day, last_day]`` into
    :data:`QUARANTINE_DAILY` (replacing those days) and return them (zero rows when nothing was quarantined)."""
    replace_partition(
        con,
        QUARANTINE_DAILY,
        "landing_date",
        (first_day, last_day),
        _quarantine_counts_sql(con, first_day, last_day),
    )
    return con.execute(
        f"select * from {QUARANTINE_DAILY} where landing_date between ? and ? order by landing_date, table_name, reason",
        [first_day, last_day],
    ).df()


# -- Volume: the platform's one volume rule ------------------------------------------------------------------------
# A day's rows against the median of the same weekday in recent weeks; it warns, never blocks (a quiet day can be
# real). Evaluated by the Dagster check ``no_day_over_day_volume_drop`` on the marts (docs/quality.md).

VOLUME_MIN_RATIO = 0.5
"""A day with fewer rows than this share of its baseline is a drop."""
VOLUME_WEEKDAY_WEEKS = 4
"""The baseline is the median of at most this many recent same weekdays that had rows."""
VOLUME_CLOSED_WEEKS = 8
"""How far back same weekdays are looked at, both for the baseline and to recognise a closing day."""
VOLUME_HISTORY_DAYS = 7
"""While fewer than two same weekdays with rows exist, the baseline is the median of this many previous days."""


def volume_rule() -> str:
    """The rule in words, from the thresholds above (for check descriptions and docs)."""
    return (
        f"rows on each day >= {VOLUME_MIN_RATIO:.0%} of the median of the same weekday over the last "
        f"{VOLUME_WEEKDAY_WEEKS} weeks it traded (within {VOLUME_CLOSED_WEEKS} weeks; of the previous "
        f"{VOLUME_HISTORY_DAYS} days with rows while fewer than two such weekdays exist); a weekday with no rows "
        "in any recent week is a closing day, not a drop"
    )


@dataclass(frozen=True)
class VolumeCheck:
    table: str
    day: date
    rows: int
    recent_median: float | None
    """The baseline: median daily rows of recent same weekdays, or of the previous days (days with rows only;
    None without history)."""
    min_ratio: float
    regular_closing_day: bool = False
    """No rows on this day's weekday in any recent week either: the shop is closed that weekday, not broken."""
    baseline: str = "previous days"
    """``same weekday`` (the median of the last ``weekday_weeks`` same weekdays with rows) or ``previous days``."""

    @property
    def ratio(self) -> float | None:
        return None if not self.recent_median else self.rows / self.recent_median

    @property
    def ok(self) -> bool:
        return self.regular_closing_day or self.ratio is None or self.ratio >= self.min_ratio

    def as_metadata(self) -> dict:
        return {
            "table": self.table,
            "day": self.day.isoformat(),
            "rows": self.rows,
            "recent_median": float(self.recent_median or 0.0),
            "ratio_to_recent": float(self.ratio if self.ratio is not None else 1.0),
            "min_ratio": self.min_ratio,
            "regular_closing_day": self.regular_closing_day,
            "baseline": self.baseline,
        }


def volume_vs_recent(
    con: duckdb.DuckDBPyConnection,
    table: str,
    date_column: str,
    days,
    history_days: int = VOLUME_HISTORY_DAYS,
    min_ratio: float = VOLUME_MIN_RATIO,
    closed_weeks: int = VOLUME_CLOSED_WEEKS,
    weekday_weeks: int = VOLUME_WEEKDAY_WEEKS,
) -> list[VolumeCheck]:
    """Rows of ``table`` on each of ``days`` against a baseline: the median of the last ``weekday_weeks`` same
    weekdays (within ``closed_weeks`` weeks) that had rows, or, while fewer than two exist, of the previous
    ``history_days`` days that had rows.

    Why the same weekday: shops have a weekly rhythm (Online Retail sells about half as much on Sundays), so a
    Sunday against the week's median is a false alarm every week. Days without rows are left out of the
    baselines: a closed day is not a baseline. A drop below ``min_ratio`` × the baseline fails, except on a
    regular closing day: an empty day whose weekday was empty on every one of the previous ``closed_weeks`` same
    weekdays since the table's first day, at least two of them (the rule :func:`ml.forecast.panel.next_periods`
    uses for the trading calendar). An outage on a weekday the shop trades still fails.

    One query for the whole range (a backfill checks months of days at once).
    """
    days = [pd.Timestamp(d).date() for d in days]
    if not days:
        return []
    lookback = max(int(history_days), 7 * int(closed_weeks))
    counts = dict(
        con.execute(
            f"SELECT {date_column}, count(*) FROM {table} "
            f"WHERE {date_column} >= CAST(? AS DATE) - {lookback} AND {date_column} <= ? GROUP BY 1",
            [min(days), max(days)],
        ).fetchall()
    )
    first = con.execute(f"SELECT min({date_column}) FROM {table}").fetchall()[0][0]
    out = []
    for day in days:
        rows = counts.get(day, 0)
        same_weekdays = [day - timedelta(days=7 * k) for k in range(1, int(closed_weeks) + 1)]
        passed = [d for d in same_weekdays if first is not None and d >= first]
        closing = rows == 0 and len(passed) >= 2 and not any(counts.get(d, 0) for d in passed)
        weekday = [counts[d] for d in passed if counts.get(d, 0) > 0][: int(weekday_weeks)]
        if len(weekday) >= 2:
            baseline, median = "same weekday", float(np.median(weekday))
        else:
            recent = [n for d, n in counts.items() if 0 < (day - d).days <= history_days]
            baseline, median = "previous days", float(np.median(recent)) if recent else None
        out.append(VolumeCheck(table, day, int(rows), median, min_ratio, closing, baseline))
    return out


def volume_summary(results: list[VolumeCheck]) -> dict:
    """What a volume check over ``results`` (one per day, see :func:`volume_vs_recent`) reports: whether every
    day passed, how many days were checked, below the rule and regular closing days, and the day to look at,
    flattened into the dict (``day``, ``rows``, ``recent_median``, ``ratio_to_recent``, ...): the worst drop among
    the days below, else the lowest ratio among the days judged (closing days are not judged)."""
    if not results:
        raise ValueError("no days to summarise")
    below = [r for r in results if not r.ok]
    judged = below or [r for r in results if not r.regular_closing_day] or results
    worst = min(judged, key=lambda r: r.ratio if r.ratio is not None else float("inf"))
    return worst.as_metadata() | {
        "passed": not below,
        "days_checked": len(results),
        "days_below": len(below),
        "regular_closing_days": len([r for r in results if r.regular_closing_day]),
    }
