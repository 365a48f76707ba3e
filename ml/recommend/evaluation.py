"""The platform protocol: candidates trained on day D scored on the purchases of D+1 (HR, NDCG, recall@K)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.recommend.bundles import CandidateModels
from ml.recommend.champion import BASELINE
from ml.recommend.interactions import ServedHistory, clean_events, day_end
from ml.recommend.scoring import histories, served_histories, topk_batched


def _per_user(
    top: np.ndarray,
    relevant: sp.csr_matrix,
    n_relevant: np.ndarray,
    ks: Sequence[int],
    ranks: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Each user's HR/NDCG/recall@K for multi-item targets; ``relevant`` is users x items (0/1), ``n_relevant``
    per user.

    ``ranks`` (same shape as ``top``) are the listed items' pessimistic ranks: a hit counts at its rank, and
    only within K of it; without them a hit counts at its position in the list."""
    safe = np.where(top >= 0, top, 0)
    hits = np.asarray(relevant[np.arange(len(top))[:, None], safe].todense()) > 0
    hits &= top >= 0
    position = np.broadcast_to(np.arange(top.shape[1]), top.shape) if ranks is None else ranks
    at = 1.0 / np.log2(np.minimum(position, 2**40) + 2.0)
    discounts = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    out: dict[str, np.ndarray] = {}
    for k in ks:
        h = hits & (position < k)
        ideal = np.cumsum(discounts[:k])[np.clip(np.minimum(n_relevant, k) - 1, 0, None)]
        out[f"HR@{k}"] = h.any(axis=1).astype(float)
        out[f"NDCG@{k}"] = (h * at).sum(axis=1) / ideal
        out[f"recall@{k}"] = h.sum(axis=1) / np.maximum(n_relevant, 1)
    return out


def _means(per_user: dict[str, np.ndarray]) -> dict[str, float]:
    """Each metric's mean over users (0 for no user)."""
    return {m: float(v.sum() / max(len(v), 1)) for m, v in per_user.items()}


def _ranking_metrics(top, relevant, n_relevant, ks, ranks=None) -> dict[str, float]:
    """The means over users of :func:`_per_user`."""
    return _means(_per_user(top, relevant, n_relevant, ks, ranks))


