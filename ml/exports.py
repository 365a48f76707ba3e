"""Parquet exports of the daily outputs: ``<exports>/<output>/date=YYYY-MM-DD/<output>.parquet``.

A day's folder is written under a temporary name and renamed into place, so a reader (the read API, another
shop system) sees either the previous complete day or the new complete day, never a half-written one. Writing
a day again replaces it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd


def export_file(exports_root: Path, output: str, day: date) -> Path:
    """Where ``day``'s ``output`` lives (it may not exist)."""
    return Path(exports_root) / output / f"date={day.isoformat()}" / f"{output}.parquet"


def read_export(
    exports_root: Path, output: str, day: date, columns: list[str] | None = None
) -> pd.DataFrame | None:
    """``day``'s ``output`` as published (only ``columns`` when given), or ``None`` when that day was never
    exported."""
    path = export_file(exports_root, output, day)
    return pd.read_parquet(path, columns=columns) if path.exists() else None


def read_latest_export(
    exports_root: Path, output: str, day: date, max_age_days: int = 7
) -> pd.DataFrame | None:
    """The newest published ``output`` on or before ``day`` and at most ``max_age_days`` older (None if none):
    what a consumer keeps using when a day was held back (the champion gate) or not yet made."""
    newest = latest_exported_day(exports_root, output, day, max_age_days)
    return read_export(exports_root, output, newest) if newest is not None else None


def latest_exported_day(exports_root: Path, output: str, day: date, max_age_days: int = 7) -> date | None:
    """The day of :func:`read_latest_export`'s frame (None if there is none)."""
    recent = [
        d for d in exported_days(exports_root, output) if day - timedelta(days=max_age_days) <= d <= day
    ]
    return recent[-1] if recent else None


def write_export(frame: pd.DataFrame, exports_root: Path, output: str, day: date) -> Path:
    return _publish(exports_root, output, day, lambda path: frame.to_parquet(path, index=False))


def write_export_from_query(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: Sequence[Any],
    exports_root: Path,
    output: str,
    day: date,
) -> Path:
    """:func:`write_export` of a query's result, streamed by DuckDB into the file (a day too large to hold as one
    frame is never loaded)."""
    return _publish(
        exports_root,
        output,
        day,
        lambda path: con.execute(f"COPY ({sql}) TO '{_quoted(path)}' (FORMAT parquet)", list(params)),
    )


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def _publish(exports_root: Path, output: str, day: date, write: Callable[[Path], Any]) -> Path:
    """Write ``day``'s file into a temporary folder and swap it in, so a reader never sees a half-written day."""
    folder = export_file(exports_root, output, day).parent
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp / f"{output}.parquet")
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder / f"{output}.parquet"


def export_folders(exports_root: Path, output: str) -> list[tuple[date, Path]]:
    """(day, folder) of every exported day of ``output``, oldest first (a half-written day's temporary folder is
    not one)."""
    folder = Path(exports_root) / output
    if not folder.is_dir():
        return []
    return sorted(
        (date.fromisoformat(entry.name.removeprefix("date=")), entry)
        for entry in folder.iterdir()
        if entry.is_dir() and entry.name.startswith("date=")
    )


def exported_days(exports_root: Path, output: str) -> list[date]:
    """The days of ``output`` that were exported, in order."""
    return [day for day, _ in export_folders(exports_root, output)]
