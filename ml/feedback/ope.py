"""Off-policy evaluation: what a new policy would have earned, estimated from the current policy's logs.

Every logged round ``i`` has a context ``x_i``, the action ``a_i`` the logging policy took with probability
``p_i`` (its propensity, recorded when it acted) and the reward ``r_i`` that followed. A target policy ``pi``
that was never run gives ``pi(a | x_i)``; a reward model gives ``q(x, a)``, an estimate of the mean reward.
The estimators (Dudik, Langford and Li 2011; Swaminathan and Joachims 2015; Su et al. 2020):

- **IPS**: ``mean(w_i r_i)`` with ``w_i = pi(a_i | x_i) / p_i``; unbiased when every action ``pi`` takes had a
  positive logging probability, high variance when ``w`` is large;
- **SNIPS**: ``sum(w_i r_i) / sum(w_i)``; slightly biased, much lower variance;
- **DM**: ``mean(sum_a pi(a | x_i) q(x_i, a))``; no variance from the weights, all the reward model's bias;
- **DR**: ``DM + mean(w_i (r_i - q(x_i, a_i)))``; unbiased if either the propensities or the model are right;
- **SNDR**: DR with the correction normalised by ``mean(w)``;
- **DRos**: DR with the weights shrunk to ``lambda w / (w^2 + lambda)`` (optimistic shrinkage): between DM
  (``lambda = 0``) and DR (``lambda = inf``).

Everything here is numpy on arrays of rounds, so one function serves the shop's message logs and a public
benchmark's. Rounds with several slots (a ranked widget) are rounds here, each with its own propensities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True)
class LoggedRounds:
    """Logged feedback and what the target policy and the reward model say about it (all arrays of rounds)."""

    reward: np.ndarray
    logging_propensity: np.ndarray
    """``p_i``: the logging policy's probability of the action it took."""
    target_propensity: np.ndarray
    """``pi(a_i | x_i)``: the target policy's probability of that same action."""
    predicted_reward: np.ndarray | None = None
    """``q(x_i, a_i)``: the reward model at the logged action (model-based estimators only)."""
    target_predicted_reward: np.ndarray | None = None
    """``sum_a pi(a | x_i) q(x_i, a)``: the reward model's value of the target policy in round ``i``."""

    def __post_init__(self) -> None:
        n = len(self.reward)
        for name in (
            "logging_propensity",
            "target_propensity",
            "predicted_reward",
            "target_predicted_reward",
        ):
            values = getattr(self, name)
            if values is not None and len(values) != n:
                raise ValueError(f"{name} has {len(values)} rounds, reward has {n}")
        if n and (np.any(self.logging_propensity <= 0) or np.any(self.logging_propensity > 1)):
            raise ValueError("logging propensities must be in (0, 1]: a logged action had a zero probability")
        if n and (np.any(self.target_propensity < 0) or np.any(self.target_propensity > 1)):
            raise ValueError("target propensities must be in [0, 1]")

    @property
    def weight(self) -> np.ndarray:
        return self.target_propensity / self.logging_propensity

    def take(self, index: np.ndarray) -> LoggedRounds:
        """The rounds at ``index`` (a bootstrap resample)."""
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return LoggedRounds(
            self.reward[index],
            self.logging_propensity[index],
            self.target_propensity[index],
            pick(self.predicted_reward),
            pick(self.target_predicted_reward),
        )

    @classmethod
    def concat(cls, parts: list[LoggedRounds]) -> LoggedRounds:
        """The rounds of every part, in order (cross-fitted halves into one set)."""
        stacked = {}
        for field in fields(cls):
            values = [getattr(p, field.name) for p in parts]
            stacked[field.name] = None if any(v is None for v in values) else np.concatenate(values)
        return cls(**stacked)

    def _model(self) -> tuple[np.ndarray, np.ndarray]:
        if self.predicted_reward is None or self.target_predicted_reward is None:
            raise ValueError(
                "this estimator needs a reward model: pass predicted_reward and target_predicted_reward"
            )
        return self.predicted_reward, self.target_predicted_reward


def ips(rounds: LoggedRounds) -> float:
    return float(np.mean(rounds.weight * rounds.reward))


def snips(rounds: LoggedRounds) -> float:
    w = rounds.weight
    total = w.sum()
    return float((w * rounds.reward).sum() / total) if total > 0 else float("nan")


def dm(rounds: LoggedRounds) -> float:
    return float(np.mean(rounds._model()[1]))


def dr(rounds: LoggedRounds) -> float:
    q_logged, q_target = rounds._model()
    return float(np.mean(q_target + rounds.weight * (rounds.reward - q_logged)))


def sndr(rounds: LoggedRounds) -> float:
    q_logged, q_target = rounds._model()
    w = rounds.weight
    mean_w = w.mean()
    correction = np.mean(w * (rounds.reward - q_logged)) / mean_w if mean_w > 0 else 0.0
    return float(np.mean(q_target) + correction)


def dr_shrunk(rounds: LoggedRounds, shrinkage: float) -> float:
    """DRos: the weights shrunk to ``lambda w / (w^2 + lambda)``; ``lambda = inf`` is DR, ``0`` is DM."""
    q_logged, q_target = rounds._model()
    w = rounds.weight
    if np.isinf(shrinkage):
        shrunk = w
    elif shrinkage <= 0:
        shrunk = np.zeros_like(w)
    else:
        shrunk = shrinkage * w / (w**2 + shrinkage)
    return float(np.mean(q_target + shrunk * (rounds.reward - q_logged)))


Estimator = Callable[[LoggedRounds], float]

WEIGHT_ONLY: dict[str, Estimator] = {"ips": ips, "snips": snips}
MODEL_BASED: dict[str, Estimator] = {"dm": dm, "dr": dr, "sndr": sndr}


def estimators(with_model: bool, shrinkage: float | None = None) -> dict[str, Estimator]:
    """The estimators that the inputs allow: weights only, or weights and a reward model (plus DRos at
    ``shrinkage`` when given)."""
    chosen = dict(WEIGHT_ONLY)
    if with_model:
        chosen |= MODEL_BASED
        if shrinkage is not None:
            chosen["dr_os"] = lambda rounds: dr_shrunk(rounds, shrinkage)
    return chosen


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    """A percentile bootstrap interval (``level``) over resampled rounds."""


def estimate_all(
    rounds: LoggedRounds,
    chosen: dict[str, Estimator],
    n_bootstrap: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Every chosen estimator on ``rounds``, with a bootstrap interval over rounds (the reward model is held
    fixed, so the interval leaves out its own fitting noise)."""
    n = len(rounds.reward)
    if n == 0:
        return {name: Estimate(float("nan"), float("nan"), float("nan")) for name in chosen}
    rng = np.random.default_rng(seed)
    draws = {name: np.empty(n_bootstrap) for name in chosen}
    for b in range(n_bootstrap):
        resample = rounds.take(rng.integers(0, n, n))
        for name, estimator in chosen.items():
            draws[name][b] = estimator(resample)
    tail = (1 - level) / 2 * 100
    return {
        name: Estimate(
            estimator(rounds),
            float(np.nanpercentile(draws[name], tail)),
            float(np.nanpercentile(draws[name], 100 - tail)),
        )
        for name, estimator in chosen.items()
    }


def effective_sample_size(rounds: LoggedRounds) -> float:
    """Kish's effective number of rounds behind the importance weights: ``sum(w)^2 / sum(w^2)``. Far below the
    number of rounds means the target policy goes where the logs rarely went."""
    w = rounds.weight
    squares = float((w**2).sum())
    return float(w.sum() ** 2 / squares) if squares > 0 else 0.0
