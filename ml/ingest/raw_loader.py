"""Load a window of landing days into ``raw.<table>``, idempotently, with row-level quarantine.

For every table and landing day:

* every file is checked against the landing contract before anything is written: an unreadable file, a
  missing column or a column of an incompatible type fails the whole window with a message that names the file
  and the column (:class:`LandingFileError`), and the warehouse is left as it was;
* rows that break a row-level rule (see :func:`_reason_sql` for the reason codes: null keys, non-finite or
  out-of-range numbers, unknown vocabulary, timestamps outside the landing day's tolerance, unknown customers
  or SKUs, orders whose total disagrees with their lines) go to ``raw.quarantine_<table>`` with a reason code
  and the source file; the others go to ``raw.<table>``;
* the window is replaced in one transaction (delete the landing days, insert them again), so re-running a day
  never duplicates it, and ``landed rows = raw rows + quarantined rows`` holds for every day.

Columns added to every raw row: ``_landing_date`` (the folder the file came from), ``_event_date`` (UTC date of
the contract's time column, which differs from the landing date for late rows), ``_source_file`` and
``_file_row`` (the row's position in its file), so any row can be traced to the byte it came from.

``raw._landed_event_dates`` keeps, per table and landing day, the earliest event date that day's rows have ever
had (the rows replaced and the rows loaded): the dates dbt must rebuild after the load
(:func:`ml.dbt.rebuild_vars`). A corrected re-delivery that drops a late row still names the date it had touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ml.sources.landing import day_files, landed_days
from ml.sources.schema import CONTRACTS, ORDER_TOTAL_TOLERANCE, TABLES, TableContract
from ml.warehouse import table_exists, transaction

META_COLUMNS = {
    "_landing_date": "DATE",
    "_event_date": "DATE",
    "_source_file": "VARCHAR",
    "_file_row": "BIGINT",
}


class LandingFileError(ValueError):
    """A landing file that cannot be loaded: unreadable, or a missing or mistyped column."""


class MissingLandingError(LandingFileError):
    """No landing folder for a day the source should have delivered."""


class UnloadedHistoryError(ValueError):
    """A window loaded before earlier landed days that its references need (customers, products)."""


@dataclass
class DayLoad:
    day: date
    files: list[str]
    landed: int = 0
    loaded: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())


@dataclass
class LoadResult:
    table: str
    days: list[DayLoad]
    extra_columns: dict[str, list[str]] = field(default_factory=dict)

    @property
    def landed(self) -> int:
        return sum(d.landed for d in self.days)

    @property
    def loaded(self) -> int:
        return sum(d.loaded for d in self.days)

    @property
    def quarantined(self) -> int:
        return sum(d.quarantined_total for d in self.days)

    def quarantined_by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.days:
            for reason, n in d.quarantined.items():
                out[reason] = out.get(reason, 0) + n
        return dict(sorted(out.items()))


def _duckdb_type(dtype: pa.DataType) -> str:
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "VARCHAR"
    if pa.types.is_int32(dtype):
        return "INTEGER"
    if pa.types.is_int64(dtype):
        return "BIGINT"
    if pa.types.is_float64(dtype):
        return "DOUBLE"
    if pa.types.is_boolean(dtype):
        return "BOOLEAN"
    if pa.types.is_timestamp(dtype):
        return "TIMESTAMPTZ" if dtype.tz else "TIMESTAMP"
    if pa.types.is_date(dtype):
        return "DATE"
    raise TypeError(f"no DuckDB type mapped for {dtype}")


def _compatible(expected: pa.DataType, found: pa.DataType) -> bool:
    """Whether a file column can be loaded into the contract type without losing meaning.

    Safe widenings are accepted (int32 into int64, any integer into float, string views, timestamps of any
    unit); a naive timestamp is refused where the contract wants an instant, since its zone is unknown.
    A column that is entirely null (Arrow type ``null``) fits any type.
    """
    if found == expected or pa.types.is_null(found):
        return True
    if pa.types.is_string(expected):
        return pa.types.is_string(found) or pa.types.is_large_string(found) or pa.types.is_string_view(found)
    if pa.types.is_integer(expected):
        return pa.types.is_integer(found) and found.bit_width <= expected.bit_width
    if pa.types.is_floating(expected):
        return pa.types.is_integer(found) or pa.types.is_floating(found)
    if pa.types.is_timestamp(expected):
        return pa.types.is_timestamp(found) and (found.tz is not None) == (expected.tz is not None)
    return False


LANDED_EVENT_DATES = "raw._landed_event_dates"


def load_delivered(
    con: duckdb.DuckDBPyConnection, landing_root: Path, source: str, delivered, days: list[date]
) -> None:
    """Load ``days`` of every table in ``delivered`` (the tables ``source`` sends); create the others empty, so
    every dbt source exists."""
    for table in TABLES:
        if table in delivered:
            load_window(con, landing_root, source, table, days)
        else:
            create_raw_tables(con, CONTRACTS[table])


def _record_landed_event_dates(
    con: duckdb.DuckDBPyConnection, table: str, touched: list[tuple[date, date | None]]
) -> None:
    """Lower (never raise) the earliest event date recorded for each landing day of ``table``; a loaded day with
    no rows records its own date, so every loaded day has a record."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {LANDED_EVENT_DATES} (table_name VARCHAR, landing_date DATE, "
        "first_event_date DATE NOT NULL, PRIMARY KEY (table_name, landing_date))"
    )
    con.executemany(
        f"INSERT INTO {LANDED_EVENT_DATES} VALUES (?, ?, least(?, ?)) ON CONFLICT (table_name, landing_date) "
        "DO UPDATE SET first_event_date = least(first_event_date, excluded.first_event_date)",
        [
            [table, landing_date, first_event_date or landing_date, landing_date]
            for landing_date, first_event_date in touched
        ],
    )


