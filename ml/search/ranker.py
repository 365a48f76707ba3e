"""Product search: a text query ranked by a hybrid of BM25 and the sentence encoder, personalised for a known
customer, filtered to what can be bought, and explained.

1. Relevance: the query's BM25 scores (:mod:`ml.search.lexical`) and its cosine similarity to every product's
   embedding (:mod:`ml.search.encoder`) are fused over the union of each one's best candidates, either by a convex
   combination of the scores normalised per query or by reciprocal rank fusion. The fusion (method and weight) is
   chosen on the validation queries of the search benchmark (``bench.search --choose-fusion``), never on its test
   queries; :data:`DEFAULT_FUSION` is that choice.
2. Personalisation: a known customer's profile facts (category affinity, usual price band, products viewed in the
   last days) raise a relevant product's score by at most :data:`PERSONAL_WEIGHT` of itself. The boost multiplies
   the relevance, so it reorders products that match the query and cannot lift one that does not.
3. Filtering: products out of stock or no longer sold are never returned.
4. Explanation: each result names the query terms it matched, its similarity in meaning, and the profile facts
   that moved it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.search.lexical import TOKEN, LexicalIndex

MAX_QUERY_CHARS = 200
PERSONAL_WEIGHT = 0.2
"""The largest share by which the profile can raise a product's relevance (a product that matches every fact)."""
PERSONAL_FACT_WEIGHTS = {"category": 0.5, "price_band": 0.25, "recently_viewed": 0.25}


class QueryError(ValueError):
    """A query that cannot be searched (empty, too long, without a letter or digit)."""


@dataclass(frozen=True)
class Fusion:
    """How the lexical and the dense scores become one relevance score.

    ``convex``: ``w * bm25 / max(bm25) + (1 - w) * minmax(cosine)`` over the candidates; ``rrf``: ``sum 1 / (k +
    rank)`` over the two rankings (a product outside one ranking's candidates gets nothing from it)."""

    method: str = "convex"
    lexical_weight: float = 0.5
    rrf_k: int = 60
    candidates: int = 200

    def __post_init__(self) -> None:
        if self.method not in ("convex", "rrf"):
            raise ValueError(f"unknown fusion method {self.method!r} (convex or rrf)")
        if not 0.0 <= self.lexical_weight <= 1.0:
            raise ValueError("lexical_weight must lie in [0, 1]")

    def label(self) -> str:
        return f"rrf(k={self.rrf_k})" if self.method == "rrf" else f"convex(w={self.lexical_weight:g})"


DEFAULT_FUSION = Fusion("convex", lexical_weight=0.4)


@dataclass(frozen=True)
class Shopper:
    """The profile facts search reads for one customer (``people/user_profiles`` and the recent views)."""

    customer_id: str
    category_affinity: Mapping[str, float] = field(default_factory=dict)
    """Share of the customer's interest per category (sums to at most 1)."""
    price_band: str | None = None
    recently_viewed: frozenset[str] = frozenset()
    """SKUs the customer viewed in the last days."""


