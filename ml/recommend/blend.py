"""Mixtures of recommenders, with the mixture weight measured on validation.

Models score on different scales (log-probabilities, probabilities, cosine sums), so each component is first
turned into a per-user distribution over the catalogue and the blend is the mixture ``sum_k w_k p_k``. A mixture
of distributions keeps a sharp model's confident picks while a second model fills in where it is unsure; this is
how the Transformer and the transition model are combined, and how collaborative and content scores are combined
for new items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Self

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


class _Combination(Recommender):
    """A recommender made of component recommenders: with ``prefit=True`` they are used as they are (e.g. a
    Transformer that took minutes to train); otherwise ``fit`` fits each of them on the same data first."""

    components: list[Recommender]
    prefit: bool

    def fit(self, interactions: Interactions, n_items: int | None = None) -> Self:
        if not self.prefit:
            for c in self.components:
                c.fit(interactions, n_items)
        return super().fit(interactions, n_items)


class Blend(_Combination):
    """Weighted mixture of component recommenders' distributions (``prefit``: see :class:`_Combination`)."""

    name = "blend"
    output = "prob"

    def __init__(self, components: Sequence[Recommender], weights: Sequence[float], prefit: bool = False):
        if len(components) != len(weights):
            raise ValueError("one weight per component")
        self.components = list(components)
        self.weights = [float(w) for w in weights]
        self.prefit = prefit

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