def create_raw_tables(con: duckdb.DuckDBPyConnection, contract: TableContract) -> None:
    cols = [f'"{name}" {_duckdb_type(t)}' for name, t in contract.columns.items()]
    meta = [f"{name} {t}" for name, t in META_COLUMNS.items()]
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(f"CREATE TABLE IF NOT EXISTS raw.{contract.name} ({', '.join(cols + meta)})")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS raw.quarantine_{contract.name} "
        f"({', '.join(cols + meta + ['_reason VARCHAR'])})"
    )


def check_file(path: Path, contract: TableContract) -> list[str]:
    """Validate one file's schema; return the extra (unknown) columns, which are ignored on load."""
    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for truncated or foreign files
        raise LandingFileError(f"{path}: not a readable Parquet file ({exc})") from exc
    found = {f.name: f.type for f in schema}
    for name, expected in contract.columns.items():
        if name not in found:
            raise LandingFileError(f"{path}: missing column {name!r} required by table {contract.name!r}")
        if not _compatible(expected, found[name]):
            raise LandingFileError(
                f"{path}: column {name!r} has type {found[name]}, expected {expected} for table {contract.name!r}"
            )
    return sorted(set(found) - set(contract.columns))


def _reason_sql(
    contract: TableContract,
    landing_day: date,
    mismatched_orders: bool = False,
    references: tuple[tuple[str, str, str], ...] | None = None,
) -> str:
    """A SQL CASE giving the first broken rule of a row of ``src``, or NULL for a good row.

    Reason codes are ``<rule>:<column>``; the rules, in the order they are tested:

    ``null_key`` / ``null_required``  a key or required column is null;
    ``non_finite``                    NaN or ±inf in a floating column;
    ``negative`` / ``non_positive``   a number below 0 (or at most 0) where the contract forbids it;
    ``out_of_range``                  a magnitude above the contract's credible bound (e.g. quantity 1e9);
    ``invalid_value``                 a value outside a closed vocabulary (event types, order statuses);
    ``future_ts``                     a fact time after the end of its landing day (a file cannot hold the future);
    ``stale_ts``                      a fact time more than the late-row tolerance before its landing day;
    ``unknown_ref``                   a customer or SKU that the raw layer has not seen by the landing day;
    ``order_total_mismatch``          an order whose total disagrees by over a cent with the sum of its lines
                                      that pass the rules above (the order and all its lines are quarantined
                                      together: :func:`_mark_mismatched_orders`).
    """
    day = f"DATE '{landing_day.isoformat()}'"
    whens = []
    for col in contract.key:
        whens.append(f"WHEN src.\"{col}\" IS NULL THEN 'null_key:{col}'")
    for col in contract.required:
        if col not in contract.key:
            whens.append(f"WHEN src.\"{col}\" IS NULL THEN 'null_required:{col}'")
    for name, dtype in contract.columns.items():
        if pa.types.is_floating(dtype):
            # Not isnan(): DuckDB folds isnan() to false from Parquet statistics, which leave NaN out
            # (seen with duckdb 2.0.1); isfinite() is evaluated on the values.
            whens.append(f"WHEN NOT isfinite(src.\"{name}\") THEN 'non_finite:{name}'")
    for col in contract.non_negative:
        whens.append(f"WHEN src.\"{col}\" < 0 THEN 'negative:{col}'")
    for col in contract.positive:
        whens.append(f"WHEN src.\"{col}\" <= 0 THEN 'non_positive:{col}'")
    for col, bound in contract.max_abs:
        whens.append(f"WHEN abs(src.\"{col}\") > {float(bound)!r} THEN 'out_of_range:{col}'")
    for col, allowed in contract.accepted:
        values = ", ".join("'" + v.replace("'", "''") + "'" for v in allowed)
        whens.append(f"WHEN src.\"{col}\" NOT IN ({values}) THEN 'invalid_value:{col}'")
    if contract.time_column and contract.late_tolerance_days is not None:
        ts = f'src."{contract.time_column}"'
        # Compare instants: the landing day runs from 00:00 UTC to 24:00 UTC.
        start = f"timezone('UTC', CAST({day} AS TIMESTAMP))"
        whens.append(f"WHEN {ts} >= {start} + INTERVAL 1 DAY THEN 'future_ts:{contract.time_column}'")
        whens.append(
            f"WHEN {ts} < {start} - INTERVAL {int(contract.late_tolerance_days)} DAY "
            f"THEN 'stale_ts:{contract.time_column}'"
        )
    for col, ref_table, ref_col in contract.references if references is None else references:
        whens.append(
            f'WHEN src."{col}" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM raw.{ref_table} AS ref '
            f'WHERE ref."{ref_col}" = src."{col}" AND ref._landing_date <= {day}) THEN \'unknown_ref:{col}\''
        )
    if mismatched_orders:
        whens.append(
            "WHEN src.order_id IN (SELECT order_id FROM _mismatched_orders) THEN 'order_total_mismatch:order_total'"
        )
    return "CASE " + " ".join(whens) + " END" if whens else "NULL"


