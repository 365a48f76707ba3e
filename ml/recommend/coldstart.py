"""Cold start: content scores for items nobody has bought yet, segment popularity for users with no history.

Collaborative models know an item only through its buyers, so a new item scores zero everywhere and is never
recommended. :class:`ContentKNN` scores items by the similarity of their content embedding (TF-IDF of attributes
or text) to the user's recent items, which works from the item's first day; blended with a collaborative model
(:class:`ml.recommend.blend.Blend`, weight measured on validation) it lets new items in without giving up the
collaborative signal on known ones.

A new user has no history at all; :class:`SegmentPopularity` recommends what sells in their segment or region,
shrunk towards global popularity so that small segments do not produce noisy lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.recommend.base import Recommender
from ml.recommend.data import Sequences


def attribute_matrix(item_attributes: Mapping[Any, Sequence[Any]], item_ids: Sequence[Any]) -> sp.csr_matrix:
    """Multi-hot ``[items, attributes]`` matrix aligned with ``item_ids`` (items without attributes: empty row).

    Keys are matched as strings, so a JSON file's ``{"12": [3, 7]}`` matches item id ``12``.
    """
    return attribute_matrix_and_names(item_attributes, item_ids)[0]


def attribute_matrix_and_names(
    item_attributes: Mapping[Any, Sequence[Any]], item_ids: Sequence[Any]
) -> tuple[sp.csr_matrix, np.ndarray]:
    """:func:`attribute_matrix` and the attribute (as a string) of each of its columns."""
    by_key = {str(k): v for k, v in item_attributes.items()}
    rows, attrs = [], []
    for i, item in enumerate(item_ids):
        for a in by_key.get(str(item), ()):
            rows.append(i)
            attrs.append(str(a))
    codes, names = pd.factorize(pd.Series(attrs, dtype=object)) if attrs else (np.zeros(0, np.int64), [])
    n_attr = int(codes.max()) + 1 if len(codes) else 0
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, codes)), shape=(len(item_ids), n_attr))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m, np.asarray(names, dtype=object)


def catalogue_attributes(
    items: pd.DataFrame | None, skus: Sequence[Any], columns: Sequence[str] = ("category", "brand")
) -> tuple[sp.csr_matrix, np.ndarray] | None:
    """The catalogue's categorical columns (``category=...``, ``brand=...``) as :func:`attribute_matrix_and_names`
    over ``skus`` (None without a catalogue or those columns)."""
    if items is None or not len(items) or not any(c in items for c in columns):
        return None
    meta = items.drop_duplicates("sku", keep="last")
    keys = meta["sku"].astype(str).to_numpy()
    by_sku: dict[str, list[str]] = {k: [] for k in keys}
    for column in columns:
        if column not in meta:
            continue
        values = meta[column].astype("string")
        known = (values.notna() & (values != "")).to_numpy()
        for key, value in zip(keys[known], (column + "=" + values[known]).to_numpy(), strict=True):
            by_sku[key].append(value)
    return attribute_matrix_and_names(by_sku, [str(s) for s in skus])


def text_features(texts: Sequence[str], **tfidf: Any) -> sp.csr_matrix:
    """TF-IDF embedding of item texts (title, category, description), when no precomputed embedding exists."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(**({"min_df": 1, "sublinear_tf": True} | tfidf)).fit_transform(texts).tocsr()