def slot_positions(kind_ranks: np.ndarray, target_is_cold: np.ndarray, every: int | None) -> np.ndarray:
    """0-based list positions when every ``every``-th slot of the list is reserved for new (cold) items.

    ``kind_ranks``: each target's rank among the items of its own kind (a cold target among the cold items by the
    content scores, a warm one among the warm items by the main scores). Positions ``every - 1, 2 * every - 1, ...``
    hold the cold items in content order and the others hold the warm items in order, so a warm item of rank ``i``
    sits at ``i + i // (every - 1)`` and a cold one of rank ``j`` at ``(j + 1) * every - 1``. ``every=None``: no
    slot is reserved (the caller ranks everything by the main scores instead)."""
    if every is None:
        raise ValueError("every=None has no slots: rank by the main scores")
    if every < 2:
        raise ValueError(f"every must be at least 2 (one warm item between slots), got {every}")
    ranks = np.asarray(kind_ranks, dtype=np.int64)
    return np.where(target_is_cold, (ranks + 1) * every - 1, ranks + ranks // (every - 1))


def cold_slot_ranks(
    main_fns: Sequence[Callable[[np.ndarray], np.ndarray]],
    kinds: Sequence[str],
    content_fn: Callable[[np.ndarray], np.ndarray],
    is_cold: np.ndarray,
    histories: Sequences,
    targets: np.ndarray,
    weight_grid: Sequence[Sequence[float]],
    spacings: Sequence[int | None],
    batch_size: int = 1024,
) -> np.ndarray:
    """Pessimistic target ranks ``[len(weight_grid), len(spacings), users]`` of lists whose warm items come from
    the blend of ``main_fns`` (each weight vector of ``weight_grid``) and whose every ``spacing``-th slot holds the
    next new item by ``content_fn`` (:func:`slot_positions`; ``None``: the blend ranks every item, as
    :func:`blend_ranks`). A new item is one the collaborative models have no data on (``is_cold``), which is known
    when the list is made, so routing it through the content scores uses nothing about the target."""
    n = len(histories)
    is_cold = np.asarray(is_cold, dtype=bool)
    out = np.empty((len(weight_grid), len(spacings), n), dtype=np.int64)
    for start in range(0, n, batch_size):
        batch = np.arange(start, min(start + batch_size, n))
        target = np.asarray(targets[batch], dtype=np.int64)
        cold_target = is_cold[target]
        content = content_fn(batch).astype(np.float32)
        cold_rank = _kind_ranks(content, target, histories, batch, is_cold)
        probs = [to_probabilities(f(batch), k) for f, k in zip(main_fns, kinds, strict=True)]
        for g, weights in enumerate(weight_grid):
            mix = np.zeros_like(probs[0])
            for p, w in zip(probs, weights, strict=True):
                if w:
                    mix += np.float32(w) * p
            warm_rank = _kind_ranks(mix.copy(), target, histories, batch, ~is_cold)
            kind_rank = np.where(cold_target, cold_rank, warm_rank)
            for s, every in enumerate(spacings):
                out[g, s, batch] = (
                    target_ranks(mix.copy(), target, histories, batch)
                    if every is None
                    else slot_positions(kind_rank, cold_target, every)
                )
    return out


def _kind_ranks(
    scores: np.ndarray, targets: np.ndarray, histories: Sequences, rows: np.ndarray, kind: np.ndarray
) -> np.ndarray:
    """Pessimistic rank of each row's target among the non-history items with ``kind`` True (``scores`` is
    modified in place)."""
    scores[:, ~kind] = -np.inf
    return target_ranks(scores, targets, histories, rows)


COLD_SLOT_EVERY = 5
"""Every how many places a list holds a new item: the spacing chosen on validation by ``bench.recsys``' cold-start
experiment (how, and what it measured: docs/benchmarks/recsys.md)."""


class ColdSlots(_Combination):
    """A main model's list with every ``every``-th place reserved for the next new item by a content model.

    New items are the catalogue items without a single interaction in the training data (``is_cold_``): the
    main model knows nothing of them, so they are ranked by ``content`` alone, while every other item keeps the
    main model's order. Scores are ``-position`` in the merged list, so top-K, the exclusion rule and full-ranking
    evaluation read them as any score. The list is one concrete list: items tied within a kind take their places
    in catalogue order (a shared place would leave gaps that move the other kind up), so its evaluation has no
    ties; :func:`cold_slot_ranks` ranks the same lists pessimistically for the benchmark. Nothing is excluded
    here: the caller's rule (purchases on the platform, the whole history in the benchmark, stock) removes items
    afterwards and the rest close up, so a new item may come a place or two before its slot.
    """

    name = "cold_slots"
    output = "score"

    def __init__(
        self, main: Recommender, content: Recommender, every: int = COLD_SLOT_EVERY, prefit: bool = True
    ):
        if every < 2:
            raise ValueError(f"every must be at least 2, got {every}")
        self.main, self.content, self.every, self.prefit = main, content, int(every), prefit

    @property
    def components(self) -> list[Recommender]:
        return [self.main, self.content]

    def _fit(self, seqs: Sequences) -> None:
        self.is_cold_ = np.bincount(seqs.items, minlength=seqs.n_items) == 0

    def _score(self, histories: Sequences, users: np.ndarray) -> np.ndarray:
        main = np.asarray(self.main._score(histories, users), dtype=np.float32)
        content = np.asarray(self.content._score(histories, users), dtype=np.float32)
        cold = self.is_cold_
        kind_rank = np.where(cold, _ordinal_ranks(content, cold), _ordinal_ranks(main, ~cold))
        position = slot_positions(kind_rank, np.broadcast_to(cold, kind_rank.shape), self.every)
        scores = -position.astype(np.float32)
        hidden = np.where(cold, content, main) == -np.inf
        scores[hidden] = -np.inf
        return scores

    def params(self) -> dict[str, Any]:
        return {"components": [c.name for c in self.components], "every": self.every}


def _ordinal_ranks(scores: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Per row, each item's 0-based place among the ``member`` items by descending score, ties in catalogue order
    (non-members are -inf, after every member with a score; their places are meaningless)."""
    masked = np.where(member, np.nan_to_num(scores, nan=-np.inf), -np.inf)
    order = np.argsort(-masked, axis=1, kind="stable")
    ranks = np.empty(masked.shape, dtype=np.int64)
    np.put_along_axis(ranks, order, np.arange(masked.shape[1])[None, :], axis=1)
    return ranks
