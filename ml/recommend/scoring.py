"""Scoring the catalogue for customers with a candidate of a bundle: the rules every list obeys.

Every model ranks the whole catalogue; items the customer already *purchased* are never recommended (viewed ones
may be); customers without any usable history get region popularity (``segment_popularity``) whatever the model,
so that every candidate can be served to everyone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.recommend.bundles import CandidateModel, CandidateModels
from ml.recommend.coldstart import SegmentPopularity
from ml.recommend.data import Sequences
from ml.recommend.interactions import TrainingLog, clean_events, to_sequences
from ml.recommend.metrics import users_per_batch


@dataclass
class Histories:
    customers: np.ndarray
    seqs: Sequences
    purchased: sp.csr_matrix
    """customers x items, 1 where the customer has purchased the item (never recommended again)."""
    regions: np.ndarray


def histories(bundle: CandidateModels, customers: Sequence[str], history: pd.DataFrame | None) -> Histories:
    """The customers' histories as scoring reads them, from their interaction log (any rows; others ignored)."""
    customers = np.asarray([str(c) for c in customers], dtype=object)
    df = clean_events(history) if history is not None and len(history) else None
    if df is None:
        return _histories(bundle, customers, None, None, pd.Series(dtype=object))
    log = TrainingLog.from_clean(df[df["customer_id"].isin(set(customers))])
    return _histories(bundle, customers, log.steps, log.purchases, log.regions)


def served_histories(
    bundle: CandidateModels,
    customers: Sequence[str],
    steps: pd.DataFrame,
    purchases: pd.DataFrame,
    regions: pd.Series,
) -> Histories:
    """:func:`histories` from what :func:`~ml.recommend.interactions.read_served_history` computed in the
    warehouse (the same histories as from the customers' whole log, without reading it)."""
    customers = np.asarray([str(c) for c in customers], dtype=object)
    wanted = set(customers)
    steps = steps[steps["customer_id"].isin(wanted)]
    return _histories(bundle, customers, steps, purchases[purchases["customer_id"].isin(wanted)], regions)


def _histories(
    bundle: CandidateModels,
    customers: np.ndarray,
    steps: pd.DataFrame | None,
    bought: pd.DataFrame | None,
    regions: pd.Series,
) -> Histories:
    """``steps``: the customers' collapsed steps in order (None or empty: no history); ``bought``: their purchase
    rows; ``regions``: customer -> last region seen (others fall back to the bundle's)."""
    n_items = len(bundle.item_ids)
    if steps is None or steps.empty:
        seqs = Sequences.from_lists([[] for _ in customers], n_items, customers)
    else:
        seqs = to_sequences(steps, bundle.item_ids, customers)
    purchased = sp.csr_matrix((len(customers), n_items), dtype=np.float32)
    if bought is not None and len(bought):
        rows = pd.Index(customers).get_indexer(bought["customer_id"].astype(str).to_numpy())
        cols = pd.Index(bundle.item_ids).get_indexer(bought["sku"].astype(str).to_numpy())
        ok = (rows >= 0) & (cols >= 0)
        purchased = sp.csr_matrix(
            (np.ones(int(ok.sum()), np.float32), (rows[ok], cols[ok])), shape=(len(customers), n_items)
        )
        purchased.data[:] = 1.0
    regions = regions.reindex(customers).fillna(bundle.regions.reindex(customers)).to_numpy()
    return Histories(customers, seqs, purchased, regions)


def score_rows(candidate: CandidateModel, hist: Histories, rows: np.ndarray) -> np.ndarray:
    """Scores ``[len(rows), items]`` with the exclusion rule applied (purchased items: ``-inf``)."""
    bundle = candidate.bundle
    sub = hist.seqs.subset(rows)
    model = candidate.recommender
    scores = np.array(model._score(sub, hist.customers[rows]), dtype=np.float32, copy=True)
    cold = sub.lengths == 0
    if cold.any() and "segment_popularity" in bundle.models and candidate.name != "popularity":
        # a customer with no usable history: what sells in their region, whatever the model
        scores[cold] = segment_scores(bundle.models["segment_popularity"], hist.regions[rows][cold])
    bought = hist.purchased[rows]
    r, c = bought.nonzero()
    scores[r, c] = -np.inf
    return scores


def segment_scores(seg: SegmentPopularity, regions: np.ndarray) -> np.ndarray:
    idx = seg.seg_index_.get_indexer(pd.Series(regions, dtype=object).to_numpy())
    out = np.tile(seg.pop_, (len(regions), 1))
    out[idx >= 0] = seg.seg_pop_[idx[idx >= 0]]
    return out


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` columns per row via torch (faster than numpy argpartition on wide rows); -1 where excluded."""
    import torch

    k = min(k, scores.shape[1])
    values, idx = torch.topk(torch.from_numpy(scores), k, dim=1)
    idx, values = idx.numpy(), values.numpy()
    idx = np.where(np.isneginf(values), -1, idx)
    return idx, values


def pessimistic_positions(scores: np.ndarray, values: np.ndarray) -> np.ndarray:
    """0-based pessimistic rank of each listed score in its row: the other items scoring at least as much.

    ``scores`` is ``[n, items]`` (excluded items ``-inf``), ``values`` the ``[n, k]`` scores of a top-k list.
    An item tied with others is ranked behind all of them, as the benchmark ranks (ml.recommend.metrics): a
    model that scores much of the catalogue alike cannot profit from the order a sort happened to leave."""
    n, k = values.shape
    out = np.empty((n, k), dtype=np.int64)
    if k == 0:
        return out
    # one pass over the catalogue instead of one per list position: only scores at or above the list's lowest
    # value can outrank a listed item, and they are few (the list itself and its ties) on a wide catalogue
    rows, cols = np.nonzero(scores >= values.min(axis=1, keepdims=True))
    near = scores[rows, cols]
    bounds = np.searchsorted(rows, np.arange(n + 1))
    for r in range(n):
        above = np.sort(near[bounds[r] : bounds[r + 1]])
        out[r] = len(above) - np.searchsorted(above, values[r], side="left") - 1
    return out


def topk_batched(candidate: CandidateModel, hist: Histories, k: int, batch: int = 512):
    """Every customer's top-``k`` items and their pessimistic ranks (:func:`pessimistic_positions`), in batches."""
    n = len(hist.customers)
    items = np.full((n, k), -1, dtype=np.int64)
    ranks = np.full((n, k), np.iinfo(np.int64).max, dtype=np.int64)
    batch = users_per_batch(batch, len(candidate.bundle.item_ids))
    for start in range(0, n, batch):
        rows = np.arange(start, min(n, start + batch))
        scores = score_rows(candidate, hist, rows)
        scores[np.isnan(scores)] = -np.inf  # a NaN score ranks last, so a broken model cannot look good
        i, s = top_k(scores, k)
        items[rows, : i.shape[1]] = i
        ranks[rows, : s.shape[1]] = pessimistic_positions(scores, s)
    return items, ranks
