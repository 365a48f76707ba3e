"""Paths and writes of the landing zone: ``<landing_root>/<source>/<table>/date=YYYY-MM-DD/*.parquet``.

Every path that is built from a partition key or a file name goes through :func:`safe_join`, so a crafted key
such as ``../../etc`` is refused instead of escaping the landing directory.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ml.sources.schema import CONTRACTS

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class LandingPathError(ValueError):
    """A source, table or partition key that would leave the landing directory or is malformed."""


def parse_day(key: str | date) -> date:
    """Parse a partition key ``YYYY-MM-DD`` strictly (no path characters, no other formats)."""
    if isinstance(key, date):
        return key
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", key or ""):
        raise LandingPathError(f"partition key {key!r} is not a date of the form YYYY-MM-DD")
    return date.fromisoformat(key)


def safe_join(root: Path, *parts: str) -> Path:
    """Join ``parts`` under ``root`` and refuse any result outside ``root``."""
    root = Path(root).resolve()
    path = root.joinpath(*parts).resolve()
    if path != root and root not in path.parents:
        raise LandingPathError(f"path {'/'.join(parts)!r} escapes the landing directory {root}")
    return path


def day_dir(landing_root: Path, source: str, table: str, day: str | date) -> Path:
    for label, value in (("source", source), ("table", table)):
        if not _NAME.match(value):
            raise LandingPathError(f"{label} name {value!r} is not a plain identifier")
    return safe_join(landing_root, source, table, f"date={parse_day(day).isoformat()}")


def day_files(landing_root: Path, source: str, table: str, day: str | date) -> list[Path]:
    """The files of one table and day, sorted by name; a file whose name would escape is refused."""
    folder = day_dir(landing_root, source, table, day)
    if not folder.is_dir():
        return []
    files = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith((".", "_")):
            continue  # writers' temporary files and markers (e.g. _SUCCESS)
        files.append(safe_join(folder, entry.name))
    return files


def landed_days(landing_root: Path, source: str, table: str) -> list[str]:
    """The days (ISO keys, sorted) that have a ``date=`` folder of ``table`` in the landing zone."""
    root = landing_root / source / table
    if not root.is_dir():
        return []
    days = []
    for entry in root.iterdir():
        if entry.is_dir() and entry.name.startswith("date="):
            try:
                days.append(parse_day(entry.name.removeprefix("date=")).isoformat())
            except ValueError:
                continue  # a folder that is not a partition is not ours to load
    return sorted(days)


def write_table(table: pa.Table, landing_root: Path, source: str, table_name: str, day: str | date) -> Path:
    """Write one day of one table as a single Parquet file, atomically, replacing what was there.

    The file is cast to the contract schema first, so a source can never land a column in another type.
    Writing is deterministic: the same rows give the same bytes.
    """
    contract = CONTRACTS[table_name]
    table = table.select(list(contract.columns)).cast(contract.schema)
    folder = day_dir(landing_root, source, table_name, day)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.parquet"):
        stale.unlink()
    target = folder / "part-0.parquet"
    tmp = folder / ".part-0.parquet.tmp"
    pq.write_table(table, tmp, compression="zstd", row_group_size=256_000)
    tmp.replace(target)
    return target
