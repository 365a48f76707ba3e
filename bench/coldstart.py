"""New products on Amazon Beauty: can a conditional GAN give an unbought product a collaborative vector from its
content, better than simpler ways of ranking new products?

    python -m bench.coldstart --data ../shared/data/amazon_beauty_s3rec/Beauty.txt --seeds 0,1,2 \\
        --out bench/results/coldstart_beauty.json

Protocol (fixed before the runs). For each seed the items are split at random into known (80%), validation-new
(10%) and test-new (10%) products. Every interaction with a new product is removed from what the models learn
from: the collaborative space (PureSVD item factors of the users x known items matrix, 64 dimensions) and the
generators see known products only, as if the new ones had just been listed. A user takes part in a split when
they interacted with at least one of its new products and with at least one known product (their history); the
task is to rank all new products of the split for them (which of today's new products will this customer buy?),
their new products being the targets. Measures: NDCG@10 and Recall@10 with ties ranked pessimistically, averaged
over users, and a paired sign-flip test of the per-user NDCG@10 differences.

Methods:

- ``content_popularity``: not personalised; a new product scores the mean interaction count of the known products
  that share each of its attributes (popularity has nothing else to go on for a product nobody bought);
- ``content_knn``: the platform's content model (:class:`ml.recommend.coldstart.ContentKNN` on the attributes):
  similarity of the new product to the customer's history;
- ``regression``: the generator (:class:`ml.recommend.coldgen.EmbeddingGenerator`) trained with mean squared error
  only, its vector scored as ``history @ known factors @ vector``;
- ``gan``: the same generator with the conditional adversarial loss; its weight chosen on validation from
  ``--adversarial-weights``.

Every choice is made on the validation-new products; the test-new products are scored once per method. The GAN
would serve in the daily recommender's cold-item path only if it beat all three on validation (``serves``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from bench import docstring_parser, paired_test, write_result

log = logging.getLogger("bench.coldstart")
K = 10


def split_items(n_items: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(known, validation-new, test-new) item indices: 80/10/10 by the seed."""
    order = np.random.default_rng(seed).permutation(n_items)
    tenth = n_items // 10
    return np.sort(order[2 * tenth :]), np.sort(order[:tenth]), np.sort(order[tenth : 2 * tenth])


def ranking_metrics(scores: np.ndarray, targets: list[np.ndarray], k: int = K) -> dict[str, np.ndarray]:
    """Per user NDCG@k and Recall@k of ``scores`` ([users, candidates]) against each user's target columns, ties
    ranked pessimistically (a target is placed behind every candidate scored at least as high)."""
    users = np.repeat(np.arange(len(targets)), [len(t) for t in targets])
    cols = np.concatenate(targets) if len(targets) else np.zeros(0, np.int64)
    ranks = np.empty(len(users), dtype=np.int64)
    for start in range(0, len(users), 4096):  # [pairs, candidates] comparisons in blocks
        u, c = users[start : start + 4096], cols[start : start + 4096]
        ranks[start : start + 4096] = (scores[u] >= scores[u, c][:, None]).sum(axis=1) - 1
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    hits = ranks < k
    gain = np.bincount(users[hits], weights=discounts[ranks[hits]], minlength=len(targets))
    n_targets = np.array([len(t) for t in targets])
    ideal = np.cumsum(discounts)[np.minimum(n_targets, k) - 1]
    return {
        "ndcg@10": gain / ideal,
        "recall@10": np.bincount(users[hits], minlength=len(targets)) / n_targets,
    }


def evaluation_users(
    seqs, known: np.ndarray, new: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray], sp.csr_matrix]:
    """(users, their target columns among ``new``, their history over ``known`` as a binary matrix)."""
    matrix = seqs.matrix()
    on_new = matrix[:, new]
    on_known = matrix[:, known]
    users = np.flatnonzero((on_new.getnnz(axis=1) > 0) & (on_known.getnnz(axis=1) > 0))
    targets = [on_new[u].indices for u in users]
    return users, targets, on_known[users]


def content_popularity(
    attributes: sp.csr_matrix, known: np.ndarray, counts: np.ndarray, new: np.ndarray
) -> np.ndarray:
    """Mean interaction count of the known products sharing each attribute, averaged over a new product's
    attributes (0 for a product without attributes)."""
    known_attr = attributes[known]
    per_attr_sum = np.asarray(known_attr.T @ counts[known]).ravel()
    per_attr_n = np.asarray(known_attr.sum(axis=0)).ravel()
    attr_pop = np.divide(per_attr_sum, per_attr_n, out=np.zeros_like(per_attr_sum), where=per_attr_n > 0)
    new_attr = attributes[new]
    n_attr = np.asarray(new_attr.sum(axis=1)).ravel()
    return np.divide(
        np.asarray(new_attr @ attr_pop).ravel(), n_attr, out=np.zeros(len(new)), where=n_attr > 0
    )