class ContentKNN(Recommender):
    """Similarity of each item's content vector to a recency-weighted profile of the user's items.

    ``features`` is an ``[n_items, dims]`` matrix aligned with the item indices the model will be fitted on
    (sparse multi-hot attributes are IDF-weighted; any embedding is L2-normalised). The fit does not look at
    interactions at all beyond the catalogue size, which is the point: the scores exist for never-bought items.
    """

    name = "content"

    def __init__(self, features: sp.spmatrix | np.ndarray, recency: float = 0.7, idf: bool = True):
        self.features = features
        self.recency = recency
        self.idf = idf

    def _fit(self, seqs: Sequences) -> None:
        f = sp.csr_matrix(self.features, dtype=np.float32)
        if f.shape[0] != seqs.n_items:
            raise ValueError(f"features have {f.shape[0]} rows for {seqs.n_items} items")
        if self.idf and sp.issparse(self.features):
            df = np.asarray((f > 0).sum(axis=0)).ravel()
            f = f @ sp.diags(np.log((1.0 + f.shape[0]) / (1.0 + df)).astype(np.float32) + 1.0)
        norms = np.sqrt(np.asarray(f.multiply(f).sum(axis=1)).ravel())
        self.f_ = sp.csr_matrix(sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ f, dtype=np.float32)
        # a dense copy makes scoring one BLAS product when the embedding is small (637 Beauty attributes)
        self.dense_ = self.f_.toarray() if self.f_.shape[1] <= 4096 else None

    def _score(self, histories: Sequences, users: np.ndarray) -> np.ndarray:
        lengths = histories.lengths
        rows = histories.user_index()
        from_end = np.repeat(histories.indptr[1:], lengths) - 1 - np.arange(len(histories.items))
        weights = np.power(self.recency, from_end).astype(np.float32)
        profile = (
            sp.csr_matrix((weights, (rows, histories.items)), shape=(len(histories), histories.n_items))
            @ self.f_
        )
        if self.dense_ is not None:
            return np.asarray(profile.toarray() @ self.dense_.T, dtype=np.float32)
        return np.asarray((profile @ self.f_.T).todense(), dtype=np.float32)

    def params(self) -> dict[str, Any]:
        return {"recency": self.recency, "idf": self.idf, "dims": int(self.features.shape[1])}


class SegmentPopularity(Recommender):
    """Popularity within the user's segment (or region), shrunk towards global popularity.

    ``p_s(j) = (c_s(j) + shrink * p(j)) / (n_s + shrink)``: a segment with few purchases looks like the global
    list, a large one like itself. Users whose segment is unknown get global popularity. ``segments`` maps user id
    to segment for both training and scoring users (new users need a segment, not a history).
    """

    name = "segment_popularity"
    output = "prob"

    def __init__(
        self, segments: Mapping[Any, Any] | pd.Series, shrink: float = 50.0, half_life: float | None = None
    ):
        self.segments = pd.Series(segments)
        self.shrink = shrink
        self.half_life = half_life

    def _fit(self, seqs: Sequences) -> None:
        weights = np.ones(len(seqs.items), dtype=np.float64)
        if self.half_life and seqs.ts is not None and len(seqs.ts):
            weights = np.power(0.5, (seqs.ts.max() - seqs.ts) / self.half_life)
        glob = np.bincount(seqs.items, weights=weights, minlength=seqs.n_items)
        self.pop_ = (glob / max(glob.sum(), 1e-12)).astype(np.float32)
        self.seg_index_ = pd.Index(pd.unique(self.segments.to_numpy()))
        user_seg = self.seg_index_.get_indexer(self.segments.reindex(seqs.user_ids).to_numpy())
        pos_seg = np.repeat(user_seg, seqs.lengths)
        known = pos_seg >= 0
        counts = sp.csr_matrix(
            (weights[known], (pos_seg[known], seqs.items[known])), shape=(len(self.seg_index_), seqs.n_items)
        ).toarray()
        totals = counts.sum(axis=1, keepdims=True)
        self.seg_pop_ = ((counts + self.shrink * self.pop_) / (totals + self.shrink)).astype(np.float32)

    def _score(self, histories: Sequences, users: np.ndarray) -> np.ndarray:
        seg = self.seg_index_.get_indexer(self.segments.reindex(users).to_numpy())
        out = np.tile(self.pop_, (len(users), 1))
        out[seg >= 0] = self.seg_pop_[seg[seg >= 0]]
        return out

    def params(self) -> dict[str, Any]:
        return {"shrink": self.shrink, "half_life": self.half_life, "segments": len(self.segments.unique())}
