"""A global gradient-boosting model over all SKUs (scikit-learn ``HistGradientBoostingRegressor``).

Direct multi-horizon: one model for all horizons, with the horizon and the target's season position as features,
trained on many past anchors (every ``anchor_step`` periods back from the origin; the most recent anchors keep
only the horizons whose targets are already observed). This avoids feeding predictions back as lags, which on
lumpy demand compounds errors.

- **Target**: demand divided by the series' recent level (mean of the last 112 periods), so the trees learn
  multipliers that transfer between slow and fast movers; predictions are multiplied back.
- **Loss**: Poisson (log link), which suits non-negative counts with many zeros and keeps the mean positive.
- **Rows**: at each anchor, the series the protocol would score there (first seen at least 56 periods before,
  a sale in the last 56), so training looks like the population it is judged on.
- **Weights**: ``weighting="revenue"`` weights rows by the series' revenue in the 28 periods before the anchor,
  as WRMSSE weights the test; ``"sqrt_revenue"`` (default) tempers it, which scored better on the validation
  origins (a few SKUs otherwise dominate the fit); ``"none"`` is uniform. ``"wrmsse"`` aims at the metric
  itself: revenue × level² / naive scale² (WRMSSE divides a series' squared errors by its scale², and an error of
  ``e`` units is ``e / level`` on this model's target); ``"wrmsse_sqrt"`` is its square root. Both scored worse
  than the default on the Online Retail validation origins (``bench.forecast --extra-candidates``).
- **Experimental options** (off by default, compared on validation by ``bench.forecast --extra-candidates``):
  ``anchor_half_life`` weights training anchors by recency (a row ``d`` periods before the origin weighs
  ``0.5 ** (d / half_life)``), for a store whose dynamics drift; ``peak_months`` adds the SKU's demand in those
  calendar months of last season (dated at least half a year before the anchor) relative to its level and to its
  lifetime mean: the only memory of last year's peak a one-year history can offer. ``year_before`` adds, where
  the history reaches a year back, the SKU's and the store's movement after the same date last year, the
  store's level against a year ago and last year's store seasonal factor of the target's week
  (:meth:`ml.forecast.features.AnchorStats.year_before_features`).
- **Regularisation**: few leaves (15), large leaves (``min_samples_leaf`` = rows / 300, between 20 and 1000)
  and L2 10: chosen on the validation origins, where they beat 31 leaves / 200 rows.
- **Quantiles**: the per-series negative binomial of :mod:`ml.forecast.quantiles` around this mean, with levels
  calibrated on validation origins by the ensemble (documented there).
- **Guard**: the mean never exceeds the series' largest day in the last 224 periods (a log-link tree can
  extrapolate wildly for a SKU whose features fall outside the training range).
- **Threads**: ``n_threads`` (default 1) caps OpenMP for the fit and the prediction.
- **Covariates**: ``past_covariates`` are flows observed only up to the origin (Online Retail: ``orders``);
  ``price`` (when present) gives a recent-price-change feature; ``known_covariates`` (a generic CSV's planned
  ``price``/``promo``) are read at the target period, relative to their value at the anchor.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from ml.forecast.base import Forecaster, ShortHistoryError
from ml.forecast.features import (
    AnchorStats,
    anchor_features,
    season_position,
    smoother_states,
    target_features,
)
from ml.forecast.metrics import naive_scales
from ml.forecast.panel import Panel

MIN_AGE = 56
RECENT = 56
BIN_SUBSAMPLE = 200_000  # scikit-learn's HistGradientBoosting binning subsample size


class GlobalGBM(Forecaster):
    """Global direct multi-horizon gradient boosting on level-normalised demand (see the module docstring)."""

    def __init__(
        self,
        horizon: int = 28,
        season_length: int = 6,
        anchor_step: int = 5,
        n_anchors: int = 40,
        max_rows: int = 400_000,
        weighting: str = "sqrt_revenue",
        anchor_half_life: float | None = None,
        peak_months: tuple[int, ...] = (),
        year_before: bool = False,
        past_covariates: tuple[str, ...] = (),
        known_covariates: tuple[str, ...] = (),
        price: str | None = "price",
        max_iter: int = 250,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int | None = None,
        l2_regularization: float = 10.0,
        random_state: int = 0,
        n_threads: int | None = 1,
        name: str = "gbm",
        **kw,
    ):
        covs = tuple(
            dict.fromkeys((*past_covariates, *known_covariates, *((price,) if price else ()), "revenue"))
        )
        super().__init__(covariates=covs, **kw)
        self.horizon = horizon
        self.season_length = season_length
        self.anchor_step = anchor_step
        self.n_anchors = n_anchors
        self.max_rows = max_rows
        self.weighting = weighting
        self.anchor_half_life = anchor_half_life
        self.peak_months = tuple(peak_months)
        self.year_before = year_before
        self.past_covariates = tuple(past_covariates)
        self.known_covariates = tuple(known_covariates)
        self.price = price
        self.params = dict(
            loss="poisson",
            max_iter=max_iter,
            learning_rate=learning_rate,
            max_leaf_nodes=max_leaf_nodes,
            l2_regularization=l2_regularization,
            early_stopping=False,
            random_state=random_state,
        )
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state
        self.n_threads = n_threads
        self.name = name

    # -- training --------------------------------------------------------------------------------------------
    def _fit(self, panel: Panel) -> None:
        # OpenMP threads spin while they wait: on a shared machine, more threads than free cores makes the fit
        # many times slower, so the thread count is explicit (None = scikit-learn's default, all cores).
        with threadpool_limits(self.n_threads):
            self._fit_trees(panel)

    def _fit_trees(self, panel: Panel) -> None:
        origin = panel.n_periods - 1
        anchors = [origin - 1 - j * self.anchor_step for j in range(self.n_anchors)]
        anchors = [a for a in anchors if a >= MIN_AGE]
        if not anchors:
            raise ShortHistoryError("GlobalGBM: history too short for any training anchor")
        self.stats_ = self._stats(panel)
        self.smooth_ = smoother_states(panel.y, [*anchors, origin])
        Xs, ys, ws = [], [], []
        for a in anchors:
            rows = self._eligible(panel, a)
            if not rows.any():
                continue
            ks = range(1, min(self.horizon, origin - a) + 1)
            X, lvl, names = self._design(a, ks, self.stats_.seasonpos[[a + k for k in ks]], rows, None)
            tgt = np.concatenate([self.stats_.F[rows, a + k] for k in ks])
            safe = np.where(lvl > 0, lvl, 1.0)
            Xs.append(X)
            ys.append(tgt / safe)
            ws.append(np.tile(self._anchor_weights(panel, origin, a, rows), len(ks)))
        X = np.vstack(Xs)
        yv = np.concatenate(ys)
        w = np.concatenate(ws)
        if len(yv) > self.max_rows:
            keep = np.random.default_rng(self.random_state).choice(len(yv), self.max_rows, replace=False)
            X, yv, w = X[keep], yv[keep], w[keep]
        self.feature_names_ = names
        # A feature with no value on any row (the year-before ones when no anchor has a year behind it) breaks
        # the trees' binning; as a constant it is never split on, so forecasts ignore it as they should.
        X[:, np.isnan(X).all(axis=0)] = 0.0
        # Large leaves: daily SKU demand is mostly noise, a leaf must average many rows to mean anything.
        leaf = self.min_samples_leaf or int(np.clip(len(yv) // 300, 20, 1000))
        self.model_ = HistGradientBoostingRegressor(min_samples_leaf=leaf, **self.params)
        if (self.weighting == "none" and not self.anchor_half_life) or w.sum() <= 0:
            self.model_.fit(X, yv)
        elif len(yv) > BIN_SUBSAMPLE:
            self.model_.fit(X, yv, sample_weight=w / w.mean())
        else:
            # Below scikit-learn's binning subsample, weighted fits take an exact weighted-percentile path that
            # is orders of magnitude slower; resampling rows in proportion to their weights is equivalent in
            # expectation and keeps small panels (tests, small shops) fast.
            rng = np.random.default_rng(self.random_state)
            idx = rng.choice(len(yv), len(yv), replace=True, p=w / w.sum())
            self.model_.fit(X[idx], yv[idx])
        self.n_train_rows_ = len(yv)

    def update(self, panel: Panel) -> GlobalGBM:
        """Daily refresh: the trained trees stay, the features are recomputed at the new origin of ``panel``.

        Training costs far more than an update and forecast of the whole ensemble (docs/benchmarks/forecast.md),
        so the platform retrains on a slower cadence and conditions every day on the newest demand.
        """
        if not hasattr(self, "model_"):
            return self.fit_panel(panel)
        self.panel_ = panel
        self.stats_ = self._stats(panel)
        self.smooth_ = smoother_states(panel.y, [panel.n_periods - 1])
        self.quantile_model.fit(panel)
        return self

    def for_storage(self) -> GlobalGBM:
        out = super().for_storage()
        out.stats_, out.smooth_ = None, None  # per-series feature state, rebuilt by update()
        return out

    def _stats(self, panel: Panel) -> AnchorStats:
        # getattr: selections stored before peak_months existed still load and update.
        peak = getattr(self, "peak_months", ())
        return AnchorStats(
            panel,
            self.season_length,
            flows=self.past_covariates,
            peak_months=peak,
            year_before=getattr(self, "year_before", False),
        )

    def _eligible(self, panel: Panel, a: int) -> np.ndarray:
        lo = max(a - RECENT + 1, 0)
        recent = (self.stats_.F[:, lo : a + 1] > 0).any(axis=1)
        return (panel.start <= a - MIN_AGE) & recent

    def _anchor_weights(self, panel: Panel, origin: int, a: int, rows: np.ndarray) -> np.ndarray:
        """Training weights of the rows of anchor ``a``: the series weighting, decayed by the anchor's age."""
        w = self._row_weights(panel, a, rows)
        if self.anchor_half_life:
            w = w * 0.5 ** ((origin - a) / self.anchor_half_life)
        return w

    def _row_weights(self, panel: Panel, a: int, rows: np.ndarray) -> np.ndarray:
        if self.weighting == "none":
            return np.ones(rows.sum())
        lo = max(a - 27, 0)
        y = self.stats_.F[rows, lo : a + 1]
        if "revenue" in panel.covariates:
            rev = np.where(y > 0, np.nan_to_num(panel.covariates["revenue"][rows, lo : a + 1]), 0.0).sum(
                axis=1
            )
        elif self.price and self.price in panel.covariates:
            rev = (y * np.nan_to_num(panel.covariates[self.price][rows, lo : a + 1])).sum(axis=1)
        else:
            rev = y.sum(axis=1)
        rev = rev / max(rev.sum(), 1e-12) * len(rev)
        if self.weighting == "sqrt_revenue":
            rev = np.sqrt(rev)
        elif self.weighting in ("wrmsse", "wrmsse_sqrt"):
            # WRMSSE weighs a series' squared errors by revenue / its naive scale²; the target here is demand /
            # level, so an error of e units is e / level on the training scale: weight revenue * level² / scale².
            lvl = self.stats_.level(a)[rows]
            s2 = naive_scales(panel.y[rows, : a + 1])[1]
            rev = rev * np.where(s2 > 0, lvl**2 / np.where(s2 > 0, s2, 1.0), 0.0)
            rev = rev / max(rev.mean(), 1e-12)
            if self.weighting == "wrmsse_sqrt":
                rev = np.sqrt(rev)
        elif self.weighting != "revenue":
            raise ValueError(f"unknown weighting {self.weighting!r}")
        return rev

    def _design(self, a: int, ks, target_pos, rows: np.ndarray, future_covariates: dict | None):
        """Design matrix for anchor ``a``, horizons ``ks`` (row blocks in that order) and the given series."""
        base, lvl = anchor_features(self.stats_, a, self.smooth_, self.price)
        safe = np.where(lvl > 0, lvl, 1.0)
        blocks, names = [], None
        for i, k in enumerate(ks):
            f = dict(base)
            f.update(target_features(self.stats_, a, k, int(target_pos[i]), safe))
            for c in self.known_covariates:
                if c not in self.panel_.covariates:
                    continue
                now = self.panel_.covariates[c][:, a]
                if future_covariates is None:
                    tgt = self.panel_.covariates[c][:, a + k]
                else:
                    tgt = future_covariates.get(c, np.repeat(now[:, None], k, axis=1))[:, k - 1]
                f[f"{c}_target"] = np.nan_to_num(tgt)
                with np.errstate(invalid="ignore", divide="ignore"):
                    f[f"{c}_target_rel"] = np.nan_to_num(tgt / now, nan=1.0, posinf=1.0)
            names = list(f)
            blocks.append(np.column_stack([f[n][rows] for n in names]))
        return np.vstack(blocks), np.tile(lvl[rows], len(blocks)), names

    # -- prediction ------------------------------------------------------------------------------------------
    def _predict_mean(self, h, calendar, future_covariates):
        origin = self.panel_.n_periods - 1
        rows = np.ones(self.panel_.n_series, dtype=bool)
        pos = season_position(calendar, self.season_length)
        ks = range(1, h + 1)
        X, lvl, _ = self._design(origin, ks, pos, rows, future_covariates)
        with threadpool_limits(self.n_threads):
            pred = (self.model_.predict(X) * lvl).reshape(h, -1).T
        # Guard against the log link extrapolating: no daily mean above the series' largest recent day.
        cap = self.stats_.F[:, -224:].max(axis=1)
        return np.minimum(pred, cap[:, None])
