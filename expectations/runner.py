"""Validate one partition's slice of a table with its Great Expectations suite.

:func:`validate_partition` reads only the rows of the window (``date_column BETWEEN first AND last day``) from a
DuckDB connection the caller opened (read-only is enough), validates them with a process-wide ephemeral GX
context, and returns a plain :class:`ValidationOutcome`. GX objects never leave this module.

Windows: pass ``date`` objects for inclusive first and last days, or the ``datetime`` bounds of a Dagster
``TimeWindow`` (half-open ``[start, end)``), which are converted to the days they cover.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import duckdb
import pandas as pd

from expectations.suites import PARAM_TS_MAX, PARAM_TS_MIN, SUITES, SuiteSpec

SAMPLE_ROWS = 5
_PARTIAL_UNEXPECTED = 20


@dataclass
class FailedExpectation:
    """One expectation that did not hold on the slice."""

    expectation: str
    """GX expectation type, e.g. ``expect_column_values_to_be_between``."""
    column: str | None
    """The column (or comma-separated columns) it applies to; None for table-level rules."""
    rule: dict[str, Any]
    """The expectation's arguments as run (bounds, value set, row condition), JSON-friendly."""
    observed_value: Any = None
    """Table-level rules: what was observed (e.g. a row count)."""
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    unexpected_values: list[Any] = field(default_factory=list)
    """Up to five distinct failing values."""
    sample_rows: list[dict[str, Any]] = field(default_factory=list)
    """Up to five whole failing rows of the slice (raw rows carry ``_source_file`` and ``_file_row``)."""
    exception: str | None = None
    """Set when the expectation could not be evaluated (missing column, wrong type)."""

    @property
    def observed(self) -> str:
        """A one-line human summary of what was observed."""
        if self.exception:
            return f"error: {self.exception}"
        if self.unexpected_count is not None:
            values = ", ".join(_short(v) for v in self.unexpected_values)
            pct = f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent is not None else ""
            rows = "row" if self.unexpected_count == 1 else "rows"
            return f"{self.unexpected_count} unexpected {rows}{pct}" + (f"; e.g. {values}" if values else "")
        return f"observed {_short(self.observed_value)}"


@dataclass
class ValidationOutcome:
    """The result of validating one partition slice with one suite."""

    suite_name: str
    table: str
    blocking: bool
    window_start: dt.date
    window_end: dt.date
    """First and last day of the window, inclusive."""
    success: bool
    row_count: int
    evaluated: int
    successful: int
    failed: list[FailedExpectation]
    parameters: dict[str, Any]
    """The run-time bounds the suite was evaluated with (the time window)."""
    duration_s: float
    docs_path: str | None = None
    """Path of the Data Docs HTML page of this validation, when a docs directory was given."""

    @property
    def unsuccessful(self) -> int:
        return self.evaluated - self.successful

    @property
    def success_percent(self) -> float:
        return 100.0 * self.successful / self.evaluated if self.evaluated else 100.0


# ---------------------------------------------------------------------------------------------------------
# Windows


def window_days(window_start: dt.date, window_end: dt.date) -> tuple[dt.date, dt.date]:
    """Inclusive ``(first day, last day)`` of a window given as dates (inclusive) or datetimes (half-open)."""
    start_is_dt, end_is_dt = isinstance(window_start, dt.datetime), isinstance(window_end, dt.datetime)
    if start_is_dt != end_is_dt:
        raise TypeError("window_start and window_end must both be dates or both be datetimes")
    if start_is_dt:
        first = window_start.date()
        last = (window_end - dt.timedelta(microseconds=1)).date()
    else:
        first, last = window_start, window_end
    if last < first:
        raise ValueError(f"empty window: {window_start} .. {window_end}")
    return first, last


