"""Item-to-item transitions: what follows the customer's last items.

A first-order Markov chain over consecutive purchases with a Dirichlet popularity backoff,

    P(j | i) = (c(i -> j) + alpha * pop(j)) / (c(i ->) + alpha),

so an item with few observed successors falls back smoothly to popularity, and every item still gets a distinct,
meaningful score (pessimistic ties would otherwise punish the many zero-count items). The last ``n_last`` items
are mixed with geometric ``decay``; ``backward`` adds the reverse transitions, because purchases on the same day
are recorded in an arbitrary order and "bought together" is then closer to symmetric than "bought next".

The same table answers the shop's "bought next" / "bought together" questions (:meth:`Transition.next_items`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ml.recommend.base import Recommender
from ml.recommend.data import Sequences


class Transition(Recommender):
    name = "transition"
    output = "prob"

    def __init__(self, n_last: int = 1, decay: float = 0.5, backward: float = 0.0, alpha: float = 1.0):
        self.n_last = n_last
        self.decay = decay
        self.backward = backward
        self.alpha = alpha

    def _fit(self, seqs: Sequences) -> None:
        n = seqs.n_items
        prev, nxt = seqs.pairs()
        ones = np.ones(len(prev), dtype=np.float32)
        counts = sp.csr_matrix((ones, (prev, nxt)), shape=(n, n))
        if self.backward:
            counts = counts + self.backward * sp.csr_matrix((ones, (nxt, prev)), shape=(n, n))
        counts.sum_duplicates()
        pop = np.bincount(seqs.items, minlength=n).astype(np.float64) + 1e-3
        self.pop_ = (pop / pop.sum()).astype(np.float32)
        self.out_ = np.asarray(counts.sum(axis=1), dtype=np.float32).ravel()
        self.counts_ = counts.tocsr()

    def probabilities(self, items: np.ndarray) -> np.ndarray:
        """``P(next | item)`` for each given item index (``-1`` = no item: popularity)."""
        items = np.asarray(items, dtype=np.int64)
        known = items >= 0
        out = np.tile(self.pop_, (len(items), 1))
        if known.any():
            rows = items[known]
            denom = self.out_[rows] + self.alpha
            dense = np.asarray(self.counts_[rows].todense(), dtype=np.float32)
            out[known] = (dense + self.alpha * self.pop_[None, :]) / denom[:, None]
        return out

    def _score(self, histories: Sequences, users: np.ndarray) -> np.ndarray:
        lengths = histories.lengths
        total = np.zeros((len(histories), histories.n_items), dtype=np.float32)
        weight = np.zeros(len(histories), dtype=np.float32)
        for m in range(1, self.n_last + 1):
            has = lengths >= m
            if not has.any():
                break
            w = self.decay ** (m - 1)
            items = histories.items[histories.indptr[1:][has] - m]
            total[has] += w * self.probabilities(items)
            weight[has] += w
        empty = weight == 0
        total[empty] = self.pop_
        weight[empty] = 1.0
        return total / weight[:, None]

    def next_items(self, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Items most often bought right after (or, with ``backward``, together with) ``item``."""
        probs = self.probabilities(np.array([item]))[0]
        probs[item] = -np.inf
        top = np.argsort(-probs, kind="stable")[:k]
        return top, probs[top]

    def params(self) -> dict[str, Any]:
        return {"n_last": self.n_last, "decay": self.decay, "backward": self.backward, "alpha": self.alpha}
