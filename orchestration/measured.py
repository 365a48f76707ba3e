"""The body of a daily warehouse-writing asset: every day of the partition window on one connection, the days'
summaries as the materialisation's metadata; and the special case of an asset that measures (a function of the
warehouse gives one frame per table, each replaces its day)."""

from collections.abc import Callable, Sequence
from datetime import date

import dagster as dg
import duckdb
import pandas as pd

from ml.warehouse import replace_partition
from orchestration.metadata import summary_metadata
from orchestration.partitions import partition_days
from orchestration.resources import WarehouseResource


def each_day(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    step: Callable[[duckdb.DuckDBPyConnection, date], dict | None],
) -> dg.MaterializeResult:
    """Run ``step(con, day)`` for every day of the partition window on one connection; it writes the day and
    returns its summary, or ``None`` when the day built nothing. The summaries become the metadata."""
    days, built, summaries = partition_days(context), [], []
    with warehouse.connect() as con:
        for day in days:
            day_summary = step(con, day)
            if day_summary is not None:
                built.append(day)
                summaries.append(day_summary)
    return dg.MaterializeResult(metadata=summary_metadata(summaries, built, days))


def write_measured_days(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    measure: Callable[[duckdb.DuckDBPyConnection, date], Sequence[pd.DataFrame]],
    tables: Sequence[str],
    summarize: Callable[..., dict],
    nothing_measured: str,
) -> dg.MaterializeResult:
    """``measure(con, day)`` returns a frame per table of ``tables`` (in that order); an empty first frame means
    there was nothing to measure that day (logged as ``nothing_measured``); ``summarize(*frames)`` is the day's
    summary."""

    def step(con: duckdb.DuckDBPyConnection, day: date) -> dict | None:
        frames = measure(con, day)
        if frames[0].empty:
            context.log.info(f"{day}: {nothing_measured}")
            return None
        for table, frame in zip(tables, frames, strict=True):
            replace_partition(con, table, "as_of_date", day, frame)
        return summarize(*frames)

    return each_day(context, warehouse, step)
