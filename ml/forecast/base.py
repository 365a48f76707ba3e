"""The one forecasting interface: fit on history up to an origin, predict ``h`` periods with mean and quantiles.

Every model (baselines, the global gradient-boosting model, the ensemble) is a :class:`Forecaster`. The contract
that callers (benchmarks, daily assets, the inventory policy) rely on:

- ``fit(df, origin=None)`` takes a long frame ``unique_id, ds, y`` (plus covariates) and **drops every row after
  ``origin``** before anything else sees it, so no forecast made at an origin can read later data;
- ``predict(h, future=None)`` returns a long frame ``unique_id, ds, mean, q50, q90`` (one column per quantile
  level), non-negative and ordered (``q50 <= q90``), for the ``h`` periods after the last fitted period;
- models work internally on a :class:`~ml.forecast.panel.Panel` (``fit_panel`` / ``predict_panel``), which the
  benchmark uses directly to avoid rebuilding the panel for every model and origin.

Mean-only models get their quantiles from :class:`~ml.forecast.quantiles.NegBinQuantiles` (a per-series
over-dispersed count distribution around the model's mean, with levels that can be re-calibrated on validation
origins); see that module for why.
"""

from __future__ import annotations

import copy
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.forecast.panel import DS, ID, Panel, extend_calendar, to_panel

DEFAULT_QUANTILES: tuple[float, ...] = (0.5, 0.9)


def quantile_column(q: float) -> str:
    """Column name of quantile level ``q``: 0.5 -> ``q50``, 0.9 -> ``q90``, 0.975 -> ``q97.5``."""
    return f"q{round(q * 100, 3):g}"


QUANTILE_COLUMN = re.compile(r"q\d+(\.\d+)?")
"""What :func:`quantile_column` names look like (to find the quantile columns of a forecast frame or table)."""


class ShortHistoryError(ValueError):
    """The history is too short for a model's validation or training windows (the first days of a store)."""


@dataclass
class Forecast:
    """Forecasts for ``ids`` over ``ds`` (``h`` periods): ``mean`` and ``quantiles[level]`` are ``(n, h)``."""

    ids: np.ndarray
    ds: np.ndarray
    mean: np.ndarray
    quantiles: dict[float, np.ndarray]

    def finalise(self) -> Forecast:
        """Clip to non-negative and sort the quantile levels so that they never cross."""
        self.mean = np.clip(np.nan_to_num(self.mean, nan=0.0), 0.0, None)
        levels = sorted(self.quantiles)
        if levels:
            stack = np.stack([np.clip(np.nan_to_num(self.quantiles[q], nan=0.0), 0.0, None) for q in levels])
            stack = np.sort(stack, axis=0)
            self.quantiles = {q: stack[i] for i, q in enumerate(levels)}
        return self

    def subset(self, ids) -> Forecast:
        pos = pd.Index(self.ids).get_indexer(list(ids))
        if (pos < 0).any():
            raise KeyError("unknown unique_id in forecast subset")
        return Forecast(
            ids=self.ids[pos],
            ds=self.ds,
            mean=self.mean[pos],
            quantiles={q: v[pos] for q, v in self.quantiles.items()},
        )

    def to_frame(self) -> pd.DataFrame:
        n, h = self.mean.shape
        out = pd.DataFrame(
            {
                ID: np.repeat(self.ids, h),
                DS: np.tile(self.ds, n),
                "step": np.tile(np.arange(1, h + 1), n),
                "mean": self.mean.ravel(),
            }
        )
        for q in sorted(self.quantiles):
            out[quantile_column(q)] = self.quantiles[q].ravel()
        return out