def paired_interval(
    model: np.ndarray, baseline: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Bootstrap interval of the mean per-user difference ``model - baseline`` (users resampled, paired)."""
    diff = np.asarray(model, dtype=float) - np.asarray(baseline, dtype=float)
    if len(diff) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.array([diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(n_boot)])
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


MAX_EVALUATED_CUSTOMERS = 50_000
"""Customers with a purchase the next day that the evaluation scores at most, drawn by a seed of the day. Every
candidate ranks the whole catalogue for each of them, so the cost grows with buyers x items, while 50,000
customers already pin a mean NDCG far more tightly than the differences the champion gate acts on."""


def evaluate_next_day(
    models: CandidateModels,
    history: pd.DataFrame | ServedHistory,
    next_day_purchases: pd.DataFrame,
    k: Sequence[int] = (10, 20),
    model_names: Iterable[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Score every candidate against the purchases of the day after training (platform protocol).

    Ties rank pessimistically, as in the benchmark: a purchased item counts at the number of other items scored
    at least as high as it (:func:`ml.recommend.scoring.pessimistic_positions`).

    ``history`` is what the models may use as input (events up to the end of ``as_of``, or what scoring reads of
    them, :func:`~ml.recommend.interactions.read_served_history`, for at least the evaluated customers); the
    evaluated customers are those with a purchase in ``next_day_purchases`` (``customer_id, sku``). Items they
    had already purchased are excluded from both the lists and the targets (the rule forbids recommending them).
    Besides the overall metrics each model gets ``cold_users`` (no event in ``history``) and ``cold_items``
    (targets restricted to items without any event in the training window) slices, and ``coverage@K``: the share
    of the catalogue that appears in at least one top-K list. Above :data:`MAX_EVALUATED_CUSTOMERS` buyers a
    seeded sample of them is scored (``users`` counts the evaluated ones, ``buyers`` all of them).
    """
    ks = tuple(sorted(k))
    buys = next_day_purchases.dropna(subset=["customer_id", "sku"])
    if "event_type" in buys:
        buys = buys[buys["event_type"] == "purchase"]
    buys = buys.assign(customer_id=buys["customer_id"].astype(str), sku=buys["sku"].astype(str))
    buys = buys.drop_duplicates(["customer_id", "sku"])
    customers = np.asarray(sorted(buys["customer_id"].unique()), dtype=object)
    buyers = len(customers)
    if buyers > MAX_EVALUATED_CUSTOMERS:
        # a seeded draw per day: every candidate is judged on the same customers, and a re-run on the same ones
        seed = pd.Timestamp(models.as_of).toordinal()
        drawn = np.random.default_rng(seed).choice(buyers, MAX_EVALUATED_CUSTOMERS, replace=False)
        customers = customers[np.sort(drawn)]
        buys = buys[buys["customer_id"].isin(set(customers))]
    if isinstance(history, ServedHistory):
        hist = served_histories(models, customers, *history)
    else:
        hist = histories(models, customers, clean_events(history, before=day_end(models.as_of)))
    n_items = len(models.item_ids)
    rows = pd.Index(customers).get_indexer(buys["customer_id"].to_numpy())
    cols = pd.Index(models.item_ids).get_indexer(buys["sku"].to_numpy())
    in_vocab = cols >= 0
    already = np.zeros(len(buys), dtype=bool)
    if in_vocab.any():
        # scipy returns a matrix or a sparse array for fancy indexing, depending on the sizes involved
        picked = hist.purchased[rows[in_vocab], cols[in_vocab]]
        picked = picked.toarray() if sp.issparse(picked) else np.asarray(picked)
        already[in_vocab] = picked.ravel() > 0
    fresh = ~already
    relevant = sp.csr_matrix(
        (
            np.ones(int((fresh & in_vocab).sum()), np.float32),
            (rows[fresh & in_vocab], cols[fresh & in_vocab]),
        ),
        shape=(len(customers), n_items),
    )
    # out-of-catalogue targets count as relevant (and unreachable), so no model looks better by ignoring them
    n_relevant = np.bincount(rows[fresh], minlength=len(customers))
    is_cold_item = ~np.isin(np.arange(n_items), models.trained_items)
    cold_rel = relevant @ sp.diags(is_cold_item.astype(np.float32))
    n_cold = np.asarray((cold_rel > 0).sum(axis=1)).ravel()
    evaluated = n_relevant > 0
    cold_users = evaluated & (hist.seqs.lengths == 0)
    cold_item_users = n_cold > 0
    out: dict[str, dict[str, Any]] = {}
    per_user_ndcg: dict[str, np.ndarray] = {}
    for name in model_names or models.names:
        top, ranks = topk_batched(models[name], hist, max(ks))
        e = np.flatnonzero(evaluated)
        users = _per_user(top[e], relevant[e], n_relevant[e], ks, ranks[e])
        per_user_ndcg[name] = users[f"NDCG@{ks[0]}"]
        res: dict[str, Any] = _means(users)
        for kk in ks:
            shown = top[e, :kk]
            res[f"coverage@{kk}"] = float(len(np.unique(shown[shown >= 0])) / n_items)
        res["users"] = int(len(e))
        res["buyers"] = buyers
        cu = np.flatnonzero(cold_users)
        res["cold_users"] = _ranking_metrics(top[cu], relevant[cu], n_relevant[cu], ks, ranks[cu]) | {
            "users": len(cu)
        }
        ci = np.flatnonzero(cold_item_users)
        res["cold_items"] = _ranking_metrics(top[ci], cold_rel[ci], n_cold[ci], ks, ranks[ci]) | {
            "users": len(ci)
        }
        out[name] = res
    # Each model against popularity on the same users, paired: whether a model is worse than the baseline on
    # this day beyond the noise of who happened to buy (the champion gate blocks such a model from serving).
    if BASELINE in per_user_ndcg:
        for name, ndcg in per_user_ndcg.items():
            if name != BASELINE:
                lo, hi = paired_interval(ndcg, per_user_ndcg[BASELINE])
                out[name][f"NDCG@{ks[0]}_vs_{BASELINE}_lo"] = lo
                out[name][f"NDCG@{ks[0]}_vs_{BASELINE}_hi"] = hi
    return out


def flatten_metrics(date: Any, metrics: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per model from :func:`evaluate_next_day`, slices as ``cold_users.NDCG@10`` columns."""
    rows = []
    for model, res in metrics.items():
        row: dict[str, Any] = {"date": date, "model": model}
        for key, val in res.items():
            if isinstance(val, Mapping):
                row.update({f"{key}.{k}": v for k, v in val.items()})
            else:
                row[key] = val
        rows.append(row)
    return pd.DataFrame(rows)
