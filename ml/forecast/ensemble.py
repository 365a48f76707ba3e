"""Model selection and combination on rolling validation origins, routed by demand class.

The rule (never looks at the test window):

1. Take ``n_origins`` origins before the fitted origin, ``step`` periods apart, each with a full horizon that
   ends on or before the fitted origin (or the dates named in ``validation_days``, under the same condition).
2. At each, fit every candidate on the data up to that origin only and forecast the next ``horizon`` periods;
   score the series the protocol would score there (same scope rule and revenue weights).
3. Bias gate: a candidate whose forecasts, pooled over every validation origin and series, miss the pooled
   actuals by more than ``max_validation_bias`` (default 5%, the benchmark floor's bias bound) is not eligible
   (if none passes, the least biased one is). RMSSE alone rewards a member that is far off in total but helps
   the squared error of the combination (on Online Retail, a slow TSB at +14% pooled bias, +78% at one origin).
4. For each Syntetos–Boylan class (computed at that origin), build the combination greedily (Caruana et al.,
   2004): start empty and repeatedly add, with replacement, the candidate whose addition most lowers the class's
   WRMSSE summed over all validation origins, for ``steps`` rounds; weights are the selection counts /
   ``steps``. A class with too few validation series uses the weights found on all series together. Greedy
   selection with replacement is hard to overfit and needs no solver.
5. Calibrate the negative-binomial quantile levels of the combined mean per class, so that each class's pooled
   validation coverage of ``q50``/``q90`` hits 50%/90% (see :mod:`ml.forecast.quantiles`); each candidate's own
   levels are calibrated the same way (all series together), so members can be reported with honest quantiles.
6. Refit every candidate on all the data up to the origin and combine with those weights.
7. Optional level factor (``level_factor_days``, a subset of ``validation_days``): the pooled actuals over the
   pooled combined forecasts at those origins, multiplied into the forecast. It is meant for a season the
   rolling origins cannot see (the last peak, a year before), fitted on validation origins of that season and
   applied to a forecast of the same season; the quantile levels stay those calibrated on unscaled forecasts.

Averaging over several origins matters: one 28-day window cannot separate models that are 1% apart.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.forecast.base import Forecast, Forecaster, ShortHistoryError
from ml.forecast.classify import CLASSES, adi_cv2, classify
from ml.forecast.metrics import bias as pooled_bias
from ml.forecast.metrics import naive_scales, rmsse_per_series
from ml.forecast.panel import Panel
from ml.forecast.protocol import in_scope, revenue_weights, validation_origins
from ml.forecast.quantiles import NegBinQuantiles, calibrate_levels, calibration_table

ALL = "all"


@dataclass
class ValidationRecord:
    """Forecasts of every candidate at one validation origin, for the series in scope there."""

    origin: int
    ids: np.ndarray
    weights: np.ndarray
    classes: np.ndarray
    actual: np.ndarray
    scale2: np.ndarray
    phi: np.ndarray
    means: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def fit_predict_at(
    factory: Callable[[], Forecaster], panel: Panel, origin: int, horizon: int, with_quantiles: bool = False
) -> Forecaster:
    """Fit a fresh model on ``panel`` up to ``origin``; return it (``.forecast_`` holds the next ``horizon``).

    The future calendar and covariate values of the next ``horizon`` periods are read from ``panel``; only models
    that declare a covariate as known in advance use it.
    """
    train = panel.head(origin + 1)
    model = factory().fit_panel(train)
    cal = panel.calendar[origin + 1 : origin + 1 + horizon]
    keep = pd.Index(panel.ids).get_indexer(train.ids)
    fcov = {k: v[keep, origin + 1 : origin + 1 + horizon] for k, v in panel.covariates.items()}
    if with_quantiles:
        model.forecast_ = model.predict_panel(len(cal), future_calendar=cal, future_covariates=fcov)
    else:  # validation needs only the mean; NB quantiles of every cell would dominate the cost
        mean = np.asarray(model._predict_mean(len(cal), cal, fcov), dtype=float)
        mean = np.clip(np.nan_to_num(mean, nan=0.0), 0.0, None)
        model.forecast_ = Forecast(ids=model.panel_.ids, ds=cal, mean=mean, quantiles={})
    return model


class SelectedEnsemble(Forecaster):
    """Class-routed greedy combination of candidate forecasters chosen on rolling validation origins."""

    def __init__(
        self,
        candidates: dict[str, Callable[[], Forecaster]],
        horizon: int = 28,
        n_origins: int = 4,
        step: int | None = None,
        steps: int = 10,
        min_class_series: int = 100,
        name: str = "ensemble",
        member_quantiles: bool = True,
        max_validation_bias: float | None = 0.05,
        validation_days=None,
        level_factor_days=None,
        **kw,
    ):
        super().__init__(**kw)
        # Explicit validation origins (dates) instead of the rolling ones: a protocol may need a season that the
        # last n_origins x step periods do not hold (a peak a year before the forecast).
        self.validation_days = (
            tuple(pd.Timestamp(d) for d in validation_days) if validation_days is not None else None
        )
        self.level_factor_days = (
            tuple(pd.Timestamp(d) for d in level_factor_days) if level_factor_days else None
        )
        if self.level_factor_days and not set(self.level_factor_days) <= set(self.validation_days or ()):
            raise ValueError("level_factor_days must be among the validation_days")
        self.max_validation_bias = max_validation_bias
        # Calibrated quantiles for every member cost one NB quantile pass per member: the benchmark wants them
        # (members are reported too), the daily step does not.
        self.member_quantiles = member_quantiles
        self.candidates = dict(candidates)
        self.horizon = horizon
        self.n_origins = n_origins
        self.step = step or horizon
        self.steps = steps
        self.min_class_series = min_class_series
        self.name = name

    # -- validation ------------------------------------------------------------------------------------------
    def validate(self, panel: Panel) -> list[ValidationRecord]:
        """Candidates' forecasts at each rolling validation origin of ``panel`` (whose end is the origin)."""
        import time

        records = []
        for v in self.origins_in(panel):
            mask = in_scope(panel, v)
            ids = panel.ids[mask]
            sub = panel.subset(ids)
            hist = sub.y[:, : v + 1]
            adi, cv2 = adi_cv2(hist)
            qm = NegBinQuantiles().fit(sub.head(v + 1))
            rec = ValidationRecord(
                origin=v,
                ids=ids,
                weights=revenue_weights(panel, v)[mask],
                classes=classify(adi, cv2),
                actual=sub.filled()[:, v + 1 : v + 1 + self.horizon],
                scale2=naive_scales(hist)[1],
                phi=qm.phi_,
            )
            for name, factory in self.candidates.items():
                t0 = time.perf_counter()
                model = fit_predict_at(factory, panel, v, self.horizon)
                rec.means[name] = model.forecast_.subset(ids).mean
                rec.seconds[name] = time.perf_counter() - t0
            records.append(rec)
        return records

    def origins_in(self, panel: Panel) -> list[int]:
        """The validation origins (indices into ``panel.calendar``, oldest first): ``validation_days`` when set
        (each a period of the panel whose horizon ends by the panel's last period), else ``n_origins`` rolling
        origins ``step`` periods apart before its end."""
        end = panel.n_periods - 1
        if self.validation_days is None:
            return validation_origins(end, self.n_origins, self.step, self.horizon)
        calendar = pd.DatetimeIndex(panel.calendar)
        origins = []
        for day in sorted(self.validation_days):
            if day not in calendar:
                raise ValueError(f"validation day {day.date()} is not a period of the history")
            v = int(calendar.get_loc(day))
            if v + self.horizon > end:
                raise ValueError(
                    f"validation day {day.date()}: its {self.horizon}-period horizon passes the fit origin "
                    f"{calendar[end].date()}"
                )
            origins.append(v)
        return origins

    def _class_loss(self, records, cls: str, means_of) -> float:
        """Revenue-weighted RMSSE of class ``cls`` summed over origins (each origin normalised by its weights)."""
        tot = 0.0
        for r in records:
            sel = np.ones(len(r.ids), bool) if cls == ALL else (r.classes == cls)
            if not sel.any():
                continue
            rm = rmsse_per_series(r.actual[sel], means_of(r)[sel], r.scale2[sel])
            ok = np.isfinite(rm)
            tot += float((r.weights[sel][ok] * rm[ok]).sum() / max(r.weights.sum(), 1e-12))
        return tot

    def _eligible(self, records) -> list[str]:
        """Candidates within ``max_validation_bias`` pooled over all validation origins (see step 3)."""
        actual = np.concatenate([r.actual.ravel() for r in records])
        self.validation_bias_ = {
            n: pooled_bias(actual, np.concatenate([r.means[n].ravel() for r in records]))
            if np.nansum(actual) > 0
            else 0.0  # nothing sold on any validation window: no bias to measure, nobody is excluded
            for n in self.candidates
        }
        if self.max_validation_bias is None:
            return list(self.candidates)
        ok = [n for n, b in self.validation_bias_.items() if abs(b) <= self.max_validation_bias]
        return ok or [min(self.validation_bias_, key=lambda n: abs(self.validation_bias_[n]))]

    def _greedy(self, records, cls: str) -> dict[str, float]:
        names = self.eligible_
        counts = dict.fromkeys(names, 0)
        for _ in range(self.steps):
            best, best_loss = None, np.inf
            for n in names:
                trial = dict(counts)
                trial[n] += 1
                loss = self._class_loss(records, cls, lambda r, t=trial: _combine(r.means, t))
                if loss < best_loss - 1e-12:
                    best, best_loss = n, loss
            counts[best] += 1
        return {n: c / self.steps for n, c in counts.items() if c}

    # -- Forecaster ------------------------------------------------------------------------------------------
    def _fit(self, panel: Panel) -> None:
        records = self.validate(panel)
        if not records:
            raise ShortHistoryError("SelectedEnsemble: history too short for a validation origin")
        self.records_ = records
        self.eligible_ = self._eligible(records)
        glob = self._greedy(records, ALL)
        self.weights_ = {ALL: glob}
        for cls in CLASSES:
            n = sum(int((r.classes == cls).sum()) for r in records)
            self.weights_[cls] = self._greedy(records, cls) if n >= self.min_class_series else glob

        # Quantile levels: per class for the combination, all series together for each candidate.
        self.class_levels_ = {}
        for cls in CLASSES:
            recs = [
                (r.phi[m], _combine(r.means, self.weights_[cls])[m], r.actual[m])
                for r in records
                if (m := r.classes == cls).any()
            ]
            n = sum(len(p) for p, _, _ in recs)
            self.class_levels_[cls] = (
                calibrate_levels(recs, self.quantiles) if n >= self.min_class_series else None
            )
        all_recs = [(r.phi, _combine(r.means, glob), r.actual) for r in records]
        self.global_levels_ = calibrate_levels(all_recs, self.quantiles)
        own = [cls for cls in CLASSES if self.class_levels_[cls] is not None]
        groups = {
            cls: [
                (r.origin, r.phi[m], _combine(r.means, self.weights_[cls])[m], r.actual[m])
                for r in records
                if (m := r.classes == cls).any()
            ]
            for cls in own
        }
        groups[ALL] = [(r.origin, *rec) for r, rec in zip(records, all_recs, strict=True)]
        self.calibration_ = calibration_table(groups, self.quantiles)
        for row in self.calibration_:
            # "all" serves the classes too small for levels of their own
            row["serves"] = [row["group"]] if row["group"] != ALL else [c for c in CLASSES if c not in own]
        self.member_levels_ = {
            name: calibrate_levels([(r.phi, r.means[name], r.actual) for r in records], self.quantiles)
            for name in self.candidates
            if self.member_quantiles
        }

        self.level_factor_ = self.level_factor(self.level_factor_days)
        self.members_ = {name: factory().fit_panel(panel) for name, factory in self.candidates.items()}
        self._route(panel)

    def level_factor(self, days) -> float:
        """Step 7: pooled actuals / pooled routed forecasts at the validation origins on ``days`` (1 without
        days); callable after fitting, for any subset of the validation days."""
        days = {pd.Timestamp(d) for d in days or ()}
        if not days:
            return 1.0
        recs = [r for r in self.records_ if pd.Timestamp(self.panel_.calendar[r.origin]) in days]
        actual = sum(float(np.nansum(r.actual)) for r in recs)
        forecast = sum(float(_routed(r.means, r.classes, self.weights_).sum()) for r in recs)
        return actual / forecast if forecast > 0 and actual > 0 else 1.0

    def _route(self, panel: Panel) -> None:
        """Demand class of every series of ``panel`` and the quantile levels of its class."""
        adi, cv2 = adi_cv2(panel.y)
        self.classes_ = classify(adi, cv2)
        qm = NegBinQuantiles()
        qm.level_map = {
            q: np.array([(self.class_levels_[c] or self.global_levels_)[q] for c in self.classes_])
            for q in self.quantiles
        }
        self.quantile_model = qm

    def used_members(self) -> list[str]:
        """Candidates with a non-zero weight in some class: the only ones a forecast needs."""
        return [n for n in self.candidates if any(n in w for w in self.weights_.values())]

    # -- refresh between selections --------------------------------------------------------------------------
    def update(self, panel: Panel) -> SelectedEnsemble:
        """Daily refresh: members condition on the newer history (``Forecaster.update``: the GBM keeps its trees,
        local models rerun their smoothers); weights, routing rule and quantile levels stay as last chosen.
        Members without weight are dropped (nothing reads them)."""
        used = self.used_members()
        return self._attach(panel, {n: m.update(panel) for n, m in self.members_.items() if n in used})

    def for_storage(self) -> SelectedEnsemble:
        """The selection without data: used members (stored the same way), weights, quantile levels and the
        validation summary; ``update(panel)`` makes it forecast again."""
        summary = self.selection_summary()
        out = super().for_storage()
        used = self.used_members()
        out.members_ = {n: m.for_storage() for n, m in self.members_.items() if n in used}
        out.records_ = None  # the validation forecasts: large, and summarised in selection_
        # Factories are often lambdas (not picklable); a stored selection is updated, never refitted.
        out.candidates = dict.fromkeys(self.candidates)
        out.selection_ = summary
        out.member_forecasts_ = {}
        return out

    def with_members_fitted(self, panel: Panel) -> SelectedEnsemble:
        """A copy with the same weights and quantile levels whose members are fitted afresh on ``panel``: the
        selection reused at another origin (as between two weekly selections), without re-validating."""
        members = {n: self.candidates[n]().fit_panel(panel) for n in self.used_members()}
        return copy.copy(self)._attach(panel, members)

    def _attach(self, panel: Panel, members: dict[str, Forecaster]) -> SelectedEnsemble:
        """Serve ``panel`` with ``members``: routing and quantile dispersions follow the panel's series."""
        self.panel_, self.members_ = panel, members
        self._route(panel)
        self.quantile_model.fit(panel)
        return self

    def _predict_mean(self, h, calendar, future_covariates):
        self.member_forecasts_: dict[str, Forecast] = {}
        for name, m in self.members_.items():
            if self.member_quantiles:
                fc = m.predict_panel(h, future_calendar=calendar, future_covariates=future_covariates)
                fc.quantiles = {
                    q: m.quantile_model.quantile_at(fc.mean, self.member_levels_[name][q])
                    for q in self.quantiles
                }
                self.member_forecasts_[name] = fc.finalise()
            else:
                mean = m._predict_mean(h, calendar, future_covariates or {})
                mean = np.clip(np.nan_to_num(np.asarray(mean, dtype=float), nan=0.0), 0.0, None)
                self.member_forecasts_[name] = Forecast(
                    ids=m.panel_.ids, ds=calendar, mean=mean, quantiles={}
                )
        routed = _routed({k: f.mean for k, f in self.member_forecasts_.items()}, self.classes_, self.weights_)
        # getattr: selections stored before the level factor existed still load and forecast.
        return routed * getattr(self, "level_factor_", 1.0)

    def selection_summary(self) -> dict:
        """What was chosen and why: weights per class, calibrated levels, candidates' validation WRMSSE."""
        if getattr(self, "records_", None) is None and hasattr(self, "selection_"):
            return self.selection_  # a stored selection (for_storage) keeps its summary, not its records

        def scores(means_at) -> dict:
            wr, bias = [], []
            for r in self.records_:
                m = means_at(r)
                rm = rmsse_per_series(r.actual, m, r.scale2)
                ok = np.isfinite(rm)
                wr.append(float((r.weights[ok] * rm[ok]).sum() / r.weights[ok].sum()))
                bias.append(pooled_bias(r.actual, m))
            return {
                "WRMSSE_by_origin": [round(v, 4) for v in wr],
                "WRMSSE_mean": round(float(np.mean(wr)), 4),
                "bias_by_origin": [round(v, 4) for v in bias],
            }

        per = {name: scores(lambda r, n=name: r.means[n]) for name in self.candidates}
        per[self.name] = scores(lambda r: _routed(r.means, r.classes, self.weights_))
        return {
            "validation_origins": [str(self.panel_.calendar[r.origin])[:10] for r in self.records_],
            "validation_bias": {n: round(b, 4) for n, b in self.validation_bias_.items()},
            "eligible": self.eligible_,
            "max_validation_bias": self.max_validation_bias,
            "weights": self.weights_,
            "level_factor": round(getattr(self, "level_factor_", 1.0), 4),
            "level_factor_days": [str(d.date()) for d in self.level_factor_days or ()],
            "quantile_levels_by_class": self.class_levels_,
            "quantile_calibration": getattr(self, "calibration_", []),
            "quantile_levels_members": self.member_levels_,
            "validation": per,
        }


def _routed(means: dict[str, np.ndarray], classes: np.ndarray, weights: dict[str, dict]) -> np.ndarray:
    """Each series combined with the weights of its demand class (``weights[class]``)."""
    out = np.zeros_like(next(iter(means.values())))
    for cls in CLASSES:
        sel = classes == cls
        if sel.any():
            out[sel] = _combine({k: v[sel] for k, v in means.items()}, weights[cls])
    return out


def _combine(means: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    total = sum(weights.values())
    return sum(w * means[n] for n, w in weights.items()) / total