class Forecaster(ABC):
    """Base class. Subclasses implement ``_fit`` and ``_predict_mean`` (and optionally ``_predict_quantiles``)."""

    name: str = "forecaster"

    def __init__(self, quantiles: tuple[float, ...] = DEFAULT_QUANTILES, covariates: tuple[str, ...] = ()):
        self.quantiles = tuple(quantiles)
        self.covariates = tuple(covariates)
        self.panel_: Panel | None = None
        self.quantile_model = None

    # -- long-frame API -------------------------------------------------------------------------------------
    def fit(self, df: pd.DataFrame, origin=None) -> Forecaster:
        """Fit on the rows of ``df`` with ``ds <= origin`` (all rows when ``origin`` is None)."""
        covs = tuple(c for c in self.covariates if c in df.columns)
        return self.fit_panel(to_panel(df, covariates=covs, origin=origin))

    def predict(self, h: int, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """Forecast ``h`` periods. ``future`` (``ds`` and known covariates for those periods) is optional."""
        cal, fcov = None, None
        if future is not None:
            cal = np.sort(future[DS].unique())[:h]
            fcov = _future_covariates(future, self.panel_, cal, self.covariates)
        return self.predict_panel(h, future_calendar=cal, future_covariates=fcov).to_frame()

    # -- panel API ------------------------------------------------------------------------------------------
    def fit_panel(self, panel: Panel) -> Forecaster:
        self.panel_ = panel
        self._fit(panel)
        if self.quantile_model is None:
            from ml.forecast.quantiles import NegBinQuantiles

            self.quantile_model = NegBinQuantiles()
        self.quantile_model.fit(panel)
        return self

    def update(self, panel: Panel) -> Forecaster:
        """Condition on newer history without re-estimating what was learned: the daily refresh between refits.

        ``panel`` holds the same series (and possibly new ones) up to a later origin. The default refits, which
        is exactly the refresh for the local models (their parameters are fixed smoothing constants, fitting is
        running the smoother); learned models override it to keep their parameters (see ``GlobalGBM.update``).
        """
        return self.fit_panel(panel)

    def for_storage(self) -> Forecaster:
        """A shallow copy without the data it was fitted on, to pickle: what ``update`` rebuilds is dropped.

        A stored model forecasts again after ``update(panel)`` with the history up to the new origin.
        """
        out = copy.copy(self)
        out.panel_ = None
        return out

    def predict_panel(
        self,
        h: int,
        future_calendar: np.ndarray | None = None,
        future_covariates: dict[str, np.ndarray] | None = None,
    ) -> Forecast:
        if self.panel_ is None:
            raise RuntimeError(f"{self.name}: call fit first")
        cal = (
            extend_calendar(self.panel_.calendar, h)
            if future_calendar is None
            else np.asarray(future_calendar)
        )
        mean = np.asarray(self._predict_mean(h, cal, future_covariates or {}), dtype=float)
        mean = np.clip(np.nan_to_num(mean, nan=0.0), 0.0, None)
        qs = self._predict_quantiles(mean, h, cal, future_covariates or {})
        return Forecast(ids=self.panel_.ids, ds=cal, mean=mean, quantiles=qs).finalise()

    @abstractmethod
    def _fit(self, panel: Panel) -> None: ...

    @abstractmethod
    def _predict_mean(
        self, h: int, calendar: np.ndarray, future_covariates: dict[str, np.ndarray]
    ) -> np.ndarray: ...

    def _predict_quantiles(self, mean, h, calendar, future_covariates) -> dict[float, np.ndarray]:
        return self.quantile_model.predict(mean, self.quantiles)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _future_covariates(future: pd.DataFrame, panel: Panel, cal: np.ndarray, names) -> dict[str, np.ndarray]:
    """Known future covariates as ``(n, h)`` matrices aligned to the panel's series; gaps carry the last value."""
    out: dict[str, np.ndarray] = {}
    if panel is None:
        return out
    ids = pd.Index(panel.ids)
    for c in names:
        if c not in future.columns or c not in panel.covariates:
            continue
        m = np.full((panel.n_series, len(cal)), np.nan)
        r = ids.get_indexer(future[ID].astype(str))
        k = np.searchsorted(cal, future[DS].to_numpy())
        ok = (r >= 0) & (k < len(cal))
        m[r[ok], k[ok]] = future[c].to_numpy(dtype=float)[ok]
        last = panel.covariates[c][:, -1]
        m = np.array(pd.DataFrame(np.column_stack([last, m]).T).ffill().to_numpy().T[:, 1:])
        out[c] = m
    return out
