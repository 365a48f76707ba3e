"""The exports the API answers from, loaded once per exported day and indexed by the key a request names.

Reading the Parquet export on every request would cost a scan of the whole day, growing with the store; a lookup
by customer or SKU should not. Each output's newest complete day is read into memory
once, sorted in the order the endpoint answers in, with a position index per key (customer, SKU). A new day, or
the same day exported again (a new folder replaces the old one), is noticed by the folder's identity and loaded
on the next request; until then the previous snapshot keeps answering, so a write in progress never shows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ml.exports import export_folders


def day_folders(root: Path, output: str) -> list[tuple[str, Path]]:
    """(ISO day, folder) of every complete export of ``output``, oldest first (:func:`ml.exports.export_folders`)."""
    return [(day.isoformat(), folder) for day, folder in export_folders(root, output)]


def _identity(folders: list[Path]) -> tuple:
    out = []
    for f in folders:
        try:
            st = f.stat()
        except FileNotFoundError:  # replaced while we looked: the next request sees the new one
            continue
        out.append((f.name, st.st_ino, st.st_mtime_ns))
    return tuple(out)


@dataclass
class Snapshot:
    """One output as of one day: the rows in answer order and, per indexed key, where each value's rows are."""

    day: str
    frame: pd.DataFrame
    index: dict[str, dict] = field(default_factory=dict)

    def rows(self, key: str, value) -> pd.DataFrame:
        """The rows whose ``key`` is ``value`` (in answer order; empty when there are none)."""
        positions = self.index[key].get(value)
        return self.frame.iloc[positions] if positions is not None else self.frame.iloc[:0]


class ExportCache:
    """Snapshots of the newest export of each output (or of all its days), reloaded when the folders change."""

    def __init__(self, root: Callable[[], Path]):
        self.root = root
        self._lock = threading.Lock()
        self._cache: dict[tuple, tuple[tuple, Snapshot]] = {}

    def latest(self, output: str, order: tuple[str, ...] = (), keys: tuple[str, ...] = ()) -> Snapshot | None:
        """The newest day of ``output`` sorted by ``order`` and indexed by ``keys``; None before the first."""
        return self._snapshot(output, order, keys, every_day=False)

    def every_day(
        self, output: str, order: tuple[str, ...] = (), keys: tuple[str, ...] = ()
    ) -> Snapshot | None:
        """Every exported day of ``output`` together (column ``date``: the day of each row), as of the newest."""
        return self._snapshot(output, order, keys, every_day=True)

    def _snapshot(self, output: str, order, keys, every_day: bool) -> Snapshot | None:
        days = day_folders(self.root(), output)
        if not days:
            return None
        chosen = days if every_day else days[-1:]
        return self._get(
            (every_day, output, order, keys),
            [folder for _, folder in chosen],
            lambda: self._read(days[-1][0], chosen, order, keys, every_day),
        )

    def _get(self, cache_key: tuple, folders: list[Path], load: Callable[[], Snapshot]) -> Snapshot:
        ident = _identity(folders)
        with self._lock:
            hit = self._cache.get(cache_key)
            if hit is not None and hit[0] == ident:
                return hit[1]
            snap = load()
            self._cache[cache_key] = (ident, snap)
            return snap

    @staticmethod
    def _read(
        day: str, folders: list[tuple[str, Path]], order: tuple[str, ...], keys: tuple[str, ...], dated: bool
    ) -> Snapshot:
        """Read the (day, folder) Parquet files; ``order`` names columns, ``-column`` for descending."""
        with duckdb.connect() as con:
            frames = []
            for folder_day, f in folders:
                frame = con.execute("SELECT * FROM read_parquet(?)", [str(f / "*.parquet")]).df()
                frames.append(frame.assign(date=folder_day) if dated else frame)
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        # an output may lack an ordering column (a forecast without warehouses): order by those it has
        order = tuple(c for c in order if c.lstrip("-") in frame.columns)
        if order:
            frame = frame.sort_values(
                [c.lstrip("-") for c in order],
                ascending=[not c.startswith("-") for c in order],
                kind="stable",
                ignore_index=True,
            )
        index = {k: {v: np.asarray(p) for v, p in frame.groupby(k, sort=False).indices.items()} for k in keys}
        return Snapshot(day=day, frame=frame, index=index)
