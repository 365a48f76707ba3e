"""Non-sequential baselines: popularity, ItemKNN and EASE.

They are cheap, hard to beat on sparse retail data (docs/PROTOCOLS.md: ItemKNN and EASE beat the published
neural numbers on Beauty) and they are the bar a Transformer has to clear before it is worth shipping.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from ml.blocks import consecutive_blocks
from ml.recommend.base import Recommender
from ml.recommend.data import Sequences


class Popularity(Recommender):
    """Item popularity, optionally with exponential time decay.

    With ``half_life`` (in the units of the interaction timestamps, e.g. seconds) an interaction ``half_life``
    older than the newest one counts half: what sells now matters more than what sold last year. Without
    timestamps (the Beauty file has none) it is plain counts. Scores are probabilities (they sum to 1).
    """

    name = "popularity"
    output = "prob"

    def __init__(self, half_life: float | None = None):
        self.half_life = half_life

    def _fit(self, seqs: Sequences) -> None:
        weights = None
        if self.half_life and seqs.ts is not None and len(seqs.ts):
            age = seqs.ts.max() - seqs.ts
            weights = np.power(0.5, age / self.half_life)
        counts = np.bincount(seqs.items, weights=weights, minlength=seqs.n_items).astype(np.float64)
        self.pop_ = (counts / max(counts.sum(), 1e-12)).astype(np.float32)

    def _score(self, histories: Sequences, users: np.ndarray) -> np.ndarray:
        return np.tile(self.pop_, (len(histories), 1))

    def params(self) -> dict[str, Any]:
        return {"half_life": self.half_life}


class ItemKNN(Recommender):
    """Item-item cosine similarity with shrinkage, summed over the user's history.

    ``sim(i, j) = |U_i & U_j| / (sqrt(|U_i| |U_j|) + shrink)``: the shrink term discounts similarities resting on
    few co-buyers, which dominate a 0.07 %-dense matrix. ``neighbours`` keeps only each item's strongest
    neighbours (less noise, sparser matrix); ``None`` keeps all.
    """

    name = "itemknn"

    def __init__(self, shrink: float = 50.0, neighbours: int | None = None):
        self.shrink = shrink
        self.neighbours = neighbours

    def _fit(self, seqs: Sequences) -> None:
        x = seqs.matrix()
        counts = np.asarray(x.sum(axis=0)).ravel()
        if self.neighbours is None:
            blocks = [(0, seqs.n_items)]
        else:
            # A bound on each item's co-occurring items (the items of its users): the full product of a large
            # store's catalogue does not fit in memory, but each item keeps only its own strongest neighbours,
            # so the rows of the product can be computed a block at a time.
            bound = np.asarray(x.T @ np.diff(x.indptr).astype(np.float64)).ravel()
            blocks = consecutive_blocks(bound, CO_OCCURRENCE_BLOCK)
        xt = x.T.tocsr() if len(blocks) > 1 else None
        parts = []
        for first, last in blocks:
            co = (xt[first:last] @ x).tocoo() if xt is not None else (x.T @ x).tocoo()
            rows = co.row + first
            off = rows != co.col
            rows, cols, vals = rows[off], co.col[off], co.data[off]
            vals = vals / (np.sqrt(counts[rows] * counts[cols]) + self.shrink)
            if self.neighbours is not None:
                keep = _top_per_row(rows, vals, self.neighbours)
                rows, cols, vals = rows[keep], cols[keep], vals[keep]
            parts.append((rows, cols, vals.astype(np.float32)))
        rows, cols, vals = (np.concatenate(column) for column in zip(*parts, strict=True))
        self.sim_ = sp.csr_matrix((vals, (rows, cols)), shape=(seqs.n_items, seqs.n_items))

    def _score(self, histories: Sequences, users: np.ndarray) -> np.ndarray:
        return np.asarray((histories.matrix() @ self.sim_).todense(), dtype=np.float32)

    def similar_items(self, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Most similar items to one item ("similar to X you viewed")."""
        row = self.sim_.getrow(item)
        order = np.argsort(-row.data, kind="stable")[:k]
        return row.indices[order], row.data[order]

    def params(self) -> dict[str, Any]:
        return {"shrink": self.shrink, "neighbours": self.neighbours}


CO_OCCURRENCE_BLOCK = 50_000_000
"""Item pairs (by the bound of :meth:`ItemKNN._fit`) one block of the co-occurrence product holds at most; below
it the product is computed whole."""


def _top_per_row(rows: np.ndarray, vals: np.ndarray, k: int) -> np.ndarray:
    """Mask of the ``k`` largest values within each row (rows given per entry)."""
    order = np.lexsort((-vals, rows))
    sorted_rows = rows[order]
    starts = np.searchsorted(sorted_rows, sorted_rows, side="left")
    rank = np.arange(len(order)) - starts
    keep = np.zeros(len(rows), dtype=bool)
    keep[order[rank < k]] = True
    return keep


class EASE(Recommender):
    """EASE (Steck, WWW 2019): a closed-form item-item linear autoencoder with a zero diagonal.

    ``B = I - P diag(1 / diag(P))`` with ``P = (X^T X + lam I)^-1``. One Cholesky-based inverse of an
    ``n_items x n_items`` matrix (cubic in the catalogue size) and no training loop; ``lam`` is the only
    hyperparameter and is chosen on validation by the benchmark.
    """

    name = "ease"

    def __init__(self, lam: float = 50.0):
        self.lam = lam

    def _fit(self, seqs: Sequences) -> None:
        x = seqs.matrix()
        gram = torch.from_numpy(np.asarray((x.T @ x).todense(), dtype=np.float32))
        gram.diagonal().add_(self.lam)
        p = torch.cholesky_inverse(torch.linalg.cholesky(gram))
        del gram
        b = p / (-p.diagonal())[None, :]
        b.diagonal().zero_()
        # row-major: scoring reads whole rows of B (the Cholesky inverse comes back column-major)
        self.b_ = np.ascontiguousarray(b.numpy())

    def _score(self, histories: Sequences, users: np.ndarray) -> np.ndarray:
        return np.asarray(histories.matrix() @ self.b_, dtype=np.float32)

    def score_tensor(self, histories: Sequences) -> torch.Tensor:
        # A user's scores are the sum of B's rows of the items they bought (once each): an embedding-bag sum over
        # the row-major B (with it EASE scores 21.6k users/s in `bench.recsys --throughput`; docs/benchmarks)
        n_users = len(histories)
        pairs = np.unique(histories.user_index() * self.n_items_ + histories.items)
        user, item = np.divmod(pairs, self.n_items_)
        offsets = np.searchsorted(user, np.arange(n_users))
        if not hasattr(self, "_b_torch"):
            self._b_torch = torch.from_numpy(np.ascontiguousarray(self.b_))
        return torch.nn.functional.embedding_bag(
            torch.from_numpy(item), self._b_torch, torch.from_numpy(offsets), mode="sum"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_b_torch", None)  # a view of b_; pickling it would store the matrix twice
        return state

    def params(self) -> dict[str, Any]:
        return {"lam": self.lam}
