"""Vectors for new products from their content: the generators learn content -> collaborative vector on known
products; the cold-start benchmark's split, measures and baselines."""

from __future__ import annotations

import json

import numpy as np
import scipy.sparse as sp

from bench.coldstart import content_popularity, main, ranking_metrics, split_items
from ml.recommend.coldgen import EmbeddingGenerator, GeneratorConfig, collaborative_space


def _clustered(n_users=300, n_items=120, clusters=4, seed=0):
    """Users buy within one taste cluster; an item's attribute names its cluster (and a second, noise one)."""
    rng = np.random.default_rng(seed)
    item_cluster = np.arange(n_items) % clusters
    lines, rows = [], []
    for u in range(n_users):
        c = u % clusters
        items = rng.choice(np.flatnonzero(item_cluster == c), 6, replace=False)
        lines.append(f"{u + 1} " + " ".join(str(i + 1) for i in items))
        rows.extend((u, i) for i in items)
    attributes = {str(i + 1): [int(item_cluster[i]), 100 + int(rng.integers(0, 5))] for i in range(n_items)}
    matrix = sp.csr_matrix((np.ones(len(rows)), tuple(zip(*rows, strict=True))), shape=(n_users, n_items))
    return lines, attributes, matrix, item_cluster


def test_a_generated_vector_lands_among_its_clusters_known_vectors():
    _, attributes, matrix, cluster = _clustered()
    known, new = np.arange(100), np.arange(100, 120)
    factors = collaborative_space(matrix[:, known].tocsr(), dims=8)
    content = np.zeros((120, 110), dtype=np.float32)
    for i in range(120):
        content[i, attributes[str(i + 1)]] = 1.0
    for weight in (0.0, 0.1):
        gen = EmbeddingGenerator(GeneratorConfig(adversarial_weight=weight, epochs=150, seed=1, hidden=64))
        vectors = gen.fit(content[known], factors).generate(content[new])
        assert vectors.shape == (20, 8) and gen.history_[-1] < gen.history_[0]
        # the nearest known vector of each generated one belongs to the same taste cluster
        nearest = np.argmax(
            (vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
            @ (factors / np.linalg.norm(factors, axis=1, keepdims=True)).T,
            axis=1,
        )
        assert (cluster[known][nearest] == cluster[new]).mean() >= 0.9, weight


def test_split_metrics_and_content_popularity_by_hand():
    known, val, test = split_items(100, seed=3)
    assert len(val) == len(test) == 10 and len(known) == 80
    assert len(set(known) | set(val) | set(test)) == 100 and split_items(100, 3)[1].tolist() == val.tolist()
    scores = np.array([[0.9, 0.5, 0.5, 0.1], [0.1, 0.2, 0.3, 0.4]])
    m = ranking_metrics(scores, [np.array([1]), np.array([3, 0])], k=2)
    assert m["ndcg@10"][0] == 0.0  # the target ties with another at 0.5: ranked behind it, third
    assert np.isclose(m["ndcg@10"][1], 1 / (1 + 1 / np.log2(3))) and m["recall@10"].tolist() == [0.0, 0.5]
    attributes = sp.csr_matrix(np.array([[1, 0], [1, 1], [0, 1], [1, 0], [0, 0]], dtype=np.float32))
    counts = np.array([4.0, 2.0, 6.0, 0.0, 0.0])
    # attribute 0: known items 0, 1 -> mean 3; attribute 1: known items 1, 2 -> mean 4
    pop = content_popularity(attributes, np.array([0, 1, 2]), counts, np.array([3, 4]))
    assert pop.tolist() == [3.0, 0.0]


def test_the_benchmark_compares_the_four_methods_and_says_whether_the_gan_serves(tmp_path):
    lines, attributes, _, _ = _clustered(n_users=400, n_items=200)
    (tmp_path / "Toy.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "Toy_item2attributes.json").write_text(json.dumps(attributes))
    out = main(
        ["--data", str(tmp_path / "Toy.txt"), "--seeds", "0,1", "--epochs", "40", "--adversarial-weights", "0.1",
         "--out", str(tmp_path / "r.json")]
    )  # fmt: skip
    assert set(out["test_summary"]) == {"content_popularity", "content_knn", "regression", "gan"}
    assert len(out["runs"]) == 2 and isinstance(out["gan_serves"], bool)
    run = out["runs"][0]
    assert run["items"] == {"known": 160, "validation_new": 20, "test_new": 20} and run["users"]["test"] > 100
    # the taste clusters are in the attributes: every content-aware method beats unpersonalised popularity
    for method in ("content_knn", "regression", "gan"):
        assert (
            out["test_summary"][method]["ndcg@10"]["mean"]
            > out["test_summary"]["content_popularity"]["ndcg@10"]["mean"]
        )
    assert json.loads((tmp_path / "r.json").read_text())["gan_serves"] == out["gan_serves"]
