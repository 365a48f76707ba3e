"""Which tone and how deep an offer, per customer: a contextual bandit that learns from what messages earned.

An **arm** is a template family x an offer level: ``low``, ``standard`` or ``high`` scale the campaign's
percent off by :data:`ml.marketing.targeting.OFFER_LEVELS` (member perks give free delivery, no percent, so only ``standard`` exists
for them). The **reward** of a sent message is the margin, after the offer's discount, of the sales its click
credited (``marts.fct_message_events.credited_margin``): a deeper discount buys more conversions and gives away
margin on each, and the bandit learns where that trade pays.

The policy is **linear Thompson Sampling**: per arm a Bayesian linear regression of the reward on the customer's
context (:func:`context_matrix`: campaign, price sensitivity, orders, spend, recency), Gaussian prior
``N(0, noise / prior_precision)`` and the noise variance estimated from the residuals. Its probability of each
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
    """Per-arm Gaussian posteriors of the reward's linear weights (``mean[k]``, ``covariance[k]``)."""

    mean: np.ndarray
    """(arms, features)"""
    covariance: np.ndarray
    """(arms, features, features)"""
    rounds: int
    """Logged sends it learnt from."""

    @property
    def version(self) -> str:
        """A content hash: the same posterior is the same policy."""
        payload = np.concatenate([self.mean.ravel(), self.covariance.ravel()]).round(10).tobytes()
        return hashlib.sha256(payload).hexdigest()[:12]

    def action_probabilities(
        self, context: np.ndarray, allowed: np.ndarray, draws: int = 400, seed: int = 0
    ) -> np.ndarray:
        """(rows, arms): the probability that Thompson Sampling sends each arm, with the exploration floor."""
        rng = np.random.default_rng(seed)
        n_arms, n_features = self.mean.shape
        factor = np.linalg.cholesky(self.covariance + 1e-12 * np.eye(n_features))
        noise = rng.standard_normal((draws, n_arms, n_features))
        weights = self.mean[None] + np.einsum("kij,skj->ski", factor, noise)  # (draws, arms, features)
        wins = np.zeros((len(context), n_arms))
        for s in range(draws):
            score = np.where(allowed, context @ weights[s].T, -np.inf)
            wins[np.arange(len(context)), score.argmax(axis=1)] += 1
        return _with_floor(wins / draws, allowed)

    def expected_reward(self, context: np.ndarray) -> np.ndarray:
        """(rows, arms): the posterior mean reward."""
        return context @ self.mean.T

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


def prior_policy(prior_precision: float = 1.0, noise: float = 1.0) -> LinearThompson:
    """Every arm at the prior: uniform Thompson Sampling."""
    d = len(CONTEXT_FEATURES)
    return LinearThompson(
        np.zeros((len(ARMS), d)), np.tile(np.eye(d) * noise / prior_precision, (len(ARMS), 1, 1)), 0
    )


def fit(
    context: np.ndarray, arm: np.ndarray, reward: np.ndarray, prior_precision: float = 1.0
) -> LinearThompson:
    """The posterior after the logged sends (``arm`` indexes :data:`ARMS`). The noise variance is the residual
    variance of the ridge fits pooled over arms (floored, so a run of zeros does not freeze the policy)."""
    d = len(CONTEXT_FEATURES)
    means, precisions = np.zeros((len(ARMS), d)), np.zeros((len(ARMS), d, d))
    residuals = []
    for k in range(len(ARMS)):
        X, y = context[arm == k], reward[arm == k]
        precision = prior_precision * np.eye(d) + X.T @ X
        means[k] = np.linalg.solve(precision, X.T @ y)
        precisions[k] = precision
        residuals.append(y - X @ means[k])
    pooled = np.concatenate(residuals) if residuals else np.empty(0)
    noise = max(float(np.var(pooled)) if len(pooled) > 1 else 1.0, 1e-2)
    covariance = noise * np.linalg.inv(precisions)
    return LinearThompson(means, covariance, int(len(reward)))


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
