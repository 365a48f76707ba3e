"""A dense, aligned view of a long demand frame: the representation every forecaster works on.

Demand data arrives long (``unique_id, ds, y`` plus optional covariates). Every model here needs the same things
from it: each series as a vector on one shared period calendar, the period at which each series starts, and the
covariates on the same grid. Building that once (a matrix with NaN before each series' first period) keeps the
models vectorised and small, and makes "nothing after the origin" a single slice instead of a filter that each
model must remember.

Periods are positions on the calendar of all ``ds`` values present (Online Retail: trading days, which are not
evenly spaced in calendar time). Missing rows after a series' first row mean zero demand: the sources record
sales, not the absence of sales.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

ID, DS, Y = "unique_id", "ds", "y"


@dataclass
class Panel:
    """Series on a shared period calendar.

    ``y`` is ``(n_series, n_periods)`` float with NaN before each series' first period; ``covariates`` maps a
    column name to a matrix of the same shape (forward-filled, so a price is known on zero-demand days).
    """

    ids: np.ndarray
    calendar: np.ndarray
    y: np.ndarray
    start: np.ndarray
    covariates: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_series(self) -> int:
        return self.y.shape[0]

    @property
    def n_periods(self) -> int:
        return self.y.shape[1]

    def head(self, n_periods: int) -> Panel:
        """The panel truncated to its first ``n_periods`` periods (a forecast origin is ``n_periods - 1``).

        Series that have not started by then are dropped, since nothing about them is known yet.
        """
        keep = self.start < n_periods
        return Panel(
            ids=self.ids[keep],
            calendar=self.calendar[:n_periods],
            y=self.y[keep, :n_periods],
            start=self.start[keep],
            covariates={k: v[keep, :n_periods] for k, v in self.covariates.items()},
        )

    def since(self, day) -> Panel:
        """The panel as if its data began on ``day`` (the first period on or after it): each series starts at its
        first demand from then on (NaN before), and series without any are dropped. What a protocol edition
        with less history saw."""
        t0 = int(np.searchsorted(self.calendar, np.datetime64(pd.Timestamp(day))))
        y = self.y[:, t0:]
        sold = np.nan_to_num(y, nan=0.0) > 0
        keep = sold.any(axis=1)
        start = np.argmax(sold[keep], axis=1)
        later = np.arange(y.shape[1])[None, :] >= start[:, None]
        return Panel(
            ids=self.ids[keep],
            calendar=self.calendar[t0:],
            y=np.where(later, np.nan_to_num(y[keep], nan=0.0), np.nan),
            start=start,
            covariates={k: v[keep, t0:] for k, v in self.covariates.items()},
        )

    def subset(self, ids) -> Panel:
        """The panel restricted to ``ids`` (in the given order)."""
        pos = pd.Index(self.ids).get_indexer(list(ids))
        if (pos < 0).any():
            raise KeyError("unknown unique_id in subset")
        return Panel(
            ids=self.ids[pos],
            calendar=self.calendar,
            y=self.y[pos],
            start=self.start[pos],
            covariates={k: v[pos] for k, v in self.covariates.items()},
        )

    def filled(self) -> np.ndarray:
        """``y`` with the NaN before each series' start replaced by 0 (for window statistics)."""
        return np.nan_to_num(self.y, nan=0.0)

    def to_long(self) -> pd.DataFrame:
        """Back to the long form (only periods on or after each series' start)."""
        n, t = self.y.shape
        mask = ~np.isnan(self.y)
        rows, cols = np.nonzero(mask)
        out = pd.DataFrame({ID: self.ids[rows], DS: self.calendar[cols], Y: self.y[rows, cols]})
        for k, v in self.covariates.items():
            out[k] = v[rows, cols]
        return out


def to_panel(df: pd.DataFrame, covariates: list[str] | tuple[str, ...] = (), origin=None) -> Panel:
    """Build a :class:`Panel` from a long frame, keeping only rows with ``ds <= origin`` when given.

    The calendar is the sorted set of ``ds`` values in the (truncated) frame. Series are zero-filled from their
    first row; covariates are forward-filled then back-filled within a series.
    """
    missing = {ID, DS, Y} - set(df.columns)
    if missing:
        raise ValueError(f"long frame lacks columns {sorted(missing)}")
    if origin is not None:
        df = df[df[DS] <= origin]
    if df.empty:
        raise ValueError("no rows on or before the origin")
    calendar = np.sort(df[DS].unique())
    ids = np.sort(df[ID].astype(str).unique()).astype(object)
    col = np.searchsorted(calendar, df[DS].to_numpy())
    row = np.searchsorted(ids, df[ID].astype(str).to_numpy())
    n, t = len(ids), len(calendar)
    y = np.zeros((n, t))
    np.add.at(y, (row, col), df[Y].to_numpy(dtype=float))
    start = np.full(n, t, dtype=int)
    np.minimum.at(start, row, col)
    before = np.arange(t)[None, :] < start[:, None]
    y[before] = np.nan
    covs: dict[str, np.ndarray] = {}
    for c in covariates:
        m = np.full((n, t), np.nan)
        m[row, col] = df[c].to_numpy(dtype=float)
        m = np.array(pd.DataFrame(m.T).ffill().bfill().to_numpy().T)
        m[before] = np.nan
        covs[c] = m
    return Panel(ids=ids, calendar=calendar, y=y, start=start, covariates=covs)


def extend_calendar(calendar: np.ndarray, h: int) -> np.ndarray:
    """The ``h`` periods after the end of ``calendar`` when no future dates are given.

    Integers step by their most common gap; datetimes step by their most common gap too (a daily calendar gives
    the next ``h`` days). An irregular calendar (trading days) should pass its future dates explicitly.
    """
    cal = np.asarray(calendar)
    if len(cal) < 2:
        step = 1 if not np.issubdtype(cal.dtype, np.datetime64) else np.timedelta64(1, "D")
    else:
        diffs = np.diff(cal)
        vals, counts = np.unique(diffs, return_counts=True)
        step = vals[np.argmax(counts)]
    return cal[-1] + step * np.arange(1, h + 1)


def next_periods(calendar: np.ndarray, h: int, lookback_days: int = 56) -> np.ndarray:
    """The next ``h`` dates of a trading calendar: calendar days after its end, skipping weekdays on which the
    shop did not trade in the last ``lookback_days`` (Online Retail never trades on Saturdays). A weekday counts
    as closed only once it has passed at least twice without trading, so a short history (the first days of a
    shop) forecasts every calendar day instead of guessing a weekly calendar from one or two dates."""
    cal = pd.DatetimeIndex(np.asarray(calendar))
    last = cal[-1]
    start = max(cal[0], last - pd.Timedelta(days=lookback_days - 1))
    recent = cal[cal >= start]
    passed = pd.date_range(start, last, freq="D").dayofweek.value_counts()
    closed = {d for d in range(7) if passed.get(d, 0) >= 2 and d not in set(recent.dayofweek)}
    open_days = set(range(7)) - closed
    out, day = [], last
    while len(out) < h:
        day = day + pd.Timedelta(days=1)
        if day.dayofweek in open_days:
            out.append(day)
    return pd.DatetimeIndex(out).to_numpy()
