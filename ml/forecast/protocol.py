"""The demand-forecast protocol (docs/PROTOCOLS.md): data preparation, origin, scope and weights.

Online Retail:
- clean sales lines: ``InvoiceNo`` not starting with 'C', ``Quantity > 0``, ``UnitPrice > 0``;
- ``StockCode`` is compared case-insensitively (upper-cased): the file spells some codes both ways (``85123a`` /
  ``85123A``, the same product). With this the scope rule gives exactly the 2,808 SKUs of the protocol; without it
  2,852;
- daily demand per SKU over trading days (dates with any clean sale; season length 6), zero-filled from the SKU's
  first sale;
- test = the last 28 trading days, one origin (the last training day, 2011-11-07), horizon 28;
- in scope: first sale at least 56 trading days before the origin, and a sale in the last 56 training days
  (the origin and the 55 days before it);
- WRMSSE weight = revenue (sum of ``Quantity * UnitPrice``) in the last 28 training days.

Generic long CSV ``unique_id, ds, y`` (+ numeric covariates): the calendar is the set of ``ds`` values, the last
``horizon`` periods are the test, the same scope rule; the weight is ``y * price`` when a ``price`` column exists,
else ``y`` (volume).

Validation origins for model choice lie strictly before the test origin (``origin - k * step``) and use the same
scope rule at their own origin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.forecast.panel import DS, ID, Panel, Y, to_panel

ONLINE_RETAIL_COLUMNS = {"InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice"}
SEASON_LENGTH = 6
HORIZON = 28
MIN_AGE = 56
RECENT = 56
WEIGHT_WINDOW = 28


def read_demand_csv(path) -> tuple[pd.DataFrame, str]:
    """Read ``path`` and return ``(long frame, dataset kind)``; the kind is detected from the columns.

    Online Retail becomes daily SKU demand with ``revenue``, ``price`` and ``orders`` columns; a generic CSV is
    returned as is with ``ds`` parsed (integers stay integers).
    """
    head = pd.read_csv(path, nrows=0)
    cols = set(head.columns)
    if cols >= ONLINE_RETAIL_COLUMNS:
        raw = pd.read_csv(
            path,
            dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": "Int64"},
            parse_dates=["InvoiceDate"],
        )
        return online_retail_daily(raw), "online_retail"
    if {ID, DS, Y} <= cols:
        df = pd.read_csv(path)
        df[ID] = df[ID].astype(str)
        if not pd.api.types.is_numeric_dtype(df[DS]):
            df[DS] = pd.to_datetime(df[DS])
        return df, "generic"
    raise ValueError(
        f"{path}: neither Online Retail ({sorted(ONLINE_RETAIL_COLUMNS)}) nor a long CSV ({ID}, {DS}, {Y})"
    )


def read_online_retail_years(csv_path, year_before_path) -> pd.DataFrame:
    """Daily SKU demand of both Online Retail years as the platform replays them (the year before up to
    2010-11-30, then (I); :func:`ml.sources.online_retail.read_lines`), prepared as :func:`online_retail_daily`."""
    from pathlib import Path

    from ml.sources.online_retail import read_lines

    return online_retail_daily(read_lines(Path(csv_path), Path(year_before_path)))


def clean_online_retail(raw: pd.DataFrame) -> pd.DataFrame:
    """Sales lines only (no cancellations, returns or free/adjustment lines), with an upper-cased StockCode."""
    inv = raw["InvoiceNo"].astype(str)
    ok = ~inv.str.startswith("C") & (raw["Quantity"] > 0) & (raw["UnitPrice"] > 0)
    out = raw.loc[ok].copy()
    out["StockCode"] = out["StockCode"].astype(str).str.strip().str.upper()
    return out


def online_retail_daily(raw: pd.DataFrame) -> pd.DataFrame:
    """Daily demand per SKU on the days it sold: ``unique_id, ds, y, revenue, price, orders``.

    ``price`` is the day's revenue per unit (Online Retail has tiered prices, so it moves with order size: it is
    only ever used lagged, never as a known future value). ``orders`` is the number of invoices with the SKU.
    Zero days are implicit; :func:`~ml.forecast.panel.to_panel` fills them on the trading-day calendar.
    """
    c = clean_online_retail(raw)
    c["ds"] = c["InvoiceDate"].dt.normalize()
    c["revenue"] = c["Quantity"] * c["UnitPrice"]
    g = c.groupby(["StockCode", "ds"], sort=True).agg(
        y=("Quantity", "sum"), revenue=("revenue", "sum"), orders=("InvoiceNo", "nunique")
    )
    g = g.reset_index().rename(columns={"StockCode": ID})
    g["y"] = g["y"].astype(float)
    g["price"] = g["revenue"] / g["y"]
    return g


@dataclass
class Split:
    """One forecast origin of the protocol on a full panel.

    ``origin`` is the index (in ``panel.calendar``) of the last training period; the test is the ``horizon``
    periods after it; ``ids`` are the in-scope series; ``weights`` their WRMSSE weights.
    """

    panel: Panel
    origin: int
    horizon: int
    ids: np.ndarray
    weights: np.ndarray

    @property
    def origin_ds(self):
        return self.panel.calendar[self.origin]

    @property
    def test_calendar(self) -> np.ndarray:
        return self.panel.calendar[self.origin + 1 : self.origin + 1 + self.horizon]

    def train(self) -> Panel:
        """All series (not only in-scope ones) up to and including the origin: what a model may see."""
        return self.panel.head(self.origin + 1)

    def actual(self) -> np.ndarray:
        """Test actuals ``(n_in_scope, horizon)`` for the in-scope series."""
        sub = self.panel.subset(self.ids)
        return sub.filled()[:, self.origin + 1 : self.origin + 1 + self.horizon]

    def history(self, since=None) -> np.ndarray:
        """Training history of the in-scope series (for the metric scales and demand classes); with ``since`` (a
        date), the history as if the data began then (:meth:`~ml.forecast.panel.Panel.since`: each series from
        its first demand on or after it), so that a protocol edition with more data scores as one with less did."""
        panel = self.panel if since is None else self.panel.since(since)
        origin = int(np.searchsorted(panel.calendar, self.origin_ds))
        return panel.subset(self.ids).y[:, : origin + 1]


def in_scope(panel: Panel, origin: int, min_age: int = MIN_AGE, recent: int = RECENT) -> np.ndarray:
    """Mask of series first seen at least ``min_age`` periods before ``origin`` with demand in the last ``recent``."""
    lo = max(origin - recent + 1, 0)
    window = panel.filled()[:, lo : origin + 1]
    return (panel.start <= origin - min_age) & (window > 0).any(axis=1)


def revenue_weights(panel: Panel, origin: int, window: int = WEIGHT_WINDOW) -> np.ndarray:
    """Revenue (``revenue`` covariate, else ``y * price``, else ``y``) over the last ``window`` training periods."""
    sl = slice(max(origin - window + 1, 0), origin + 1)
    y = panel.filled()[:, sl]
    if "revenue" in panel.covariates:
        # The panel forward-fills covariates; revenue is a flow, so zero-demand days must count zero.
        rev = np.where(y > 0, np.nan_to_num(panel.covariates["revenue"][:, sl]), 0.0)
    elif "price" in panel.covariates:
        rev = y * np.nan_to_num(panel.covariates["price"][:, sl])
    else:
        rev = y
    return rev.sum(axis=1)


def make_split(panel: Panel, horizon: int = HORIZON, origin: int | None = None, **scope) -> Split:
    """The protocol split at ``origin`` (default: the test origin, ``horizon`` periods before the end)."""
    if origin is None:
        origin = panel.n_periods - horizon - 1
    if origin < 1 or origin + horizon > panel.n_periods - 1:
        raise ValueError(f"origin {origin} leaves no {horizon}-period test in {panel.n_periods} periods")
    mask = in_scope(panel, origin, **scope)
    w = revenue_weights(panel, origin)
    return Split(panel=panel, origin=origin, horizon=horizon, ids=panel.ids[mask], weights=w[mask])


def validation_origins(
    test_origin: int, n: int = 4, step: int = HORIZON, horizon: int = HORIZON
) -> list[int]:
    """``n`` rolling origins before the test origin whose horizons end on or before it (oldest first)."""
    out = [test_origin - k * step for k in range(1, n + 1)]
    return sorted(o for o in out if o > 0 and o + horizon <= test_origin)


def load_panel(df: pd.DataFrame, kind: str) -> Panel:
    """The full panel of a dataset with the covariates the models and the weights use."""
    covs = [c for c in df.columns if c not in (ID, DS, Y) and pd.api.types.is_numeric_dtype(df[c])]
    return to_panel(df, covariates=covs)