def _mark_mismatched_orders(
    con: duckdb.DuckDBPyConnection, landing_root: Path, source: str, day: date
) -> bool:
    """Fill ``_mismatched_orders`` with the orders of ``day`` whose total disagrees with their lines.

    The lines counted are those that pass the row-level rules that a line's own file decides (everything but
    the reference rule): a line quarantined for its own reason must take its order with it, or the marts would
    hold a header whose lines are not there. Online Retail's "Adjust bad debt" invoices are such orders: a
    header of -11,062.06 whose only line has a negative price; the header alone reached ``marts.fct_orders`` and
    failed its blocking total check on every backfill that included 2011-08-12.

    Decided from the landing files of both tables of that day alone, so loading orders and loading order lines
    reach the same verdict whatever the warehouse holds. Returns False when either table has no files (the
    source does not deliver both, or the rule cannot be evaluated). An order without any landed line is not
    judged here.
    """
    order_files = day_files(landing_root, source, "orders", day)
    line_files = day_files(landing_root, source, "order_items", day)
    if not order_files or not line_files:
        return False
    try:
        for f in order_files:
            check_file(f, CONTRACTS["orders"])
        for f in line_files:
            check_file(f, CONTRACTS["order_items"])
    except LandingFileError:
        return False  # the table's own load reports the bad file
    line_reason = _reason_sql(CONTRACTS["order_items"], day, references=())
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _mismatched_orders AS
        SELECT o.order_id
        FROM read_parquet(?) AS o
        INNER JOIN (
            SELECT
                src.order_id,
                coalesce(sum(round(src.qty * src.unit_price * (1 - coalesce(src.discount, 0.0)), 2))
                    FILTER (WHERE ({line_reason}) IS NULL), 0.0) AS lines_total
            FROM read_parquet(?) AS src
            GROUP BY src.order_id
        ) AS l ON l.order_id = o.order_id
        WHERE o.order_total IS NOT NULL
          AND isfinite(o.order_total)
          AND abs(o.order_total - l.lines_total) > {ORDER_TOTAL_TOLERANCE}
        """,
        [[str(f) for f in order_files], [str(f) for f in line_files]],
    )
    return True


def delivered_references(landing_root: Path, source: str, table: str) -> tuple[tuple[str, str, str], ...]:
    """The contract's references of ``table`` (column, table, column) to tables the source delivers at all: a
    reference is checked only against those (Online Retail has no inventory)."""
    return tuple(r for r in CONTRACTS[table].references if (Path(landing_root) / source / r[1]).is_dir())


def unloaded_days_before(
    con: duckdb.DuckDBPyConnection, landing_root: Path, source: str, table: str, before: date
) -> list[date]:
    """The days before ``before`` whose landing files of ``table`` hold rows that raw has not loaded (neither
    in ``raw.<table>`` nor in its quarantine). A landed day with empty files introduces nothing and is not one."""
    loaded = set()
    if table_exists(con, f"raw.{table}"):
        loaded = {
            d
            for (d,) in con.execute(
                f"SELECT DISTINCT _landing_date FROM raw.{table} "
                f"UNION SELECT DISTINCT _landing_date FROM raw.quarantine_{table}"
            ).fetchall()
        }
    missing = []
    for key in landed_days(landing_root, source, table):
        day = date.fromisoformat(key)
        if day >= before or day in loaded:
            continue
        if any(_has_rows(f) for f in day_files(landing_root, source, table, day)):
            missing.append(day)
    return missing


def _has_rows(path: Path) -> bool:
    try:
        return pq.read_metadata(path).num_rows > 0
    except (OSError, pa.ArrowException):
        return True  # unreadable: it cannot be shown to introduce nothing


def refuse_unloaded_history(
    con: duckdb.DuckDBPyConnection, landing_root: Path, source: str, tables: list[str], first_day: date
) -> None:
    """Refuse a window of ``tables`` whose references would be checked against an incomplete history.

    A row's customer or SKU is looked up among the rows raw has loaded up to its landing day. Loading a window
    before an earlier day that introduced customers or products would quarantine good rows as unknown
    references, and they would stay quarantined after the earlier day is loaded: the result would depend on the
    order of the runs. So the window is refused, before anything changes, naming the days to load first.
    """
    for table in tables:
        for ref_table in sorted({ref for _, ref, _ in delivered_references(landing_root, source, table)}):
            missing = unloaded_days_before(con, landing_root, source, ref_table, first_day)
            if not missing:
                continue
            shown = ", ".join(d.isoformat() for d in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise UnloadedHistoryError(
                f"cannot load {table} from {first_day.isoformat()}: {len(missing)} earlier landed day(s) of "
                f"{ref_table} are not in raw yet ({shown}); rows of {table} refer to the {ref_table} those "
                f"days introduce and would be quarantined as unknown. Load from {missing[0].isoformat()} "
                f"first (a backfill of {missing[0].isoformat()} .. {first_day.isoformat()} or later), or move "
                f"those days' folders out of the landing zone if they must never be loaded. Nothing was changed."
            )


def load_window(
    con: duckdb.DuckDBPyConnection,
    landing_root: Path,
    source: str,
    table: str,
    days: list[date],
    *,
    check_history: bool = True,
) -> LoadResult:
    """Replace ``days`` of ``raw.<table>`` (and its quarantine) with the landing files of those days.

    ``check_history=False`` only for a caller that has already run :func:`refuse_unloaded_history` for this
    window over every table it loads (the raw asset does, so that no table is replaced before a refusal)."""
    contract = CONTRACTS[table]
    create_raw_tables(con, contract)

    # 1. Validate every file before touching the warehouse: a bad file fails the window and changes nothing.
    plan: list[tuple[date, list[Path]]] = []
    extra: dict[str, list[str]] = {}
    for day in days:
        files = day_files(landing_root, source, table, day)
        if not files:
            raise MissingLandingError(
                f"no landing files for table {table!r} of source {source!r} on {day.isoformat()} "
                f"(looked in {landing_root / source / table / f'date={day.isoformat()}'})"
            )
        for f in files:
            unknown = check_file(f, contract)
            if unknown:
                extra[str(f)] = unknown
        plan.append((day, files))

    columns = ", ".join(f'"{c}"' for c in contract.columns)
    src_columns = ", ".join(f'src."{c}"' for c in contract.columns)
    time_col = contract.time_column
    event_date = f"CAST(timezone('UTC', \"{time_col}\") AS DATE)" if time_col else "CAST(? AS DATE)"
    result = LoadResult(table=table, days=[], extra_columns=extra)
    references = delivered_references(landing_root, source, table)
    for _, ref_table, _ in references:
        create_raw_tables(con, CONTRACTS[ref_table])
    if check_history:
        refuse_unloaded_history(con, landing_root, source, [table], min(days))

    # 2. One transaction for the whole window: delete the days, insert them again.
    with transaction(con):
        lo, hi = min(days), max(days)
        earliest = f"SELECT _landing_date, min(_event_date) FROM raw.{table} WHERE _landing_date BETWEEN ? AND ? GROUP BY 1"
        replaced = con.execute(earliest, [lo, hi]).fetchall()
        for target in (f"raw.{table}", f"raw.quarantine_{table}"):
            con.execute(f"DELETE FROM {target} WHERE _landing_date BETWEEN ? AND ?", [lo, hi])
        for day, files in plan:
            load = DayLoad(day=day, files=[str(f) for f in files])
            mismatch_rule = table in ("orders", "order_items") and _mark_mismatched_orders(
                con, landing_root, source, day
            )
            reason = _reason_sql(contract, day, mismatched_orders=mismatch_rule, references=references)
            for f in files:
                # Each file is read on its own so that a file that passes the schema check but fails while
                # decoding (truncated pages) is named in the error.
                try:
                    con.execute(
                        f"CREATE OR REPLACE TEMP TABLE _incoming AS SELECT {src_columns}, "
                        f"file_row_number AS _file_row, {reason} AS _reason "
                        f"FROM read_parquet(?, file_row_number = true) AS src",
                        [str(f)],
                    )
                except duckdb.Error as exc:
                    raise LandingFileError(f"{f}: could not be read ({exc})") from exc
                params = [day, str(f)] + ([day] if not time_col else [])
                select = (
                    f"SELECT {columns}, CAST(? AS DATE) AS _landing_date, ? AS _source_file, _file_row, "
                    f"{event_date} AS _event_date"
                )
                # Column order of the target is contract columns, then META_COLUMNS in their order.
                target_cols = f"{columns}, _landing_date, _source_file, _file_row, _event_date"
                con.execute(
                    f"INSERT INTO raw.{table} ({target_cols}) {select} FROM _incoming WHERE _reason IS NULL",
                    params,
                )
                con.execute(
                    f"INSERT INTO raw.quarantine_{table} ({target_cols}, _reason) {select}, _reason "
                    f"FROM _incoming WHERE _reason IS NOT NULL",
                    params,
                )
                counts = con.execute(
                    "SELECT count(*), count(*) FILTER (WHERE _reason IS NULL) FROM _incoming"
                ).fetchall()[0]
                load.landed += counts[0]
                load.loaded += counts[1]
                for r, n in con.execute(
                    "SELECT _reason, count(*) FROM _incoming WHERE _reason IS NOT NULL GROUP BY 1"
                ).fetchall():
                    load.quarantined[r] = load.quarantined.get(r, 0) + n
            result.days.append(load)
        con.execute("DROP TABLE IF EXISTS _incoming")
        con.execute("DROP TABLE IF EXISTS _mismatched_orders")
        loaded = con.execute(earliest, [lo, hi]).fetchall()
        _record_landed_event_dates(con, table, replaced + loaded + [(day, None) for day, _ in plan])
    return result
