"""The body of a daily asset that measures: per partition day, a function of the warehouse gives one frame per
table; each replaces its day, and the day's summary becomes the materialisation's metadata."""

from collections.abc import Callable, Sequence
from datetime import date

import dagster as dg
import duckdb
import pandas as pd

from ml.warehouse import replace_partition
from orchestration.metadata import summary_metadata
from orchestration.partitions import partition_days
from orchestration.resources import WarehouseResource


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
    days, built, summaries = partition_days(context), [], []
    with warehouse.connect() as con:
        for day in days:
            frames = measure(con, day)
            if frames[0].empty:
                context.log.info(f"{day}: {nothing_measured}")
                continue
            for table, frame in zip(tables, frames, strict=True):
                replace_partition(con, table, "as_of_date", day, frame)
            built.append(day)
            summaries.append(summarize(*frames))
    return dg.MaterializeResult(metadata=summary_metadata(summaries, built, days))
