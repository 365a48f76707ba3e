"""Search benchmark: nDCG@10 and MRR of lexical, dense and hybrid product search on a relevance set in the common
format, with paired significance tests; and the latency of a personalised search on the medium catalogue.

    python -m bench.search_set --scale medium --out-dir .data/search_set
    python -m bench.search --corpus .data/search_set/corpus.jsonl \\
        --queries .data/search_set/queries_validation.tsv --qrels .data/search_set/qrels_validation.txt \\
        --kinds .data/search_set/kinds.tsv --choose-fusion --out bench/results/search_validation.json
    python -m bench.search --corpus .data/search_set/corpus.jsonl \\
        --queries .data/search_set/queries_test.tsv --qrels .data/search_set/qrels_test.txt \\
        --kinds .data/search_set/kinds.tsv --out bench/results/search_test.json
    python -m bench.search --corpus .data/search_set/corpus.jsonl --latency 1000 --out bench/results/search_latency.json

Format: the corpus as JSON lines ``{"id", "title", "text"}``, queries as TSV ``query_id<TAB>query``, graded
judgements in TREC qrels format (``query_id 0 doc_id grade``); any real relevance set in that format runs as is.

Protocol: nDCG@10 with gains ``2^grade - 1`` over the ideal ordering of all judged documents; MRR of the first
document with a grade of at least 1 (0 when none is in the top 100). ``--choose-fusion`` scores every fusion of the
grid (convex weights 0..1, reciprocal rank fusion) on the given queries and names the best by nDCG@10: run it on
validation queries only; the platform's :data:`ml.search.ranker.DEFAULT_FUSION` is that choice, and the test
queries are run once with it. Paired tests between methods: a two-sided sign-flip randomisation test (10,000
draws) and a 95% bootstrap interval of the mean per-query difference. Latency: ``--latency N`` times N searches
(queries drawn from the corpus titles' words, a known customer with profile facts for every other search)
through :meth:`ml.search.ranker.ProductSearch.search`, query encoding, personalisation and filtering included,
in one process after a warm-up.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import docstring_parser, paired_test, write_result

log = logging.getLogger("bench.search")
K = 10
MRR_DEPTH = 100
FUSION_GRID = [("convex", w / 10) for w in range(11)] + [("rrf", k) for k in (10, 30, 60)]


def read_corpus(path: Path) -> pd.DataFrame:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    frame = pd.DataFrame(rows)
    missing = {"id", "title", "text"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: corpus documents need id, title and text (missing {sorted(missing)})")
    return frame


def read_queries(path: Path) -> dict[str, str]:
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            qid, sep, text = line.partition("\t")
            if not sep:
                raise ValueError(f"{path}:{n}: expected query_id<TAB>query")
            out[qid] = text
    return out


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise ValueError(f"{path}:{n}: expected 'query_id 0 doc_id grade'")
        out.setdefault(parts[0], {})[parts[2]] = int(parts[3])
    return out


def ndcg_at(ranked: list[str], judged: dict[str, int], k: int = K) -> float:
    gains = [(2 ** judged.get(doc, 0) - 1) for doc in ranked[:k]]
    dcg = sum(g / np.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted((2**g - 1 for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / np.log2(i + 2) for i, g in enumerate(ideal))
    return float(dcg / idcg) if idcg > 0 else 0.0


def reciprocal_rank(ranked: list[str], judged: dict[str, int]) -> float:
    for i, doc in enumerate(ranked[:MRR_DEPTH]):
        if judged.get(doc, 0) >= 1:
            return 1.0 / (i + 1)
    return 0.0


def build_search(corpus_path: Path, corpus: pd.DataFrame):
    """The search over the corpus, the encoder, and the seconds spent encoding the corpus (None: the embeddings
    were read from the cache beside the corpus, kept per corpus content and encoder weights)."""
    import hashlib

    from ml.search.encoder import load_encoder
    from ml.search.ranker import ProductSearch, product_text

    encoder = load_encoder()
    catalogue = pd.DataFrame(
        {"sku": corpus["id"].astype(str), "title": corpus["title"], "description": corpus["text"]}
    )
    texts = product_text(catalogue)
    key = hashlib.sha256(corpus_path.read_bytes() + encoder.weights_sha256.encode()).hexdigest()[:16]
    cache = corpus_path.with_name(f"{corpus_path.stem}.embeddings-{key}.npy")
    seconds = None
    if cache.exists():
        embeddings = np.load(cache)
        log.info("corpus embeddings read from %s", cache)
    else:
        started = time.perf_counter()
        parts = []
        for start in range(0, len(texts), 1000):
            parts.append(encoder.encode(texts[start : start + 1000]))
            log.info("encoded %d/%d products", min(start + 1000, len(texts)), len(texts))
        seconds = round(time.perf_counter() - started, 1)
        embeddings = np.concatenate(parts) if parts else np.zeros((0, 384), np.float32)
        np.save(cache, embeddings)
    return ProductSearch(catalogue, embeddings, encoder.encode), encoder, seconds


def rankings(
    search, queries: dict[str, str], methods: dict[str, Callable]
) -> dict[str, dict[str, list[str]]]:
    """Top-100 document ids per method and query (signals computed once per query)."""
    out: dict[str, dict[str, list[str]]] = {name: {} for name in methods}
    for n, (qid, text) in enumerate(queries.items(), 1):
        lexical, dense = search.signals(text)
        for name, rank in methods.items():
            out[name][qid] = [search.skus[i] for i in rank(lexical, dense)]
        if n % 50 == 0:
            log.info("ranked %d/%d queries", n, len(queries))
    return out


def method_table(search) -> dict[str, Callable]:
    from ml.search.ranker import Fusion

    def by(scores: np.ndarray) -> np.ndarray:
        return np.argsort(-scores, kind="stable")[:MRR_DEPTH]

    def fused(fusion: Fusion) -> Callable:
        return lambda lexical, dense: search.ranked(lexical, dense, MRR_DEPTH, fusion)

    def lexical_only(lexical: np.ndarray, dense: np.ndarray) -> np.ndarray:
        ranked = by(lexical)
        return ranked[lexical[ranked] > 0]  # a document without any query term is not retrieved by BM25

    return {"lexical": lexical_only, "dense": lambda lex, dense: by(dense), "fused": fused}


def evaluate(args) -> dict[str, Any]:
    from ml.search.ranker import DEFAULT_FUSION, Fusion

    corpus = read_corpus(args.corpus)
    queries, qrels = read_queries(args.queries), read_qrels(args.qrels)
    missing = sorted(set(queries) - set(qrels))
    if missing:
        raise ValueError(f"{len(missing)} queries have no judgements, e.g. {missing[:3]}")
    kinds = dict(read_queries(args.kinds)) if args.kinds else {}
    search, encoder, encode_seconds = build_search(args.corpus, corpus)
    table = method_table(search)
    methods = {"lexical": table["lexical"], "dense": table["dense"]}
    grid = [Fusion(m, lexical_weight=v) if m == "convex" else Fusion(m, rrf_k=int(v)) for m, v in FUSION_GRID]
    fusions = grid if args.choose_fusion else [DEFAULT_FUSION]
    for fusion in fusions:
        methods[f"hybrid {fusion.label()}"] = table["fused"](fusion)
    ranked = rankings(search, queries, methods)
    qids = list(queries)
    per_query = {
        name: {
            "ndcg@10": np.array([ndcg_at(ranked[name][q], qrels[q]) for q in qids]),
            "mrr": np.array([reciprocal_rank(ranked[name][q], qrels[q]) for q in qids]),
        }
        for name in methods
    }
    summary = {
        name: {metric: round(float(values.mean()), 4) for metric, values in scores.items()}
        for name, scores in per_query.items()
    }
    hybrid_names = [name for name in methods if name.startswith("hybrid")]
    best_hybrid = max(
        hybrid_names, key=lambda n: (summary[n]["ndcg@10"], n == f"hybrid {DEFAULT_FUSION.label()}")
    )
    reported = ["lexical", "dense", best_hybrid]
    tests = {}
    for i, a in enumerate(reported):
        for b in reported[i + 1 :]:
            tests[f"{a} vs {b}"] = {
                metric: paired_test(per_query[a][metric], per_query[b][metric], seed=args.seed)
                for metric in ("ndcg@10", "mrr")
            }
    by_kind = {}
    if kinds:
        frame = pd.DataFrame({"kind": [kinds.get(q, "?") for q in qids]})
        for name in reported:
            frame[name] = per_query[name]["ndcg@10"]
        by_kind = {
            kind: {name: round(float(group[name].mean()), 4) for name in reported} | {"queries": len(group)}
            for kind, group in frame.groupby("kind")
        }
    return {
        "queries": len(qids),
        "documents": len(corpus),
        "methods": summary,
        "chosen_fusion" if args.choose_fusion else "fusion": best_hybrid.removeprefix("hybrid "),
        "paired_tests": tests,
        "ndcg@10_by_kind": by_kind,
        "encoder": encoder.describe(),
        "corpus_encode_seconds": encode_seconds,
        "cross_encoder": "not run: no cross-encoder with its weights inside a wheel was found on the package index",
    }


def latency(args) -> dict[str, Any]:
    from ml.search.ranker import Shopper

    corpus = read_corpus(args.corpus)
    search, encoder, _ = build_search(args.corpus, corpus)
    rng = np.random.default_rng(args.seed)
    words = [w for t in corpus["title"].head(2000) for w in str(t).lower().split() if len(w) > 2]
    queries = [" ".join(rng.choice(words, int(rng.integers(1, 4)))) for _ in range(args.latency)]
    shopper = Shopper(
        "benchmark-customer",
        {"kitchen": 0.4, "footwear": 0.3, "books": 0.1},
        "mid",
        frozenset(corpus["id"].sample(min(20, len(corpus)), random_state=args.seed)),
    )
    for q in queries[:20]:  # warm-up: first calls pay for lazy initialisation
        search.search(q, k=10, shopper=shopper)
    seconds = []
    for n, q in enumerate(queries):
        started = time.perf_counter()
        search.search(q, k=10, shopper=shopper if n % 2 else None)
        seconds.append(time.perf_counter() - started)
    ms = np.array(seconds) * 1000
    return {
        "queries": len(queries),
        "documents": len(corpus),
        "latency_ms": {
            "p50": round(float(np.percentile(ms, 50)), 2),
            "p95": round(float(np.percentile(ms, 95)), 2),
            "p99": round(float(np.percentile(ms, 99)), 2),
            "mean": round(float(ms.mean()), 2),
        },
        "torch_threads": _torch_threads(),
        "encoder": encoder.describe(),
    }


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = docstring_parser("python -m bench.search", __doc__)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--queries", type=Path)
    parser.add_argument("--qrels", type=Path)
    parser.add_argument("--kinds", type=Path, help="optional query_id<TAB>kind, for nDCG@10 per kind")
    parser.add_argument(
        "--choose-fusion", action="store_true", help="score the fusion grid (validation only)"
    )
    parser.add_argument("--latency", type=int, default=0, help="time N searches instead of judging queries")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not args.latency and not (args.queries and args.qrels):
        parser.error("--queries and --qrels are required (or --latency N)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    started = time.perf_counter()
    result = latency(args) if args.latency else evaluate(args)
    result = write_result(args.out, result, "bench.search", argv, started)
    log.info("wrote %s", args.out)
    return result


if __name__ == "__main__":
    main()
