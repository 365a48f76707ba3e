"""Mixtures of recommenders, with the mixture weight measured on validation.

Models score on different scales (log-probabilities, probabilities, cosine sums), so each component is first
turned into a per-user distribution over the catalogue and the blend is the mixture ``sum_k w_k p_k``. A mixture
of distributions keeps a sharp model's confident picks while a second model fills in where it is unsure; this is
how the Transformer and the transition model are combined, and how collaborative and content scores are combined
for new items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ml.recommend.base import Interactions, Recommender
from ml.recommend.data import Sequences
from ml.recommend.metrics import DEFAULT_KS, metrics_from_ranks, target_ranks


def to_probabilities(scores: np.ndarray, kind: str) -> np.ndarray:
    """Per-row distribution from scores of the given ``kind`` (see :attr:`Recommender.output`)."""
    scores = np.asarray(scores, dtype=np.float32)
    if kind == "logprob":
        p = np.exp(scores - scores.max(axis=1, keepdims=True))
    elif kind in ("prob", "score"):
        p = np.clip(np.nan_to_num(scores, nan=0.0, neginf=0.0, posinf=0.0), 0.0, None)
    else:
        raise ValueError(f"unknown score kind {kind!r}")
    total = p.sum(axis=1, keepdims=True)
    uniform = np.float32(1.0 / scores.shape[1])
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), uniform).astype(np.float32)


class Blend(Recommender):
    """Weighted mixture of component recommenders' distributions.

    With ``prefit=True`` the components are used as they are (e.g. a Transformer that took minutes to train);
    otherwise ``fit`` fits each of them on the same data.
    """

    name = "blend"
    output = "prob"

    def __init__(self, components: Sequence[Recommender], weights: Sequence[float], prefit: bool = False):
        if len(components) != len(weights):
            raise ValueError("one weight per component")
        self.components = list(components)
        self.weights = [float(w) for w in weights]
        self.prefit = prefit

    def fit(self, interactions: Interactions, n_items: int | None = None) -> Blend:
        if not self.prefit:
            for c in self.components:
                c.fit(interactions, n_items)
        return super().fit(interactions, n_items)

    def _fit(self, seqs: Sequences) -> None:
        pass

    def _score(self, histories: Sequences, users: np.ndarray) -> np.ndarray:
        out = np.zeros((len(histories), histories.n_items), dtype=np.float32)
        for c, w in zip(self.components, self.weights, strict=True):
            if w:
                out += w * to_probabilities(c._score(histories, users), c.output)
        return out

    def params(self) -> dict[str, Any]:
        return {"components": [c.name for c in self.components], "weights": self.weights}


def blend_ranks(
    score_fns: Sequence[Callable[[np.ndarray], np.ndarray]],
    kinds: Sequence[str],
    histories: Sequences,
    targets: np.ndarray,
    weight_grid: Sequence[Sequence[float]],
    batch_size: int = 1024,
) -> np.ndarray:
    """Pessimistic target ranks ``[len(weight_grid), users]`` of every weight vector in ``weight_grid``.

    Each component is scored only once per batch of users, so choosing a blend weight on validation costs one
    scoring pass however many candidate weights there are.
    """
    n = len(histories)
    ranks = np.empty((len(weight_grid), n), dtype=np.int64)
    for start in range(0, n, batch_size):
        batch = np.arange(start, min(start + batch_size, n))
        probs = [to_probabilities(f(batch), k) for f, k in zip(score_fns, kinds, strict=True)]
        for g, weights in enumerate(weight_grid):
            mix = np.zeros_like(probs[0])
            for p, w in zip(probs, weights, strict=True):
                if w:
                    mix += np.float32(w) * p
            ranks[g, batch] = target_ranks(mix, targets[batch], histories, batch)
    return ranks


def blend_grid(
    score_fns: Sequence[Callable[[np.ndarray], np.ndarray]],
    kinds: Sequence[str],
    histories: Sequences,
    targets: np.ndarray,
    weight_grid: Sequence[Sequence[float]],
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = 1024,
) -> list[dict[str, float]]:
    """HR/NDCG of every weight vector in ``weight_grid`` (see :func:`blend_ranks`)."""
    ranks = blend_ranks(score_fns, kinds, histories, targets, weight_grid, batch_size)
    return [metrics_from_ranks(r, ks) for r in ranks]
