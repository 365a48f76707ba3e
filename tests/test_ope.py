"""Off-policy estimators against a synthetic bandit whose true values are known exactly."""

import numpy as np
import pytest

from ml.feedback.ope import (
    LoggedRounds,
    dm,
    dr,
    dr_shrunk,
    effective_sample_size,
    estimate_all,
    estimators,
    ips,
    sndr,
    snips,
)

# Two contexts x three actions: mean reward of each action in each context.
MEANS = np.array([[0.10, 0.30, 0.05], [0.40, 0.05, 0.20]])
LOGGING = np.array([[0.5, 0.25, 0.25], [0.2, 0.4, 0.4]])
TARGET = np.array([[0.0, 1.0, 0.0], [0.9, 0.0, 0.1]])
TRUE_VALUE = 0.5 * (TARGET * MEANS).sum(axis=1).sum()


def _logs(n: int, seed: int, model: np.ndarray = MEANS) -> LoggedRounds:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, n)
    a = (rng.random(n)[:, None] > LOGGING[x].cumsum(axis=1)).sum(axis=1)
    r = (rng.random(n) < MEANS[x, a]).astype(float)
    return LoggedRounds(
        reward=r,
        logging_propensity=LOGGING[x, a],
        target_propensity=TARGET[x, a],
        predicted_reward=model[x, a],
        target_predicted_reward=(TARGET[x] * model[x]).sum(axis=1),
    )


def test_weighted_estimators_recover_the_target_policys_true_value():
    rounds = _logs(200_000, seed=1)
    assert pytest.approx(0.5 * 0.30 + 0.5 * (0.9 * 0.40 + 0.1 * 0.20)) == TRUE_VALUE
    for estimator in (ips, snips, dr, sndr):
        assert estimator(rounds) == pytest.approx(TRUE_VALUE, abs=0.006), estimator.__name__
    assert dm(rounds) == pytest.approx(TRUE_VALUE, abs=0.004)  # a right model: only the contexts' sampling


def test_doubly_robust_corrects_a_biased_reward_model_that_misleads_the_direct_method():
    biased = MEANS + 0.1  # every mean 0.1 too high
    rounds = _logs(200_000, seed=2, model=biased)
    assert dm(rounds) == pytest.approx(TRUE_VALUE + 0.1, abs=0.004)
    assert dr(rounds) == pytest.approx(TRUE_VALUE, abs=0.006)
    assert dr_shrunk(rounds, 0.0) == pytest.approx(dm(rounds))
    assert dr_shrunk(rounds, np.inf) == pytest.approx(dr(rounds))
    between = dr_shrunk(rounds, 1.0)
    assert min(dm(rounds), dr(rounds)) < between < max(dm(rounds), dr(rounds))


def test_on_the_logging_policy_itself_the_weighted_estimators_give_the_logged_mean():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.1, 0.9, 500)
    r = rng.random(500)
    rounds = LoggedRounds(r, p, p)
    assert ips(rounds) == pytest.approx(r.mean())
    assert snips(rounds) == pytest.approx(r.mean())
    assert effective_sample_size(rounds) == pytest.approx(500)


def test_effective_sample_size_falls_when_the_target_goes_where_the_logs_rarely_went():
    rounds = _logs(10_000, seed=4)
    assert 0.2 * 10_000 < effective_sample_size(rounds) < 0.6 * 10_000


def test_intervals_cover_the_point_estimate_and_the_truth():
    rounds = _logs(20_000, seed=5)
    result = estimate_all(rounds, estimators(with_model=True, shrinkage=10.0), n_bootstrap=100)
    assert set(result) == {"ips", "snips", "dm", "dr", "sndr", "dr_os"}
    for name, est in result.items():
        assert est.low <= est.value <= est.high, name
        assert est.low <= TRUE_VALUE <= est.high or name == "dm", name
        assert est.high - est.low < 0.05, name


def test_bad_inputs_fail_with_a_message():
    with pytest.raises(ValueError, match="zero probability"):
        LoggedRounds(np.ones(2), np.array([0.5, 0.0]), np.ones(2))
    with pytest.raises(ValueError, match="rounds"):
        LoggedRounds(np.ones(2), np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="reward model"):
        dm(LoggedRounds(np.ones(2), np.ones(2), np.ones(2)))
    assert estimators(with_model=False).keys() == {"ips", "snips"}


# The benchmark's pieces on the Open Bandit sample copied into data/open_bandit.
OPEN_BANDIT = __import__("pathlib").Path(__file__).resolve().parents[1] / "data" / "open_bandit"


def test_open_bandit_sample_loads_as_its_source_note_counts_it():
    from bench.ope import load

    random_all = load(OPEN_BANDIT, "random", "all")
    assert len(random_all.reward) == 10_000 and random_all.reward.sum() == 38
    assert np.allclose(random_all.pscore, 1 / 80) and random_all.n_items == 80
    assert set(np.unique(random_all.position)) == {0, 1, 2}
    assert load(OPEN_BANDIT, "bts", "men").reward.sum() == 69


def test_thompson_probabilities_rank_items_by_their_beta_draws():
    from bench.ope import thompson_action_probabilities

    alpha = np.array([900.0, 10.0, 10.0, 1.0])
    beta = np.array([100.0, 990.0, 990.0, 999.0])
    p = thompson_action_probabilities(alpha, beta, draws=20_000, seed=1)
    assert np.allclose(p.sum(axis=0), 1.0)
    assert p[0, 0] == pytest.approx(1.0)  # mean 0.9 against 0.01: always first
    assert p[1, 1] == pytest.approx(0.5, abs=0.02) and p[2, 1] == pytest.approx(0.5, abs=0.02)
    assert p[3, 2] < 0.05  # the worst item rarely reaches the third slot


def test_on_the_random_log_its_own_policy_is_estimated_at_the_logged_click_rate():
    from bench.ope import load, run_estimates

    logs = load(OPEN_BANDIT, "random", "women")
    uniform = np.full((logs.n_items, 3), 1 / logs.n_items)
    values = run_estimates(logs, uniform, "item_position_eb")
    assert values["ips"] == pytest.approx(logs.reward.mean())
    assert values["snips"] == pytest.approx(logs.reward.mean())
    assert values["dr"] == pytest.approx(logs.reward.mean(), rel=0.02)


def test_empirical_bayes_shrinks_a_lucky_item_and_keeps_a_real_one():
    from bench.ope import ItemPositionEmpiricalBayes, Logs

    rng = np.random.default_rng(0)
    n = 40_000
    action = rng.integers(0, 10, n)
    rate = np.where(action == 0, 0.05, 0.01)  # item 0 truly five times better
    logs = Logs(
        action,
        rng.integers(0, 3, n),
        (rng.random(n) < rate).astype(float),
        np.full(n, 0.1),
        np.zeros((n, 1)),
        np.zeros((10, 1)),
    )
    model = ItemPositionEmpiricalBayes().fit(logs, np.arange(n))
    assert model.multiplier[0] > 3 * model.multiplier[1:].max()
    assert np.all(np.abs(model.multiplier[1:] - model.multiplier[1:].mean()) < 0.35)
