"""`nb1_quantile`: the exact negative-binomial (NB1) quantile the forecasts, the plan and the replays share, now
found by a search on the CDF instead of scipy's per-cell root finding. It must give scipy's answers."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ml.forecast.quantiles import DEDUPLICATE_FROM, calibration_table, nb1_cdf, nb1_quantile, nb1_sf


def _scipy(method: str, x, mean, phi):
    """scipy's ``method`` (ppf, cdf, sf) of NB1(mean, phi), Poisson at phi 1; 0 where the mean is 0."""
    out = np.zeros_like(mean)
    pois = (mean > 0) & (phi <= 1 + 1e-9)
    nb = (mean > 0) & ~pois
    out[pois] = getattr(stats.poisson, method)(x[pois], mean[pois])
    out[nb] = getattr(stats.nbinom, method)(x[nb], mean[nb] / (phi[nb] - 1), 1 / phi[nb])
    return out


def _parameters(rng, n: int, every_poisson: int):
    """Means from a sale a year to a bulk SKU's month, dispersions from Poisson to the cap of 1e4."""
    mean = np.exp(rng.uniform(np.log(1e-4), np.log(1e5), n))
    phi = 1 + np.exp(rng.uniform(np.log(1e-6), np.log(1e4), n))
    phi[::every_poisson] = 1.0
    return mean, phi


def test_equals_scipy_over_the_ranges_the_platform_meets():
    # The levels of the forecasts (0.5, 0.9), the tuning grid and its extremes; a few zero means.
    rng = np.random.default_rng(7)
    n = 40_000
    mean, phi = _parameters(rng, n, every_poisson=5)
    mean[::13] = 0.0
    tau = rng.choice([0.01, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9995, 0.9999], n)
    got = nb1_quantile(mean, phi, tau)  # one call: repeated triples are looked for first
    np.testing.assert_array_equal(got, _scipy("ppf", tau, mean, phi))
    assert n > DEDUPLICATE_FROM > 2_000
    direct = np.concatenate(
        [
            nb1_quantile(mean[i : i + 2_000], phi[i : i + 2_000], tau[i : i + 2_000])
            for i in range(0, n, 2_000)
        ]
    )
    np.testing.assert_array_equal(direct, got)
    # and it is the definition: the smallest k with P(D <= k) >= tau
    pos = mean > 0
    assert (nb1_cdf(got[pos], mean[pos], phi[pos]) >= tau[pos]).all()
    assert (nb1_cdf(got[pos] - 1, mean[pos], phi[pos]) < tau[pos]).all()


def test_by_hand_and_broadcasting():
    # Poisson(2): P(D <= 3) = 0.857, P(D <= 4) = 0.947, P(D <= 5) = 0.983
    assert nb1_quantile(np.array([2.0]), 1.0, 0.9)[0] == 4
    assert nb1_quantile(np.array([2.0]), 1.0, 0.95)[0] == 5
    # NB1(mean 2, phi 2) is NB(r=2, p=1/2): P(0)=1/4, P(1)=1/4, P(2)=3/16, P(3)=1/8, so P(D <= 2) = 0.6875
    assert nb1_quantile(np.array([2.0]), 2.0, 0.68)[0] == 2
    assert nb1_quantile(np.array([2.0]), 2.0, 0.69)[0] == 3
    # rows: phi 1 and 2; columns: levels 0.9 and 0.69. Poisson(2) P(D <= 2) = 0.677 < 0.69; NB1(2, 2):
    # P(4) = 5/64 and P(5) = 6/128, so P(D <= 4) = 0.891 < 0.9 <= P(D <= 5) = 0.9375
    table = nb1_quantile(np.array([[0.0, 2.0], [2.0, 2.0]]), np.array([[1.0], [2.0]]), np.array([0.9, 0.69]))
    np.testing.assert_array_equal(table, [[0, 3], [5, 3]])