def check_query(query: str | None) -> str:
    """The query stripped, or :class:`QueryError` saying why it cannot be searched."""
    text = (query or "").strip()
    if not text:
        raise QueryError("the query is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"the query has {len(text)} characters; at most {MAX_QUERY_CHARS} are searched")
    if not TOKEN.search(text.lower()):
        raise QueryError("the query has no letter or digit to search for")
    return text


def product_text(catalogue: pd.DataFrame) -> list[str]:
    """What is indexed per product: title, description, category (words, not the code) and brand."""
    parts = [
        catalogue[c].fillna("").astype(str).str.replace("_", " ")
        for c in ("title", "description", "category", "brand")
        if c in catalogue
    ]
    return parts[0].str.cat(parts[1:], sep=" ").tolist() if parts else [""] * len(catalogue)


class ProductSearch:
    """Search over one catalogue.

    ``catalogue``: one row per product with ``sku, title, description, category, brand`` and optionally
    ``price``, ``price_band``, ``in_stock`` and ``available`` (missing: true); ``embeddings``: the products'
    unit-length text embeddings in catalogue order; ``encode``: texts -> unit-length embeddings (the same
    encoder)."""

    def __init__(
        self,
        catalogue: pd.DataFrame,
        embeddings: np.ndarray,
        encode: Callable[[list[str]], np.ndarray],
        fusion: Fusion = DEFAULT_FUSION,
    ) -> None:
        if len(catalogue) != len(embeddings):
            raise ValueError(f"{len(catalogue)} products but {len(embeddings)} embeddings")
        self.catalogue = catalogue.reset_index(drop=True)
        self.embeddings = np.asarray(embeddings, dtype=np.float32)
        self.encode = encode
        self.fusion = fusion
        self.lexical = LexicalIndex(product_text(self.catalogue))
        buyable = np.ones(len(self.catalogue), dtype=bool)
        for column in ("in_stock", "available"):
            if column in self.catalogue:
                buyable &= self.catalogue[column].fillna(False).astype(bool).to_numpy()
        self.buyable = buyable
        self.categories = (
            self.catalogue["category"].fillna("").astype(str).to_numpy()
            if "category" in self.catalogue
            else np.full(len(self.catalogue), "", dtype=object)
        )
        self.price_bands = (
            self.catalogue["price_band"].astype(object).to_numpy()
            if "price_band" in self.catalogue
            else np.full(len(self.catalogue), None, dtype=object)
        )
        self.skus = self.catalogue["sku"].astype(str).to_numpy()

    # ------------------------------------------------------------------------------------------------ relevance
    def signals(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """BM25 and cosine similarity of every product for ``query`` (checked first)."""
        text = check_query(query)
        lexical = self.lexical.scores(text)
        dense = self.embeddings @ self.encode([text])[0] if len(self.embeddings) else np.zeros(0, np.float32)
        return lexical, dense.astype(np.float32)

    def relevance(
        self, lexical: np.ndarray, dense: np.ndarray, fusion: Fusion | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(candidate product indices, fused relevance in [0, 1] with 1 for the best) for one query's signals."""
        fusion = fusion or self.fusion
        n = min(fusion.candidates, len(dense))
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        by_dense = np.argpartition(-dense, n - 1)[:n]
        has_term = np.flatnonzero(lexical > 0)
        by_lexical = has_term[np.argsort(-lexical[has_term], kind="stable")[:n]]
        candidates = np.union1d(by_dense, by_lexical)
        if fusion.method == "rrf":
            score = np.zeros(len(candidates))
            for ranked in (by_lexical, _ordered(by_dense, dense)):
                rank_of = {int(item): r for r, item in enumerate(ranked, 1)}
                score += np.array(
                    [1.0 / (fusion.rrf_k + rank_of[i]) if i in rank_of else 0.0 for i in candidates]
                )
        else:
            lex = lexical[candidates] / lexical.max() if lexical.max() > 0 else np.zeros(len(candidates))
            cos = dense[candidates]
            spread = cos.max() - cos.min()
            cos = (cos - cos.min()) / spread if spread > 0 else np.ones(len(candidates))
            score = fusion.lexical_weight * lex + (1 - fusion.lexical_weight) * cos
        top = score.max()
        return candidates, (score / top if top > 0 else score).astype(np.float32)

    # --------------------------------------------------------------------------------------------------- search
    def ranked(
        self, lexical: np.ndarray, dense: np.ndarray, k: int = 10, fusion: Fusion | None = None
    ) -> np.ndarray:
        """Indices of the ``k`` most relevant products for one query's signals, unpersonalised and unfiltered
        (the benchmark's view)."""
        candidates, score = self.relevance(lexical, dense, fusion)
        return candidates[_top(score, k)]

    def search(self, query: str, k: int = 10, shopper: Shopper | None = None) -> pd.DataFrame:
        """The ``k`` best buyable products for ``query``: ``rank, sku, title, category, brand, price, score,
        relevance, personal, matched_terms, similarity, reason`` (``personal``: the profile boost, 0 for
        anonymous searches)."""
        lexical, dense = self.signals(query)
        candidates, relevance = self.relevance(lexical, dense)
        keep = self.buyable[candidates]
        candidates, relevance = candidates[keep], relevance[keep]
        personal = np.zeros(len(candidates), dtype=np.float32)
        facts: list[list[str]] = [[] for _ in candidates]
        if shopper is not None:
            personal, facts = self._personal(candidates, shopper)
        score = relevance * (1.0 + PERSONAL_WEIGHT * personal)
        order = _top(score, k)
        rows = self.catalogue.iloc[candidates[order]]
        terms = self.lexical.query_terms(check_query(query))
        matched = [self.lexical.matched_terms(terms, int(i)) for i in candidates[order]]
        out = pd.DataFrame(
            {
                "rank": np.arange(1, len(order) + 1),
                "sku": rows["sku"].astype(str).to_numpy(),
                "title": rows["title"].to_numpy(),
                "category": self.categories[candidates[order]],
                "brand": rows["brand"].to_numpy() if "brand" in rows else None,
                "price": rows["price"].to_numpy() if "price" in rows else np.nan,
                "score": score[order].round(4),
                "relevance": relevance[order].round(4),
                "personal": personal[order].round(4),
                "matched_terms": matched,
                "similarity": dense[candidates[order]].round(4),
            }
        )
        out["profile_facts"] = [facts[i] for i in order]
        out["reason"] = [
            _reason(terms, sim, used)
            for terms, sim, used in zip(matched, out["similarity"], out["profile_facts"], strict=True)
        ]
        return out

    def sample_results(self, queries: Sequence[str], k: int = 3) -> pd.DataFrame:
        """``query, rank, sku, title, reason`` of the top ``k`` anonymous results of each query (a preview)."""
        frames = [self.search(q, k=k).assign(query=q) for q in queries]
        return pd.concat(frames, ignore_index=True)[["query", "rank", "sku", "title", "reason"]]

    def _personal(self, candidates: np.ndarray, shopper: Shopper) -> tuple[np.ndarray, list[list[str]]]:
        """The profile boost in [0, 1] of each candidate and the facts behind it."""
        affinity = dict(shopper.category_affinity)
        top_share = max(affinity.values(), default=0.0)
        boost = np.zeros(len(candidates), dtype=np.float32)
        facts: list[list[str]] = []
        for j, i in enumerate(candidates):
            used: list[str] = []
            share = affinity.get(self.categories[i], 0.0)
            if share > 0 and top_share > 0:
                boost[j] += PERSONAL_FACT_WEIGHTS["category"] * share / top_share
                used.append(f"{share:.0%} of your interest is in {self.categories[i].replace('_', ' ')}")
            band = self.price_bands[i]
            if shopper.price_band is not None and band is not None and band == shopper.price_band:
                boost[j] += PERSONAL_FACT_WEIGHTS["price_band"]
                used.append(f"in your usual price band ({band})")
            if self.skus[i] in shopper.recently_viewed:
                boost[j] += PERSONAL_FACT_WEIGHTS["recently_viewed"]
                used.append("you viewed it recently")
            facts.append(used)
        return boost, facts


def _ordered(indices: np.ndarray, scores: np.ndarray) -> np.ndarray:
    return indices[np.argsort(-scores[indices], kind="stable")]


def _top(score: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` best scores, best first; ties by position (stable)."""
    return np.argsort(-score, kind="stable")[:k]


def _reason(terms: Sequence[str], similarity: float, facts: Sequence[str]) -> str:
    parts = [
        f"matches {', '.join(terms)}" if terms else f"close in meaning to your search ({similarity:.2f})"
    ]
    parts.extend(facts)
    return "; ".join(parts)
