"""The one interface every recommender here implements.

``fit(interactions)`` takes either an interaction log (DataFrame ``user, item, ts``; ties in ``ts`` keep row
order) or ready-made :class:`Sequences` / lists of item-index sequences. ``score(users, histories)`` returns a
dense ``[n_users, n_items]`` array, one column per catalogue item in the order of ``item_ids_``, and ``topk``
turns scores into recommendation lists with the exclusion rule applied. Dense scores are deliberate: full-ranking
evaluation, blending and the exclusion rule are then single array operations over a batch of users, and callers
control memory by the batch size.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from ml.recommend.data import Sequences
from ml.recommend.metrics import exclude_history, users_per_batch

Interactions = pd.DataFrame | Sequences | Sequence[Sequence[int]]


def as_sequences(interactions: Interactions, n_items: int | None = None) -> Sequences:
    """Normalise any accepted interaction input to :class:`Sequences`."""
    if isinstance(interactions, Sequences):
        return interactions
    if isinstance(interactions, pd.DataFrame):
        return Sequences.from_frame(interactions)
    return Sequences.from_lists(list(interactions), n_items)


class Recommender(ABC):
    """Base class: subclasses implement ``_fit(seqs)`` and ``_score(histories, users)``."""

    name = "recommender"
    output = "score"
    """What ``score`` returns: ``"prob"`` (probabilities), ``"logprob"`` or ``"score"`` (any monotone score).
    Blends use it to put models on a common scale."""

    def fit(self, interactions: Interactions, n_items: int | None = None) -> Self:
        seqs = as_sequences(interactions, n_items)
        self.train_ = seqs
        self.n_items_ = seqs.n_items
        self.item_ids_ = seqs.item_ids
        self._item_index = pd.Index(seqs.item_ids)
        self._user_index = pd.Index(seqs.user_ids)
        self._fit(seqs)
        return self

    @abstractmethod
    def _fit(self, seqs: Sequences) -> None: ...

    @abstractmethod
    def _score(self, histories: Sequences, users: np.ndarray) -> np.ndarray:
        """Scores ``[len(histories), n_items]`` (float32) given each user's item history."""

    def params(self) -> dict[str, Any]:
        """Hyperparameters, for the benchmark JSON and model artefacts."""
        return {}

    # ----------------------------------------------------------------- public scoring
    def histories_for(self, users: Sequence | None = None, histories: Any = None) -> Sequences:
        """Resolve the histories to score.

        ``histories`` may be :class:`Sequences` (dense item indices), or lists of raw item ids (unknown items are
        dropped: a model cannot use what it has never seen). Without ``histories`` each user's training sequence
        is used, and users the model has not seen get an empty history.
        """
        if isinstance(histories, Sequences):
            return histories
        if histories is not None:
            encoded = []
            for h in histories:
                codes = self._item_index.get_indexer(np.asarray(h)) if len(h) else np.zeros(0, np.int64)
                encoded.append(codes[codes >= 0])
            uids = np.asarray(users) if users is not None else np.arange(len(encoded))
            return Sequences.from_lists(encoded, self.n_items_, uids)
        if getattr(self, "train_", None) is None:
            raise ValueError("this model was stored without its training sequences: pass histories")
        if users is None:
            return self.train_
        rows = self._user_index.get_indexer(np.asarray(users))
        empty = Sequences.from_lists([[]], self.n_items_)
        lists = [self.train_[r] if r >= 0 else empty[0] for r in rows]
        return Sequences.from_lists(lists, self.n_items_, np.asarray(users))

    def score(self, users: Sequence | None = None, histories: Any = None) -> np.ndarray:
        hist = self.histories_for(users, histories)
        return np.asarray(self._score(hist, hist.user_ids), dtype=np.float32)

    def score_tensor(self, histories: Sequences) -> Any:
        """Scores as a writable float32 torch tensor; models with a faster torch path override this."""
        import torch

        return torch.from_numpy(np.array(self._score(histories, histories.user_ids), dtype=np.float32))

    def topk(
        self,
        users: Sequence | None = None,
        histories: Any = None,
        k: int = 10,
        exclude_seen: bool = True,
        exclude: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` dense item indices and scores per user, best first.

        Seen items (``exclude_seen``) and the ``exclude`` items (e.g. out of stock) are never returned; when fewer
        than ``k`` items remain, the row is padded with index ``-1`` and score ``-inf``. Map indices to shop ids
        with ``item_ids_``.
        """
        hist = self.histories_for(users, histories)
        scores = np.array(self._score(hist, hist.user_ids), dtype=np.float32, copy=True)
        if exclude_seen:
            exclude_history(scores, hist)
        if exclude is not None and len(exclude):
            scores[:, np.asarray(exclude, dtype=np.int64)] = -np.inf
        return topk_from_scores(scores, k)


def batched_topk(
    model: Recommender, histories: Sequences, k: int, batch_size: int = 4096, exclude_seen: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` items and scores for every user of ``histories``, in batches, with torch doing the heavy parts.

    This is the serving path (one pass over all customers): each batch is scored by the model's torch scorer
    (:meth:`Recommender.score_tensor`), history items are masked with one indexed write, and ``torch.topk``
    selects the list; there is no Python loop per user. Excluded slots are ``-1`` / ``-inf``.
    """
    import torch

    n = len(histories)
    k = min(k, histories.n_items)
    items = np.empty((n, k), dtype=np.int64)
    scores = np.empty((n, k), dtype=np.float32)
    batch_size = users_per_batch(batch_size, histories.n_items)
    with torch.no_grad():
        for start in range(0, n, batch_size):
            rows = np.arange(start, min(n, start + batch_size))
            sub = histories.subset(rows)
            s = model.score_tensor(sub)
            if exclude_seen and len(sub.items):
                user = torch.from_numpy(sub.user_index())
                s[user, torch.from_numpy(sub.items)] = -torch.inf
            values, idx = torch.topk(s, k, dim=1)
            idx[torch.isneginf(values)] = -1
            items[rows], scores[rows] = idx.numpy(), values.numpy()
    return items, scores


def topk_from_scores(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` columns per row; ``-inf`` entries are excluded and reported as ``-1``."""
    k = min(k, scores.shape[1])
    part = (
        np.argpartition(-scores, k - 1, axis=1)[:, :k]
        if k < scores.shape[1]
        else np.tile(np.arange(scores.shape[1]), (len(scores), 1))
    )
    top_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    items = np.take_along_axis(part, order, axis=1)
    top_scores = np.take_along_axis(top_scores, order, axis=1)
    missing = ~np.isfinite(top_scores) & (top_scores < 0)
    items[missing] = -1
    return items, top_scores