def run_seed(seqs, attributes: sp.csr_matrix, seed: int, weights: list[float], epochs: int) -> dict[str, Any]:
    from ml.recommend.coldgen import EmbeddingGenerator, GeneratorConfig, collaborative_space
    from ml.recommend.coldstart import ContentKNN

    n_items = seqs.n_items
    known, val_new, test_new = split_items(n_items, seed)
    train = seqs.without_items(np.concatenate([val_new, test_new]))
    counts = np.bincount(train.items, minlength=n_items).astype(np.float64)
    x_known = train.matrix()[:, known]
    factors = collaborative_space(x_known, dims=64, seed=seed)  # [known, 64]
    content = attributes.toarray().astype(np.float32)
    content_model = ContentKNN(attributes).fit(train)

    generators: dict[str, Any] = {}
    started = time.perf_counter()
    for w in [0.0, *weights]:
        cfg = GeneratorConfig(adversarial_weight=w, epochs=epochs, seed=seed)
        generators[f"w={w:g}"] = EmbeddingGenerator(cfg).fit(content[known], factors)
        log.info(
            "seed %d: generator with adversarial weight %g trained (%.0f s so far)",
            seed,
            w,
            time.perf_counter() - started,
        )

    def scores_for(new: np.ndarray) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
        users, targets, history = evaluation_users(seqs, known, new)
        user_vectors = history @ factors  # [users, 64]
        out = {
            "content_popularity": np.tile(
                content_popularity(attributes, known, counts, new), (len(users), 1)
            ),
            "content_knn": np.asarray(content_model._score(train.subset(users), users))[:, new],
        }
        for name, gen in generators.items():
            out[name] = user_vectors @ gen.generate(content[new]).T
        return {m: ranking_metrics(s, targets) for m, s in out.items()}, targets

    val, val_targets = scores_for(val_new)
    test, test_targets = scores_for(test_new)
    mean = lambda per_user: {k: round(float(v.mean()), 5) for k, v in per_user.items()}  # noqa: E731
    validation = {name: mean(m) for name, m in val.items()}
    gan_names = [f"w={w:g}" for w in weights]
    best_gan = max(gan_names, key=lambda n: validation[n]["ndcg@10"])
    chosen = {
        "content_popularity": "content_popularity",
        "content_knn": "content_knn",
        "regression": "w=0",
        "gan": best_gan,
    }
    beats_all = all(
        validation[best_gan]["ndcg@10"] > validation[chosen[m]]["ndcg@10"]
        for m in ("content_popularity", "content_knn", "regression")
    )
    return {
        "seed": seed,
        "items": {"known": len(known), "validation_new": len(val_new), "test_new": len(test_new)},
        "users": {"validation": len(val_targets), "test": len(test_targets)},
        "validation": validation,
        "chosen_gan_weight": best_gan,
        "gan_beats_all_on_validation": beats_all,
        "test": {method: mean(test[name]) for method, name in chosen.items()},
        "test_paired_gan_vs": {
            method: paired_test(test[best_gan]["ndcg@10"], test[chosen[method]]["ndcg@10"], seed=seed)
            for method in ("content_popularity", "content_knn", "regression")
        },
        "generator_train_seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from ml.recommend.coldstart import attribute_matrix
    from ml.recommend.data import read_sequence_file

    parser = docstring_parser("python -m bench.coldstart", __doc__)
    parser.add_argument(
        "--data", type=Path, required=True, help="S3-Rec format: 'user item item ...' per line"
    )
    parser.add_argument("--attributes", type=Path, help="default: <stem>_item2attributes.json beside --data")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--adversarial-weights", default="0.01,0.1,1", help="the GAN's grid (validation)")
    parser.add_argument("--epochs", type=int, default=50, help="training epochs of every generator")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    attributes_path = args.attributes or args.data.with_name(f"{args.data.stem}_item2attributes.json")
    seqs = read_sequence_file(args.data)
    attributes = attribute_matrix(json.loads(attributes_path.read_text()), seqs.item_ids)
    weights = [float(w) for w in args.adversarial_weights.split(",")]
    started = time.perf_counter()
    runs = [run_seed(seqs, attributes, int(s), weights, args.epochs) for s in args.seeds.split(",")]
    methods = list(runs[0]["test"])
    summary = {
        m: {
            metric: {
                "mean": round(float(np.mean([r["test"][m][metric] for r in runs])), 5),
                "std": round(float(np.std([r["test"][m][metric] for r in runs], ddof=1)), 5)
                if len(runs) > 1
                else 0.0,
            }
            for metric in ("ndcg@10", "recall@10")
        }
        for m in methods
    }
    result = {
        "data": str(args.data),
        "test_summary": summary,
        "gan_serves": all(r["gan_beats_all_on_validation"] for r in runs),
        "runs": runs,
    }
    result = write_result(args.out, result, "bench.coldstart", argv, started)
    log.info("wrote %s", args.out)
    return result


if __name__ == "__main__":
    main()
