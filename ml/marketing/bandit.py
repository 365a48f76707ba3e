"""Which tone and how deep an offer, per customer: a contextual bandit that learns from what messages earned.

An **arm** is a template family x an offer level: ``low``, ``standard`` or ``high`` scale the campaign's
percent off by :data:`ml.marketing.targeting.OFFER_LEVELS` (member perks give free delivery, no percent, so only ``standard`` exists
for them). The **reward** of a sent message is the margin, after the offer's discount, of the sales its click
credited (``marts.fct_message_events.credited_margin``): a deeper discount buys more conversions and gives away
margin on each, and the bandit learns where that trade pays.

The policy is **linear Thompson Sampling**: a Bayesian linear regression of the reward on the customer's context
(:func:`context_matrix`: campaign, price sensitivity, orders, spend, recency) with weights shared by every arm
plus one deviation per arm, the deviations' prior narrow (:data:`ARM_EFFECT_PRIOR`) so that arms share what
they have in common and differ only as far as the data shows. Its probability of each
arm for a context is computed by Monte Carlo (``draws`` posterior draws shared by the day's customers, the arm
that wins each draw counted), mixed with a uniform :data:`EXPLORATION_FLOOR` so that no arm's propensity falls
to zero and later off-policy estimates stay bounded; the arm sent is drawn from those probabilities by a hash
of the day and the customer, and the probability is logged with the message as its propensity. With no data
every arm's posterior is the prior and the policy is uniform: the logging policy of a shop starting out.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from ml.marketing.targeting import CAMPAIGNS, OFFER_LEVELS
from ml.marketing.writer import FAMILIES

ARMS: tuple[str, ...] = tuple(f"{family}/{level}" for family in FAMILIES for level in OFFER_LEVELS)
EXPLORATION_FLOOR = 0.10
"""Share of every decision spread uniformly over the allowed arms."""
CONTEXT_FEATURES: tuple[str, ...] = (
    "intercept",
    *(f"campaign_{c}" for c in CAMPAIGNS),
    "discount_share",
    "log_orders",
    "log_spend",
    "recency_scaled",
)


def split_arm(arm: str) -> tuple[str, str]:
    family, level = arm.split("/")
    return family, level


def arm_index(names: pd.Series) -> np.ndarray:
    """Positions in :data:`ARMS` of arm names (``family/level``)."""
    return names.map({a: i for i, a in enumerate(ARMS)}).to_numpy()


def allowed_arms(campaign: str) -> np.ndarray:
    """Mask over :data:`ARMS`: member perks carry no percent, so only their ``standard`` level exists."""
    return np.array([campaign != "member_perks" or split_arm(a)[1] == "standard" for a in ARMS])


def context_matrix(frame: pd.DataFrame) -> np.ndarray:
    """Features of each row (``campaign, orders_365d, spend_365d, recency_days, discount_share_365d``), on
    scales near one so that one prior fits all."""
    campaign = frame["campaign"].to_numpy()
    recency = pd.to_numeric(frame["recency_days"], errors="coerce").fillna(365).clip(upper=365).to_numpy()
    return np.column_stack(
        [
            np.ones(len(frame)),
            *[(campaign == c).astype(float) for c in CAMPAIGNS],
            pd.to_numeric(frame["discount_share_365d"], errors="coerce").fillna(0).to_numpy(float),
            np.log1p(pd.to_numeric(frame["orders_365d"], errors="coerce").fillna(0).to_numpy(float)) / 3,
            np.log1p(pd.to_numeric(frame["spend_365d"], errors="coerce").fillna(0).to_numpy(float)) / 7,
            recency / 90,
        ]
    )


@dataclass(frozen=True)
class LinearThompson:
    """A Gaussian posterior over the reward's linear weights: shared weights for every arm, then one deviation
    per arm (``mean``: ``features x (1 + arms)``, shared first; ``covariance`` over all of them, flattened in
    the same order)."""

    mean: np.ndarray
    covariance: np.ndarray
    rounds: int
    """Logged sends it learnt from."""

    @property
    def version(self) -> str:
        """A content hash: the same posterior is the same policy."""
        payload = np.concatenate([self.mean.ravel(), self.covariance.ravel()]).round(10).tobytes()
        return hashlib.sha256(payload).hexdigest()[:12]

    def _arm_weights(self, flat: np.ndarray) -> np.ndarray:
        """(..., arms, features): each arm's weights, the shared ones plus its deviation."""
        d = len(CONTEXT_FEATURES)
        blocks = flat.reshape(*flat.shape[:-1], 1 + len(ARMS), d)
        return blocks[..., :1, :] + blocks[..., 1:, :]

    def action_probabilities(
        self, context: np.ndarray, allowed: np.ndarray, draws: int = 400, seed: int = 0
    ) -> np.ndarray:
        """(rows, arms): the probability that Thompson Sampling sends each arm, with the exploration floor.
        Before any data the posterior is the same for every arm, so the probabilities are exactly uniform
        (Monte Carlo would only add noise to the logged propensities)."""
        if self.rounds == 0:
            return uniform_probabilities(allowed)
        rng = np.random.default_rng(seed)
        flat_mean = self.mean.ravel()
        factor = np.linalg.cholesky(self.covariance + 1e-12 * np.eye(len(flat_mean)))
        sampled = flat_mean[None] + rng.standard_normal((draws, len(flat_mean))) @ factor.T
        weights = self._arm_weights(sampled)  # (draws, arms, features)
        wins = np.zeros((len(context), len(ARMS)))
        for s in range(draws):
            score = np.where(allowed, context @ weights[s].T, -np.inf)
            wins[np.arange(len(context)), score.argmax(axis=1)] += 1
        return _with_floor(wins / draws, allowed)

    def expected_reward(self, context: np.ndarray) -> np.ndarray:
        """(rows, arms): the posterior mean reward."""
        return context @ self._arm_weights(self.mean.ravel()).T

    def to_json(self) -> str:
        return json.dumps(
            {
                "arms": list(ARMS),
                "features": list(CONTEXT_FEATURES),
                "rounds": self.rounds,
                "mean": self.mean.tolist(),
                "covariance": self.covariance.tolist(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> LinearThompson:
        data = json.loads(text)
        if data["arms"] != list(ARMS) or data["features"] != list(CONTEXT_FEATURES):
            raise ValueError("stored policy was learnt over other arms or features; it cannot serve these")
        return cls(np.asarray(data["mean"]), np.asarray(data["covariance"]), int(data["rounds"]))


ARM_EFFECT_PRIOR = 0.5
"""A priori an arm's reward differs from the shared model by about this share of the mean reward per send:
the deviations' prior standard deviation. Arm effects on money are small next to the noise of rare purchases,
and a wider prior lets the first lucky purchase steer the policy."""


def prior_policy() -> LinearThompson:
    """Every arm at the prior: uniform Thompson Sampling."""
    size = len(CONTEXT_FEATURES) * (1 + len(ARMS))
    return LinearThompson(np.zeros((1 + len(ARMS), len(CONTEXT_FEATURES))), np.eye(size), 0)


def _design(context: np.ndarray, arm: np.ndarray) -> np.ndarray:
    """Rows ``[x, 0.., x (at the arm's block), ..0]``: the shared weights and the arm's deviation both see x."""
    n, d = context.shape
    design = np.zeros((n, d * (1 + len(ARMS))))
    design[:, :d] = context
    for k in range(len(ARMS)):
        rows = arm == k
        design[rows, d * (1 + k) : d * (2 + k)] = context[rows]
    return design


def fit(
    context: np.ndarray, arm: np.ndarray, reward: np.ndarray, shared_precision: float = 1.0
) -> LinearThompson:
    """The posterior after the logged sends (``arm`` indexes :data:`ARMS`). Bayesian linear regression with
    the noise variance of a ridge fit's residuals (floored, so a run of zeros does not freeze the policy); the
    shared weights' prior is wide (``shared_precision`` in units of the noise), the deviations' prior has the
    standard deviation :data:`ARM_EFFECT_PRIOR` x the mean reward."""
    d = len(CONTEXT_FEATURES)
    X = _design(context, arm)
    deviation_sd = ARM_EFFECT_PRIOR * max(abs(float(reward.mean())) if len(reward) else 0.0, 1e-3)
    noise = max(float(np.var(reward)) if len(reward) > 1 else 1.0, 1e-2)
    prior = np.empty(X.shape[1])
    prior[:d] = shared_precision
    prior[d:] = noise / deviation_sd**2
    precision = np.diag(prior) + X.T @ X
    mean = np.linalg.solve(precision, X.T @ reward)
    residual = reward - X @ mean
    noise = max(float(np.var(residual)) if len(reward) > 1 else noise, 1e-2)
    covariance = noise * np.linalg.inv(precision)
    return LinearThompson(mean.reshape(1 + len(ARMS), d), covariance, int(len(reward)))


@dataclass(frozen=True)
class FixedArm:
    """A fixed rule: always ``arm`` (member perks, which have one level, get the family's ``standard``)."""

    arm: str

    @property
    def version(self) -> str:
        return f"fixed:{self.arm}"

    def action_probabilities(self, context: np.ndarray, allowed: np.ndarray, draws: int = 0, seed: int = 0):
        family, _ = split_arm(self.arm)
        fallback = ARMS.index(f"{family}/standard")
        chosen = np.where(allowed[:, ARMS.index(self.arm)], ARMS.index(self.arm), fallback)
        probabilities = np.zeros((len(context), len(ARMS)))
        probabilities[np.arange(len(context)), chosen] = 1.0
        return probabilities


@dataclass(frozen=True)
class UniformArms:
    """Every allowed arm equally likely, whatever was learnt."""

    version: str = "uniform"

    def action_probabilities(self, context: np.ndarray, allowed: np.ndarray, draws: int = 0, seed: int = 0):
        return uniform_probabilities(allowed)


ARM_POLICIES = ("learnt", "uniform", *ARMS)
"""What ``MarketingSettings.arm_policy`` may name: the learnt serving policy, uniform, or one fixed arm."""


def named_policy(name: str) -> FixedArm | UniformArms:
    """The uniform or fixed-arm policy of ``name`` (``learnt`` is read from the warehouse instead)."""
    if name == "uniform":
        return UniformArms()
    if name in ARMS:
        return FixedArm(name)
    raise ValueError(f"unknown arm policy {name!r}; choose from {', '.join(ARM_POLICIES)}")


def uniform_probabilities(allowed: np.ndarray) -> np.ndarray:
    return allowed / allowed.sum(axis=1, keepdims=True)


def _with_floor(probabilities: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    return (1 - EXPLORATION_FLOOR) * probabilities + EXPLORATION_FLOOR * uniform_probabilities(allowed)


def draw_arms(probabilities: np.ndarray, customer_ids, day: date) -> np.ndarray:
    """The arm sent to each customer: drawn from its probabilities by a hash of day and customer, so a re-run
    of the day sends the same arms."""
    u = np.array(
        [
            int.from_bytes(hashlib.sha256(f"message-arm:{day.isoformat()}:{c}".encode()).digest()[:8], "big")
            / 2**64
            for c in customer_ids
        ]
    )
    cumulative = probabilities.cumsum(axis=1)
    return np.minimum((u[:, None] >= cumulative).sum(axis=1), probabilities.shape[1] - 1)
