"""Full-ranking HR@K and NDCG@K with pessimistic ties.

The target's rank is the number of *other* items whose score is greater than or equal to the target's score.
Counting ties against the target means a model cannot profit from an arbitrary tie order: a transition model that
leaves most of the catalogue at score 0 would otherwise look several times better than it is (docs/PROTOCOLS.md).
Items the user already has are set to ``-inf`` before ranking, except the target itself, which is always
ranked with its own score (a repeat purchase must stay rankable).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from ml.recommend.data import Sequences

DEFAULT_KS = (5, 10, 20)


def exclude_history(scores: np.ndarray, histories: Sequences, rows: np.ndarray | None = None) -> None:
    """Set ``scores[i, item] = -inf`` for every item in user ``rows[i]``'s history, in place."""
    rows = np.arange(len(scores)) if rows is None else np.asarray(rows)
    lengths = histories.lengths[rows]
    r = np.repeat(np.arange(len(rows)), lengths)
    starts = histories.indptr[rows]
    cols = histories.items[np.repeat(starts, lengths) + _within(lengths)]
    scores[r, cols] = -np.inf


def _within(lengths: np.ndarray) -> np.ndarray:
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    return np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def target_ranks(
    scores: np.ndarray,
    targets: np.ndarray,
    histories: Sequences | None = None,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Pessimistic 0-based rank of each row's target among all items.

    ``scores`` is ``[n, n_items]`` and is modified in place when ``histories`` is given (history items set to
    ``-inf``); ``rows`` selects which users of ``histories`` the score rows belong to. NaN scores count as
    ``-inf`` so that a broken model cannot look good.
    """
    scores = np.asarray(scores)
    n = len(scores)
    idx = np.arange(n)
    targets = np.asarray(targets, dtype=np.int64)
    np.nan_to_num(scores, copy=False, nan=-np.inf)
    own = scores[idx, targets].copy()
    if histories is not None:
        exclude_history(scores, histories, rows)
        scores[idx, targets] = own
    return (scores >= own[:, None]).sum(axis=1) - 1


def metrics_from_ranks(ranks: np.ndarray, ks: Iterable[int] = DEFAULT_KS) -> dict[str, float]:
    """Mean HR@K and NDCG@K (one relevant item per user: NDCG = 1 / log2(rank + 2) inside the top K)."""
    ranks = np.asarray(ranks)
    out: dict[str, float] = {}
    for k in ks:
        hit = ranks < k
        out[f"HR@{k}"] = float(hit.mean()) if len(ranks) else 0.0
        out[f"NDCG@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean()) if len(ranks) else 0.0
    return out


SCORE_BATCH_BYTES = 256 * 2**20
"""Memory of one batch of float32 scores; ranks and lists do not depend on the batch size."""

EVALUATION_BATCH = 512
"""Users per evaluation batch: on catalogues of ten-odd thousand items their scores stay under glibc's largest
mmap threshold (32 MiB), so each batch reuses heap memory instead of mapping and page-faulting a fresh block
(measured in docs/benchmarks/recsys.md)."""


def users_per_batch(batch_size: int, n_items: int) -> int:
    """``batch_size``, fewer when a batch of scores would pass ``SCORE_BATCH_BYTES``: a score matrix and its
    working copies per batch, so 2,048 users on a 100k-item catalogue would take GiBs."""
    return max(1, min(batch_size, SCORE_BATCH_BYTES // (4 * max(n_items, 1))))


def evaluate(
    score_fn: Callable[[np.ndarray], np.ndarray],
    histories: Sequences,
    targets: np.ndarray,
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = EVALUATION_BATCH,
    users: np.ndarray | None = None,
) -> dict[str, float]:
    """Rank every user's target with ``score_fn(user_batch) -> [batch, n_items]``, in batches.

    Batching keeps memory at ``batch_size x n_items`` floats however many users there are (fewer users per batch
    when a batch would pass ``SCORE_BATCH_BYTES``).
    """
    return metrics_from_ranks(ranks_for(score_fn, histories, targets, batch_size, users), ks)


def ranks_for(
    score_fn: Callable[[np.ndarray], np.ndarray],
    histories: Sequences,
    targets: np.ndarray,
    batch_size: int = EVALUATION_BATCH,
    users: np.ndarray | None = None,
) -> np.ndarray:
    users = np.arange(len(histories)) if users is None else np.asarray(users)
    ranks = np.empty(len(users), dtype=np.int64)
    batch_size = users_per_batch(batch_size, histories.n_items)
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        scores = np.array(score_fn(batch), dtype=np.float32, copy=True)
        ranks[start : start + len(batch)] = target_ranks(scores, targets[batch], histories, batch)
    return ranks
