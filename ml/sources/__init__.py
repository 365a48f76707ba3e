"""Data sources: things that drop one day of files into the landing zone.

A source is the "world" seen from the platform: it writes, for a given day, one Parquet file per table it
delivers (see :mod:`ml.sources.schema` for the contract and :mod:`ml.sources.landing` for the layout). The
platform never reaches into a source's internals, so everything a downstream asset needs must be in the files.

Two sources exist:

- ``simulated`` (:class:`ml.sources.simulated.SimulatedStore`): a seeded, deterministic store that also knows its
  ground truth (true tastes), which lets tests check that models recover it.
- ``online_retail`` (:class:`ml.sources.online_retail.OnlineRetailReplay`): the real UCI Online Retail file
  replayed day by day, dirt included.

Nothing here imports Dagster; the orchestration layer wraps :meth:`Source.write_day` in a partitioned asset.
The concrete modules are imported lazily by :func:`get_source` so that importing this package stays cheap and
free of import cycles (both modules import :class:`Source` from here).
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa

from ml.sources.landing import write_table
from ml.sources.schema import CONTRACTS

log = logging.getLogger(__name__)

SOURCE_NAMES: tuple[str, ...] = ("simulated", "online_retail")
SCALES: tuple[str, ...] = ("small", "medium", "large")


class Source(ABC):
    """One source of landing files. Subclasses build a day's tables; writing is shared here.

    Subclasses set ``name``, ``start_date``, ``end_date`` and ``tables`` and implement :meth:`day_tables`.
    Keeping "build" separate from "write" lets tests and benchmarks inspect a day without touching disk.
    """

    name: str
    start_date: date
    end_date: date | None
    """Last day with data, inclusive; ``None`` means open ended (the simulator can run forever)."""
    tables: tuple[str, ...]
    """The contract tables this source delivers; :meth:`write_day` writes a file for each, every day."""

    @abstractmethod
    def day_tables(self, day: date, tables: Iterable[str] | None = None) -> dict[str, pa.Table]:
        """Build the Arrow tables of ``day`` (all of :attr:`tables`, or only the ones named).

        Each returned table has exactly the contract schema; a table with nothing on that day has zero rows.
        """

    def check_day(self, day: date) -> None:
        """Refuse days outside ``[start_date, end_date]``: an empty file there would look like "no sales"."""
        if day < self.start_date or (self.end_date is not None and day > self.end_date):
            end = self.end_date.isoformat() if self.end_date else "open"
            raise ValueError(f"{self.name}: day {day} is outside the source's range {self.start_date}..{end}")

    def write_day(self, day: date, landing_root: Path) -> dict[str, int]:
        """Write one file per delivered table for ``day`` (zero-row files included); return rows per table.

        Every table is written even when empty, so that a downstream reader can tell "nothing happened" from
        "not delivered yet" by the presence of the file.
        """
        return self.write_tables(self.day_tables(day), day, landing_root)

    def write_tables(self, built: dict[str, pa.Table], day: date, landing_root: Path) -> dict[str, int]:
        """Write one file per delivered table of ``built`` for ``day``; return rows per table."""
        counts: dict[str, int] = {}
        for table_name in self.tables:
            write_table(built[table_name], Path(landing_root), self.name, table_name, day)
            counts[table_name] = built[table_name].num_rows
        return counts

    def write_days(self, start: date, end: date, landing_root: Path) -> dict[date, dict[str, int]]:
        """Write every day of ``[start, end]`` (inclusive), logging one progress line per day."""
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        n_days = (end - start).days + 1
        out: dict[date, dict[str, int]] = {}
        for i in range(n_days):
            day = start + timedelta(days=i)
            t0 = time.perf_counter()
            counts = self.write_day(day, landing_root)
            out[day] = counts
            summary = ", ".join(f"{t}={n}" for t, n in counts.items())
            log.info(
                "%s %s (%d/%d) written in %.2fs: %s",
                self.name,
                day.isoformat(),
                i + 1,
                n_days,
                time.perf_counter() - t0,
                summary,
            )
        return out


def empty_table(table_name: str) -> pa.Table:
    """A zero-row table with the contract schema of ``table_name``."""
    return CONTRACTS[table_name].schema.empty_table()


def get_source(
    name: str,
    *,
    scale: str = "small",
    seed: int = 42,
    dirty_rate: float = 0.0,
    closed_loop: bool = False,
    exports_root: Path | None = None,
    state_root: Path | None = None,
) -> Source:
    """Return the source called ``name``.

    ``scale`` and ``seed`` configure the simulator; the replay of real data has neither and ignores them.
    ``dirty_rate`` > 0 adds realistic dirt to the simulator's days (see :mod:`ml.sources.dirt`); the real data
    brings its own. ``closed_loop`` makes the simulator the shop front of :mod:`ml.shop`, which reads the
    platform's exports under ``exports_root`` and keeps its stock under ``state_root``.
    """
    if closed_loop:
        if name != "simulated" or dirty_rate > 0:
            raise ValueError(
                "the closed loop needs the clean simulated store (a replay of the past cannot answer)"
            )
        if exports_root is None or state_root is None:
            raise ValueError("the closed-loop shop needs exports_root and state_root")
        from ml.shop.front import ClosedLoopStore

        return ClosedLoopStore(scale=scale, seed=seed, exports_root=exports_root, state_root=state_root)
    if name == "simulated":
        from ml.sources.simulated import SimulatedStore

        store = SimulatedStore(scale=scale, seed=seed)
        if dirty_rate > 0:
            from ml.sources.dirt import DirtySource

            return DirtySource(store, rate=dirty_rate, seed=seed)
        return store
    if name == "online_retail":
        from ml.sources.online_retail import OnlineRetailReplay

        return OnlineRetailReplay()
    raise ValueError(f"unknown source {name!r}; known sources: {', '.join(SOURCE_NAMES)}")


__all__ = ["SCALES", "SOURCE_NAMES", "Source", "empty_table", "get_source"]
