"""The forecasting models the platform runs: candidate factories and the two ensembles built from them.

:func:`default_model` is the production model the benchmark scores (with the global gradient-boosting model);
:func:`fast_model` is the same selection rule over the vectorised local models only, for the daily step when
the SKU count makes the full model too slow; :func:`model_by_name` resolves the daily step's ``fast``/``full``.
"""

from __future__ import annotations

from ml.forecast.base import DEFAULT_QUANTILES, Forecaster
from ml.forecast.baselines import TSB, CrostonSBA, MovingAverage, Naive, SeasonalNaive
from ml.forecast.ensemble import SelectedEnsemble
from ml.forecast.gbm import GlobalGBM


def candidates(
    kind: str = "generic", season_length: int = 6, horizon: int = 28, covariates=()
) -> dict[str, callable]:
    """Candidate factories for the ensemble, with the covariates a source offers.

    Online Retail: ``orders`` is a past-only flow and ``price`` a past-only level (tiered prices move with order
    size, so a future price is not known). Other sources: every numeric covariate except ``revenue`` is taken as
    known in advance (a planned price or promotion).
    """
    if kind == "online_retail":
        gbm_kw = dict(past_covariates=("orders",), known_covariates=(), price="price")
    else:
        known = tuple(c for c in covariates if c not in ("revenue", "orders"))
        past = ("orders",) if "orders" in covariates else ()
        gbm_kw = dict(
            past_covariates=past, known_covariates=known, price="price" if "price" in known else None
        )
    return {
        "gbm": lambda: GlobalGBM(horizon=horizon, season_length=season_length, **gbm_kw),
        "tsb": lambda: TSB(),
        "tsb_slow": lambda: TSB(alpha_d=0.05, alpha_p=0.05),
        "croston_sba": lambda: CrostonSBA(),
        "moving_average_28": lambda: MovingAverage(28),
        "naive": lambda: Naive(),
        "seasonal_naive": lambda: SeasonalNaive(season_length),
    }


def default_model(
    kind: str = "generic",
    season_length: int = 6,
    horizon: int = 28,
    covariates=(),
    n_origins: int = 4,
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
) -> Forecaster:
    """The class-routed ensemble over :func:`candidates`, chosen on ``n_origins`` rolling validation origins."""
    cands = candidates(kind, season_length, horizon, covariates)
    covs = tuple(dict.fromkeys(c for f in cands.values() for c in f().covariates))
    return SelectedEnsemble(cands, horizon=horizon, n_origins=n_origins, covariates=covs, quantiles=quantiles)


def fast_model(
    season_length: int = 6,
    horizon: int = 28,
    n_origins: int = 4,
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
) -> Forecaster:
    """Class-routed selection over the vectorised local models (TSB, Croston-SBA, moving average, naive, seasonal
    naive), chosen and calibrated on ``n_origins`` rolling validation origins: 10k SKUs in seconds."""
    cands = {k: v for k, v in candidates("generic", season_length, horizon).items() if k != "gbm"}
    return SelectedEnsemble(
        cands,
        horizon=horizon,
        n_origins=n_origins,
        name="fast_ensemble",
        member_quantiles=False,
        quantiles=quantiles,
    )


def model_by_name(
    name: str,
    season_length: int = 6,
    horizon: int = 28,
    n_origins: int = 4,
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
) -> Forecaster:
    """``fast`` (:func:`fast_model`, the daily default: 10k SKUs in seconds) or ``full`` (:func:`default_model`
    with Online Retail's covariates and the global gradient-boosting model: minutes)."""
    if name == "fast":
        return fast_model(season_length, horizon, n_origins, quantiles)
    if name == "full":
        return default_model(
            "online_retail", season_length, horizon, ("revenue", "orders", "price"), n_origins, quantiles
        )
    raise ValueError(f"unknown model {name!r}: 'fast', 'full' or a Forecaster")
