"""The served lists: top-K per customer with score, rank, model version and a readable reason."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.recommend.bundles import CandidateModel, CandidateModels
from ml.recommend.interactions import item_labels
from ml.recommend.metrics import users_per_batch
from ml.recommend.scoring import Histories, histories, score_rows, top_k

REASON_KINDS = ("bought together", "similar to", "new in", "popular in")
"""How the reasons :func:`recommend` gives begin, one per kind (the summary of a day's lists counts them)."""


def recommend(
    model: CandidateModel,
    customers: Sequence[str],
    history: pd.DataFrame | Histories | None,
    k: int = 10,
    items: pd.DataFrame | None = None,
    together: sp.csr_matrix | None = None,
) -> pd.DataFrame:
    """Top-``k`` per customer with score, rank, model version and a readable reason.

    ``history`` holds the customers' events (any date up to now; their purchases are excluded), or their
    :class:`~ml.recommend.scoring.Histories` already built (for ``customers``, in their order). ``items``, when
    given, restricts the lists to those SKUs (e.g. in stock today) and supplies titles for the reasons. The reason
    names a real item of the customer's history whenever it cites one (``reason_sku``): "bought together with X"
    (``together``: items x items of the bundle, the lift of X and the item bought in the same orders, from
    ``goods/basket_associations``; see :func:`ml.recommend.daily.basket_pairs`), "similar to X you viewed/bought"
    (item-item similarity), else "new in a category you like" (never-bought item in a category of the history) or
    "popular in your region".
    """
    bundle = model.bundle
    hist = history if isinstance(history, Histories) else histories(bundle, customers, history)
    if items is not None and len(items):
        # a hash lookup: np.isin sorts object arrays with Python comparisons, far slower on a large catalogue
        allowed = pd.Index(bundle.item_ids).isin(items["sku"].astype(str).to_numpy())
        titles = item_labels(items, bundle.item_ids)[0]
        titles = titles.where(titles != pd.Series(bundle.item_ids, index=bundle.item_ids), bundle.titles)
    else:
        allowed, titles = None, bundle.titles
    n_items = len(bundle.item_ids)
    if together is None:
        together = sp.csr_matrix((n_items, n_items), dtype=np.float32)
    lookups = (_Lookup(together), _Lookup(bundle.similar))
    frames = []
    batch = users_per_batch(2048, len(bundle.item_ids))
    for start in range(0, len(hist.customers), batch):
        rows = np.arange(start, min(len(hist.customers), start + batch))
        s = score_rows(model, hist, rows)
        if allowed is not None:
            s[:, ~allowed] = -np.inf
        top, top_scores = top_k(s, k)
        part = Histories(
            hist.customers[rows], hist.seqs.subset(rows), hist.purchased[rows], hist.regions[rows]
        )
        reason, reason_item = _reasons(bundle, part, top, titles, lookups)
        user_row, rank = np.nonzero(top >= 0)
        cited = reason_item[user_row, rank]
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": part.customers[user_row],
                    "rank": rank + 1,
                    "sku": bundle.item_ids[top[user_row, rank]],
                    "score": top_scores[user_row, rank].astype(np.float64),
                    "model_name": model.name,
                    "model_version": model.version,
                    "reason": reason[user_row, rank],
                    "reason_sku": np.where(cited >= 0, bundle.item_ids[np.maximum(cited, 0)], None),
                }
            )
        )
    if not frames:
        columns = [
            "customer_id",
            "rank",
            "sku",
            "score",
            "model_name",
            "model_version",
            "reason",
            "reason_sku",
        ]
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)


class _Lookup:
    """Elementwise ``m[rows, cols]`` for same-shaped index arrays (-1 = missing: value 0), by binary search."""

    def __init__(self, m: sp.csr_matrix):
        coo = m.tocoo()
        self.n = m.shape[1]
        keys = coo.row.astype(np.int64) * self.n + coo.col
        order = np.argsort(keys)
        self.keys, self.vals = keys[order], coo.data[order]

    def __call__(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        if not len(self.keys):
            return np.zeros(rows.shape, dtype=np.float32)
        q = np.where((rows >= 0) & (cols >= 0), rows.astype(np.int64) * self.n + cols, -1)
        pos = np.clip(np.searchsorted(self.keys, q), 0, len(self.keys) - 1)
        return np.where((q >= 0) & (self.keys[pos] == q), self.vals[pos], 0.0)


def _reasons(
    bundle: CandidateModels,
    hist: Histories,
    top: np.ndarray,
    titles: pd.Series,
    lookups: tuple[_Lookup, _Lookup],
    depth: int = 20,
):
    """Reason strings ``[users, k]`` and the history item each cites (-1 when none)."""
    n, k = top.shape
    # the customer's last ``depth`` items, most recent first, and whether each was purchased
    lens = np.minimum(hist.seqs.lengths, depth)
    recent = np.full((n, depth), -1, dtype=np.int64)
    r = np.repeat(np.arange(n), lens)
    c = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
    recent[r, c] = hist.seqs.items[np.repeat(hist.seqs.indptr[1:], lens) - 1 - c]
    h = np.broadcast_to(recent[:, None, :], (n, k, depth))
    t = np.broadcast_to(top[:, :, None], (n, k, depth))
    together = lookups[0](h, t)
    similar = lookups[1](h, t)
    best_together = together.argmax(axis=2)
    best_similar = similar.argmax(axis=2)
    has_together = together.max(axis=2) > 0
    has_similar = similar.max(axis=2) > 0
    cite = np.where(
        has_together,
        np.take_along_axis(recent, best_together, axis=1) if k else recent[:, :0],
        np.where(has_similar, np.take_along_axis(recent, best_similar, axis=1), -1),
    )
    bought = np.asarray(hist.purchased[np.arange(n)[:, None], np.maximum(cite, 0)].todense()) > 0
    title = titles.to_numpy()
    cats = bundle.categories.to_numpy()
    is_new = ~np.isin(np.arange(len(bundle.item_ids)), bundle.trained_items)
    reasons = np.empty((n, k), dtype=object)
    for u in range(n):
        liked = {cats[i] for i in recent[u][recent[u] >= 0]} - {None, np.nan}
        region = hist.regions[u]
        for j in range(k):
            item = top[u, j]
            if item < 0:
                continue
            x = cite[u, j]
            if x >= 0 and has_together[u, j]:
                reasons[u, j] = f"bought together with {title[x]}"
            elif x >= 0:
                reasons[u, j] = f"similar to {title[x]} you {'bought' if bought[u, j] else 'viewed'}"
            elif is_new[item] and cats[item] in liked:
                reasons[u, j] = f"new in a category you like ({cats[item]})"
            elif isinstance(region, str) and region:
                reasons[u, j] = f"popular in your region ({region})"
            else:
                reasons[u, j] = "popular right now"
    return reasons, cite