def _ts_bounds(spec: SuiteSpec, first: dt.date, last: dt.date, aware: bool) -> tuple[Any, Any]:
    lo = dt.datetime.combine(first - dt.timedelta(days=spec.late_days), dt.time())
    hi = dt.datetime.combine(last + dt.timedelta(days=1), dt.time())
    if aware:
        return pd.Timestamp(lo, tz="UTC"), pd.Timestamp(hi, tz="UTC")
    return pd.Timestamp(lo), pd.Timestamp(hi)


# ---------------------------------------------------------------------------------------------------------
# Slices


def fetch_slice(
    con: duckdb.DuckDBPyConnection, suite_name: str, window_start: Any, window_end: Any
) -> pd.DataFrame:
    """The rows of the window that the suite validates, as a DataFrame (index 0..n-1)."""
    spec = SUITES[suite_name]
    first, last = window_days(window_start, window_end)
    try:
        cursor = con.execute(spec.sql(), {"window_start": first, "window_end": last})
        date_columns = [d[0] for d in cursor.description if str(d[1]) == "DATE"]
        df = cursor.df()
    except duckdb.CatalogException as exc:
        raise ValueError(f"suite {suite_name!r}: cannot read {spec.table} ({exc})") from exc
    df = df.reset_index(drop=True)
    # pandas turns DATE into midnight timestamps; remember which were dates so sample rows show them as dates.
    df.attrs["date_columns"] = date_columns
    return df


# ---------------------------------------------------------------------------------------------------------
# The GX context: created once per process (context creation and suite building are the slow parts).


def _share_jinja_bytecode_cache() -> None:
    """Let every GX Data Docs view reuse compiled Jinja templates.

    GX creates a fresh Jinja environment for each page it renders, so every Data Docs build recompiled ~50
    templates (0.9 s of a 1.1 s build on this machine). A process-wide bytecode cache, keyed by template name
    and source checksum, skips the recompilation without changing what is rendered. If GX's view class
    changes shape, docs are built as before, only slower.
    """
    import jinja2
    from great_expectations.render.view import view as gx_view

    cls = getattr(gx_view, "DefaultJinjaView", None)
    if cls is None or getattr(cls, "_aigc_shared_bytecode", False):
        return

    class MemoryBytecodeCache(jinja2.BytecodeCache):
        def __init__(self) -> None:
            self.store: dict[str, bytes] = {}

        def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            if bucket.key in self.store:
                bucket.bytecode_from_string(self.store[bucket.key])

        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            self.store[bucket.key] = bucket.bytecode_to_string()

    # One cache per view class: compiled code depends on the environment's settings (autoescape, filters),
    # which are the same for every instance of a class.
    caches: dict[type, MemoryBytecodeCache] = {}
    original_init = cls.__init__

    def init_with_cache(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        env = getattr(self, "env", None)
        if isinstance(env, jinja2.Environment):
            env.bytecode_cache = caches.setdefault(type(self), MemoryBytecodeCache())

    cls.__init__ = init_with_cache
    cls._aigc_shared_bytecode = True


class _GxState:
    def __init__(self) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        self.datasource = self.context.data_sources.add_pandas("partitions")
        self.validations: dict[str, Any] = {}
        self.checkpoints: dict[tuple[str, str], Any] = {}
        self.sites: dict[str, str] = {}
        self.lock = threading.Lock()
        _share_jinja_bytecode_cache()

    def validation(self, spec: SuiteSpec) -> Any:
        if spec.name not in self.validations:
            gx = self.gx
            asset = self.datasource.add_dataframe_asset(name=spec.name)
            batch_definition = asset.add_batch_definition_whole_dataframe(f"{spec.name}_slice")
            suite = self.context.suites.add(gx.ExpectationSuite(name=spec.name))
            for expectation in spec.expectations():
                suite.add_expectation(expectation)
            self.validations[spec.name] = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=spec.name, data=batch_definition, suite=suite)
            )
        return self.validations[spec.name]

    def site(self, docs_dir: Path) -> str:
        key = str(docs_dir.resolve())
        if key not in self.sites:
            name = "docs_" + hashlib.sha1(key.encode()).hexdigest()[:12]
            self.context.add_data_docs_site(
                site_name=name,
                site_config={
                    "class_name": "SiteBuilder",
                    "site_index_builder": {
                        "class_name": "DefaultSiteIndexBuilder",
                        "validation_results_limit": _INDEX_RESULTS,
                    },
                    "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": key},
                },
            )
            self.sites[key] = name
        return self.sites[key]

    def checkpoint(self, spec: SuiteSpec, site_name: str) -> Any:
        key = (spec.name, site_name)
        if key not in self.checkpoints:
            gx = self.gx
            self.checkpoints[key] = self.context.checkpoints.add(
                gx.Checkpoint(
                    name=f"{spec.name}__{site_name}",
                    validation_definitions=[self.validation(spec)],
                    actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[site_name])],
                    result_format=_RESULT_FORMAT,
                )
            )
        return self.checkpoints[key]


