"""Interaction data as per-user item sequences in a compact CSR layout.

Every recommender here needs the same three views of the data: each user's items in time order (sequential
models), a binary user x item matrix (ItemKNN, EASE) and consecutive item pairs (transition model). Storing the
sequences once as ``indptr``/``items`` arrays (the layout of a CSR matrix) gives all three without Python loops
over users, which matters at 22k users and more.

Items are dense indices ``0..n_items-1``; the raw ids they stand for are kept in ``item_ids`` so that a model
fitted on a DataFrame can answer in the shop's ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp


@dataclass(frozen=True)
class Sequences:
    """Per-user item sequences, oldest first.

    ``items[indptr[u]:indptr[u + 1]]`` is user ``u``'s sequence of dense item indices.
    """

    indptr: np.ndarray
    items: np.ndarray
    n_items: int
    user_ids: np.ndarray
    item_ids: np.ndarray
    ts: np.ndarray | None = None
    """Optional event time of every position of ``items`` (float seconds), for time-decayed models."""

    def __post_init__(self) -> None:
        if len(self.indptr) != len(self.user_ids) + 1:
            raise ValueError("indptr must have one entry more than user_ids")
        if len(self.items) and (self.items.min() < 0 or self.items.max() >= self.n_items):
            raise ValueError("item indices out of range")

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_lists(
        cls, seqs: Sequence[Sequence[int]], n_items: int | None = None, user_ids: Sequence | None = None
    ) -> Sequences:
        """Sequences of dense item indices (raw id == index)."""
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        indptr = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        items = (
            np.concatenate([np.asarray(s, dtype=np.int64) for s in seqs])
            if len(seqs)
            else np.zeros(0, np.int64)
        )
        if n_items is None:
            n_items = int(items.max()) + 1 if len(items) else 0
        uids = np.arange(len(seqs)) if user_ids is None else np.asarray(user_ids)
        return cls(indptr, items, int(n_items), uids, np.arange(n_items))

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        user: str = "user",
        item: str = "item",
        ts: str | None = "ts",
        item_ids: Sequence | None = None,
    ) -> Sequences:
        """Group an interaction log into sequences.

        Rows are ordered by ``ts`` with a stable sort, so ties (same-day purchases) keep their row order; this is
        exactly how the S3-Rec preprocessing orders Beauty. ``item_ids`` fixes the item vocabulary (for example to
        score against a catalogue that includes never-bought items); by default it is the sorted distinct items.
        """
        vocab = np.sort(df[item].unique()) if item_ids is None else np.asarray(item_ids)
        codes = pd.Index(vocab).get_indexer(df[item].to_numpy())
        if (codes < 0).any():
            raise ValueError("interactions contain items outside item_ids")
        ucodes, uids = pd.factorize(df[user], sort=True)
        times = None
        if ts is not None and ts in df.columns:
            t = df[ts]
            if pd.api.types.is_datetime64_any_dtype(t):
                t = (pd.to_datetime(t, utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
            times = t.to_numpy(dtype=np.float64)
        return cls.from_codes(ucodes, np.asarray(uids), codes, vocab, times)

    @classmethod
    def from_codes(
        cls,
        user_codes: np.ndarray,
        user_ids: np.ndarray,
        item_codes: np.ndarray,
        item_ids: np.ndarray,
        ts: np.ndarray | None = None,
    ) -> Sequences:
        """Sequences from one row per event: the user as an index into ``user_ids``, the item as an index into
        ``item_ids``, and the optional time (float seconds). Events are ordered by time with a stable sort (ties
        keep their row order); users without any event are left out, the others keep the order of ``user_ids``."""
        user_codes, item_codes = np.asarray(user_codes), np.asarray(item_codes, dtype=np.int64)
        by_time = np.argsort(ts, kind="stable") if ts is not None else np.arange(len(user_codes))
        counts = np.bincount(user_codes, minlength=len(user_ids))
        present = np.flatnonzero(counts)
        dense = np.zeros(len(counts), dtype=np.int64)
        dense[present] = np.arange(len(present))
        order = by_time[np.argsort(dense[user_codes[by_time]], kind="stable")]
        indptr = np.zeros(len(present) + 1, dtype=np.int64)
        np.cumsum(counts[present], out=indptr[1:])
        times = None if ts is None else np.asarray(ts, dtype=np.float64)[order]
        return cls(
            indptr,
            item_codes[order],
            len(item_ids),
            np.asarray(user_ids)[present],
            np.asarray(item_ids),
            times,
        )

    # ----------------------------------------------------------------- views
    def __len__(self) -> int:
        return len(self.user_ids)

    def __getitem__(self, u: int) -> np.ndarray:
        return self.items[self.indptr[u] : self.indptr[u + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def to_lists(self) -> list[np.ndarray]:
        return [self[u] for u in range(len(self))]

    def user_index(self) -> np.ndarray:
        """The user of every position of ``items``."""
        return np.repeat(np.arange(len(self)), self.lengths)

    def matrix(self, binary: bool = True) -> sp.csr_matrix:
        """User x item matrix; repeated purchases count once when ``binary``."""
        m = sp.csr_matrix(
            (np.ones(len(self.items), dtype=np.float32), (self.user_index(), self.items)),
            shape=(len(self), self.n_items),
        )
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        return m

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Consecutive (previous, next) item pairs within each user."""
        if len(self.items) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        same_user = np.ones(len(self.items) - 1, dtype=bool)
        starts = self.indptr[1:-1]
        starts = starts[(starts > 0) & (starts < len(self.items))]
        same_user[starts - 1] = False
        return self.items[:-1][same_user], self.items[1:][same_user]

    def last(self) -> np.ndarray:
        """The last item of every user (-1 for empty sequences)."""
        out = np.full(len(self), -1, dtype=np.int64)
        nz = self.lengths > 0
        out[nz] = self.items[self.indptr[1:][nz] - 1]
        return out

    # ----------------------------------------------------------------- editing
    def subset(self, users: np.ndarray) -> Sequences:
        users = np.asarray(users, dtype=np.int64)
        lengths = self.lengths[users]
        indptr = np.zeros(len(users) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        idx = _ranges(self.indptr[users], lengths)
        return Sequences(
            indptr, self.items[idx], self.n_items, self.user_ids[users], self.item_ids, self._ts(idx)
        )

    def drop_last(self, n: int = 1) -> Sequences:
        """Every sequence without its last ``n`` items (leave-one-out training views)."""
        lengths = np.maximum(self.lengths - n, 0)
        indptr = np.zeros(len(self) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        idx = _ranges(self.indptr[:-1], lengths)
        return Sequences(indptr, self.items[idx], self.n_items, self.user_ids, self.item_ids, self._ts(idx))

    def without_items(self, drop: np.ndarray) -> Sequences:
        """Sequences with the given items removed (used to simulate items that are new to the model)."""
        keep = ~np.isin(self.items, drop)
        user = self.user_index()[keep]
        indptr = np.zeros(len(self) + 1, dtype=np.int64)
        np.cumsum(np.bincount(user, minlength=len(self)), out=indptr[1:])
        return Sequences(indptr, self.items[keep], self.n_items, self.user_ids, self.item_ids, self._ts(keep))

    def _ts(self, idx: np.ndarray) -> np.ndarray | None:
        return None if self.ts is None else self.ts[idx]


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + n)`` for each pair, without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(total, dtype=np.int64) + offsets


def read_sequence_file(path: str | Path) -> Sequences:
    """Read a file in the S3-Rec ``Beauty.txt`` format: one line per user, ``user item item ...`` in time order.

    Item ids are mapped to dense indices in sorted order of their raw ids, so raw ids survive in ``item_ids``.
    """
    users: list[str] = []
    seqs: list[list[str]] = []
    with open(path) as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 2:
                continue
            users.append(parts[0])
            seqs.append(parts[1:])
    raw = np.concatenate([np.asarray(s) for s in seqs]) if seqs else np.zeros(0, dtype=str)
    try:
        raw_ids = raw.astype(np.int64)
    except ValueError:
        raw_ids = raw
    vocab, codes = np.unique(raw_ids, return_inverse=True)
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    indptr = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return Sequences(indptr, codes.astype(np.int64), len(vocab), np.asarray(users), vocab)


@dataclass(frozen=True)
class LeaveOneOut:
    """The paper protocol's split: last item test, second-to-last validation, the rest training.

    ``val_train`` (items[:-2]) is what models see while their hyperparameters are chosen on ``val_target``;
    ``test_train`` (items[:-1]) is what they are refitted on before being scored on ``test_target``. Only users
    with at least three items take part, so every evaluated user has a non-empty history in both phases.
    """

    val_train: Sequences
    val_target: np.ndarray
    test_train: Sequences
    test_target: np.ndarray

    @classmethod
    def split(cls, seqs: Sequences) -> LeaveOneOut:
        users = np.flatnonzero(seqs.lengths >= 3)
        s = seqs.subset(users)
        test_target = s.last()
        test_train = s.drop_last(1)
        val_target = test_train.last()
        return cls(s.drop_last(2), val_target, test_train, test_target)


MAX_VALIDATION_USERS = 25_000
"""Cap on the users whose held-out item validates early stopping: every eligible user up to it, a seeded sample
above it. The noise of the validation NDCG depends on how many users there are, its cost on users x items, so a
large store validates on a sample."""


def validation_users(lengths: np.ndarray, seed: int, limit: int = MAX_VALIDATION_USERS) -> np.ndarray:
    """The users (indices, sorted) whose last item validates early stopping: those with at least 2 items (one to
    predict from, one to predict), all of them up to ``limit``, else ``limit`` of them drawn by ``seed``."""
    eligible = np.flatnonzero(np.asarray(lengths) >= 2)
    if len(eligible) <= limit:
        return eligible
    return np.sort(np.random.default_rng(seed).choice(eligible, limit, replace=False))