@pytest.mark.parametrize("tau", [1.0, 95.0, np.nan])
def test_a_level_of_one_or_more_is_an_error_not_a_zero(tau):
    with pytest.raises(ValueError, match="below 1"):
        nb1_quantile(np.array([3.0]), 2.0, tau)


def test_an_undefined_mean_or_dispersion_plans_nothing_on_either_path():
    # NaN or infinite inputs (broken upstream) gave 0 before, as scipy's NaN was zeroed; the deduplicating path
    # must not let such keys borrow another cell's quantile.
    for n in (100, 2 * DEDUPLICATE_FROM):
        phi = np.full(n, 2.0)
        phi[::2] = np.nan
        mean = np.full(n, 3.0)
        mean[1::4] = np.inf
        q = nb1_quantile(mean, phi, 0.9)
        # NB1(3, 2) = NB(3, 1/2): P(D <= 5) < 0.9 <= P(D <= 6)
        assert (q[::2] == 0).all() and (q[1::4] == 0).all() and (q[3::4] == 6).all()


def test_cdf_and_tail_match_scipy_and_add_up_to_one():
    rng = np.random.default_rng(3)
    n = 20_000
    mean, phi = _parameters(rng, n, every_poisson=4)
    k = np.floor(rng.uniform(-0.2, 3.0, n) * mean)  # some below 0: P(D <= -1) = 0, P(D > -1) = 1
    cdf, sf = nb1_cdf(k, mean, phi), nb1_sf(k, mean, phi)
    np.testing.assert_allclose(cdf, _scipy("cdf", k, mean, phi), rtol=1e-12, atol=0)
    np.testing.assert_allclose(
        sf, _scipy("sf", k, mean, phi), rtol=1e-9, atol=1e-300
    )  # the far tail keeps its digits
    np.testing.assert_allclose(cdf + sf, 1.0, rtol=1e-12)
    assert (cdf[k < 0] == 0).all() and (sf[k < 0] == 1).all()


def _nb1_draws(rng, mean: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Counts with mean ``mean`` and variance ``phi * mean`` (NB1; Poisson where phi = 1)."""
    phi = np.broadcast_to(phi, mean.shape)
    p = 1.0 / phi
    r = mean * p / (1.0 - p + 1e-12)
    return np.where(phi > 1.0 + 1e-9, rng.negative_binomial(np.maximum(r, 1e-9), p), rng.poisson(mean))


def test_the_calibration_table_reports_what_a_known_distribution_covers():
    """Actuals drawn from the forecast's own distribution are covered at about each level before calibration;
    actuals three times more dispersed than the forecast says are under-covered in the tail, and the level
    calibrated on the earlier origins brings the latest origin's coverage back near the target."""
    rng = np.random.default_rng(3)
    levels = (0.5, 0.8, 0.9, 0.95, 0.99)
    n, h = 400, 14
    mean = rng.uniform(0.5, 6.0, size=(n, h))
    phi = np.full(n, 2.0)
    right = [(o, phi, mean, _nb1_draws(rng, mean, phi[:, None])) for o in range(4)]
    wide = [(o, phi, mean, _nb1_draws(rng, mean, np.full((n, 1), 6.0))) for o in range(4)]
    table = pd.DataFrame(calibration_table({"right": right, "wide": wide}, levels)).set_index(
        ["group", "level"]
    )
    assert len(table) == 10 and (table["points"] == 4 * n * h).all()
    for tau in levels:
        ok = table.loc[("right", tau)]
        # a discrete quantile covers at least its level: a little above, never far below
        assert tau - 0.01 <= ok["coverage_uncalibrated"] <= tau + 0.1
        assert abs(ok["coverage_held_out"] - tau) <= 0.03
    tail = table.loc[("wide", 0.95)]
    assert tail["coverage_uncalibrated"] < 0.93 and tail["calibrated_level"] > 0.95
    assert abs(tail["coverage_held_out"] - 0.95) <= 0.02
    # one origin: nothing is held out
    single = calibration_table({"one": right[:1]}, (0.9,))
    assert np.isnan(single[0]["coverage_held_out"]) and single[0]["points"] == n * h