_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": _PARTIAL_UNEXPECTED}
_KEEP_RESULTS = 100
"""Validation results kept in the in-memory store; older ones are dropped so a long-lived process does not grow
without bound."""
_INDEX_RESULTS = 2 * len(SUITES)
"""Validations the Data Docs index lists, the latest first: two runs of every suite. GX rebuilds the index after
each validation by reading back every result it lists, so the limit bounds that work in a long-lived process (the
demo's range, the tests); the pages of older validations stay on disk."""
_STATE: _GxState | None = None
_STATE_LOCK = threading.Lock()


def _gx_state() -> _GxState:
    global _STATE
    with _STATE_LOCK:
        if _STATE is None:
            _STATE = _GxState()
        return _STATE


# ---------------------------------------------------------------------------------------------------------
# Results


def _plain(value: Any) -> Any:
    """A JSON-friendly version of a cell or result value."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "item") and not isinstance(value, list | dict | str):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def _short(value: Any, width: int = 40) -> str:
    text = str(_plain(value))
    return text if len(text) <= width else text[: width - 1] + "…"


def _failed(result: Any, df: pd.DataFrame) -> FailedExpectation:
    config = result.expectation_config
    kwargs = {k: v for k, v in dict(config.kwargs).items() if k != "batch_id"}
    column = kwargs.get("column")
    if column is None and "column_list" in kwargs:
        column = ", ".join(kwargs["column_list"])
    res = dict(result.result or {})
    exception = None
    info = result.exception_info or {}
    # exception_info is either flat or keyed by metric; take the first message that says something.
    candidates = [info] if "exception_message" in info else [v for v in info.values() if isinstance(v, dict)]
    for c in candidates:
        if c.get("raised_exception") and c.get("exception_message"):
            exception = str(c["exception_message"]).splitlines()[0][:300]
            break
    failed = FailedExpectation(
        expectation=config.type,
        column=column,
        rule=_plain(kwargs),
        observed_value=_plain(res.get("observed_value")),
        exception=exception,
    )
    if "unexpected_count" in res:
        failed.unexpected_count = int(res["unexpected_count"])
        pct = res.get("unexpected_percent")
        failed.unexpected_percent = float(pct) if pct is not None else None
        counts = res.get("partial_unexpected_counts") or []
        values = [c["value"] for c in counts] if counts else list(res.get("partial_unexpected_list") or [])
        failed.unexpected_values = [_plain(v) for v in values[:SAMPLE_ROWS]]
        index = list(res.get("partial_unexpected_index_list") or [])[:SAMPLE_ROWS]
        if index:
            rows = df.iloc[[int(i) for i in index]]
            dates = set(df.attrs.get("date_columns", ()))
            failed.sample_rows = [
                {
                    k: _plain(v.date() if k in dates and isinstance(v, pd.Timestamp) else v)
                    for k, v in row.items()
                }
                for row in rows.to_dict("records")
            ]
    return failed


def _docs_path(state: _GxState, identifier: Any, site_name: str) -> str | None:
    urls = state.context.get_docs_sites_urls(resource_identifier=identifier, site_names=[site_name])
    for entry in urls:
        url = entry.get("site_url")
        if url:
            return unquote(urlparse(url).path) if url.startswith("file://") else url
    return None


def _prune_results(state: _GxState, keep: int | None = None) -> None:
    keep = _KEEP_RESULTS if keep is None else keep
    store = state.context.validation_results_store
    keys = store.list_keys()
    if len(keys) <= keep:
        return
    keys.sort(key=lambda k: str(getattr(getattr(k, "run_id", None), "run_time", "")))
    for key in keys[: len(keys) - keep]:
        store.remove_key(key)


def _release_batches(state: _GxState) -> None:
    """Drop the validated slices from GX's pandas execution engine: it caches every batch's DataFrame (the last
    one of each asset) for the life of the process, which would keep each validated slice through every later step
    of a run."""
    manager = state.datasource.get_execution_engine().batch_manager
    manager.batch_data_cache.clear()
    manager.reset_batch_cache()


def validate_partition(
    con: duckdb.DuckDBPyConnection,
    suite_name: str,
    window_start: Any,
    window_end: Any,
    docs_dir: str | Path | None = None,
) -> ValidationOutcome:
    """Validate the window's slice of the suite's table; see the module docstring for the window types.

    ``docs_dir``: when given, GX Data Docs are built there and ``docs_path`` names this validation's page.
    """
    if suite_name not in SUITES:
        raise KeyError(f"unknown suite {suite_name!r}; known: {', '.join(SUITES)}")
    spec = SUITES[suite_name]
    started = time.perf_counter()
    first, last = window_days(window_start, window_end)
    df = fetch_slice(con, suite_name, first, last)

    aware = False
    if spec.time_column and spec.time_column in df.columns:
        aware = isinstance(df[spec.time_column].dtype, pd.DatetimeTZDtype)
    ts_min, ts_max = _ts_bounds(spec, first, last, aware)
    parameters = {PARAM_TS_MIN: ts_min, PARAM_TS_MAX: ts_max}

    state = _gx_state()
    run_name = first.isoformat() if first == last else f"{first.isoformat()}_{last.isoformat()}"
    docs_path = None
    from great_expectations.core.run_identifier import RunIdentifier

    run_id = RunIdentifier(run_name=run_name, run_time=dt.datetime.now(dt.UTC))
    with state.lock:
        if docs_dir is None:
            result = state.validation(spec).run(
                batch_parameters={"dataframe": df},
                expectation_parameters=parameters,
                result_format=_RESULT_FORMAT,
                run_id=run_id,
            )
        else:
            docs = Path(docs_dir)
            docs.mkdir(parents=True, exist_ok=True)
            site_name = state.site(docs)
            checkpoint_result = state.checkpoint(spec, site_name).run(
                batch_parameters={"dataframe": df},
                expectation_parameters=parameters,
                run_id=run_id,
            )
            ((identifier, result),) = checkpoint_result.run_results.items()
            docs_path = _docs_path(state, identifier, site_name)

        _prune_results(state)
        _release_batches(state)

    failed = [_failed(r, df) for r in result.results if not r.success]
    stats = result.statistics
    return ValidationOutcome(
        suite_name=suite_name,
        table=spec.table,
        blocking=spec.blocking,
        window_start=first,
        window_end=last,
        success=bool(result.success),
        row_count=len(df),
        evaluated=int(stats["evaluated_expectations"]),
        successful=int(stats["successful_expectations"]),
        failed=failed,
        parameters={k: _plain(v) for k, v in parameters.items()},
        duration_s=time.perf_counter() - started,
        docs_path=docs_path,
    )


def validate_all(
    con: duckdb.DuckDBPyConnection,
    window_start: Any,
    window_end: Any,
    suites: Iterable[str] | None = None,
    docs_dir: str | Path | None = None,
) -> dict[str, ValidationOutcome]:
    """Every suite (or the given ones) on one window."""
    return {
        name: validate_partition(con, name, window_start, window_end, docs_dir) for name in suites or SUITES
    }
