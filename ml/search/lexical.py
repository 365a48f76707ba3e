"""The lexical half of search: BM25 (``bm25s``, a maintained numpy/scipy implementation) over product text.

Tokens are lower-cased words and numbers with a light plural folding ("candles" matches "candle"), without
English stop words, so that the terms a result matched can be shown back to the customer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MIN_CORRECTED_LENGTH = 5
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "in",
        "is",
        "it",
        "its",
        "made",
        "of",
        "on",
        "or",
        "our",
        "part",
        "range",
        "that",
        "the",
        "this",
        "to",
        "with",
        "your",
        "you",
        "me",
        "my",
        "i",
        "want",
        "need",
        "looking",
        "some",
        "any",
    ]
)


def fold(token: str) -> str:
    """A plural folded onto its singular, by rule (no dictionary): ``boxes`` -> ``box``, ``candles`` -> ``candle``,
    never a word of three letters or fewer, nor one that ends in ``ss`` or ``us``."""
    if len(token) <= 3 or token.endswith(("ss", "us", "is")):
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith(("ches", "shes", "xes", "sses")):
        return token[:-2]
    if token.endswith("s"):
        return token[:-1]
    return token


def tokens(text: str) -> list[str]:
    """The index terms of ``text``; a hyphenated word gives itself and its parts ("non-stick", "non", "stick")."""
    out: list[str] = []
    for word in TOKEN.findall(str(text).lower()):
        parts = [word, *word.split("-")] if "-" in word else [word]
        out.extend(fold(part) for part in parts if part not in STOP_WORDS)
    return out


LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789-"


def one_edit(word: str) -> set[str]:
    """Every string one edit from ``word``: a letter deleted, inserted, replaced, or two neighbours swapped."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = {a + b[1:] for a, b in splits if b}
    swaps = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaces = {a + c + b[1:] for a, b in splits if b for c in LETTERS}
    inserts = {a + c + b for a, b in splits for c in LETTERS}
    return (deletes | swaps | replaces | inserts) - {word}


class LexicalIndex:
    """BM25 scores of every document for a query, and the query terms a document contains.

    A query term the catalogue never uses is read as the catalogue's most frequent term one edit away, when there
    is one and the term has at least :data:`MIN_CORRECTED_LENGTH` characters ("hedphones" -> "headphone"): a
    misspelt word otherwise matches nothing."""

    def __init__(self, texts: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        import bm25s

        self.doc_terms = [tokens(t) for t in texts]
        self._term_sets = [frozenset(terms) for terms in self.doc_terms]
        self.bm25 = bm25s.BM25(k1=k1, b=b)
        # an empty corpus still gets one (empty) token so that bm25s can build its matrix
        self.bm25.index([terms or [""] for terms in self.doc_terms] or [[""]], show_progress=False)
        self.size = len(self.doc_terms)
        self.document_frequency: dict[str, int] = {}
        for terms in self._term_sets:
            for term in terms:
                self.document_frequency[term] = self.document_frequency.get(term, 0) + 1

    def query_terms(self, query: str) -> list[str]:
        """The query's terms as searched: unknown ones corrected by one edit where the catalogue allows."""
        out = []
        for term in tokens(query):
            if term not in self.document_frequency and len(term) >= MIN_CORRECTED_LENGTH:
                near = [t for t in one_edit(term) if t in self.document_frequency]
                if near:
                    term = max(near, key=lambda t: (self.document_frequency[t], t))
            out.append(term)
        return out

    def scores(self, query: str) -> np.ndarray:
        """BM25 of every document (0 where no query term occurs)."""
        terms = self.query_terms(query)
        if not terms or not self.size:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self.bm25.get_scores(terms), dtype=np.float32)[: self.size]

    def matched_terms(self, terms: list[str], doc: int) -> list[str]:
        """Which of the query's ``terms`` (:meth:`query_terms`) document ``doc`` contains, in query order, once
        each."""
        seen: list[str] = []
        for term in terms:
            if term in self._term_sets[doc] and term not in seen:
                seen.append(term)
        return seen
