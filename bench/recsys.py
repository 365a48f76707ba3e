"""Paper-protocol recommendation benchmark (docs/PROTOCOLS.md): leave-one-out, full ranking, pessimistic ties.

    python -m bench.recsys --data ../shared/data/amazon_beauty_s3rec/Beauty.txt --out beauty.json

For every model: hyperparameters are chosen on the validation item (second-to-last) with the model fitted on the
items before it; the chosen configuration is then refitted on everything but the test item and scored on the test
item of every user, with the user's earlier items excluded from the ranking. Nothing is tuned on test. The
Transformer's number of epochs and learning-rate decays come from early stopping on validation NDCG@10; it is then
refitted from scratch on all but the test item, replaying them (early stopping keeps room for the refit in
``--time-budget``; the output says when the budget, not patience, ended it). Its blend with the transition model
gets its weight from validation too.

With ``--attributes`` (default: ``<stem>_item2attributes.json`` next to the data, when present) the Transformer
adds each item's attribute embeddings to its own (``SASRecConfig.attributes``), and a cold-start experiment hides 10 % of the items from the collaborative model and measures content, collaborative and blended
scores on users whose target is such a new item.

``--throughput`` instead times top-K serving (default: top-100 for 50,000 synthetic users over 10,000 items) for
EASE and SASRec in one batched pass and reports users per second, wall and CPU:

    python -m bench.recsys --throughput --out bench/results/recsys_throughput.json --threads 1

Progress goes to stderr; the JSON goes to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import itertools
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ALL_MODELS = ("popularity", "itemknn", "ease", "transition", "sasrec", "sasrec+transition")
KS = (5, 10, 20)


def log(msg: str) -> None:
    print(f"[recsys {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine_description(threads: int) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}; {os.cpu_count()} logical CPUs; {threads} torch thread(s); {platform.system()} {platform.release()}"


def attributes_file(data: Path, explicit: Path | None = None) -> Path:
    """The item attribute JSON of a data file: ``explicit``, else ``<stem>_item2attributes.json`` beside it."""
    return explicit or data.with_name(f"{data.stem}_item2attributes.json")


def item_attributes(path: Path, item_ids: Any) -> Any:
    """The multi-hot attribute matrix aligned with ``item_ids`` from ``path`` (None when there is no such file)."""
    from ml.recommend.coldstart import attribute_matrix

    return attribute_matrix(json.loads(path.read_text()), item_ids) if path.exists() else None


def add_file_arguments(p: argparse.ArgumentParser) -> None:
    """``--data`` (repeatable), ``--out``, ``--threads``, ``--seed``, ``--time-budget``: the options of the scripts
    that train the Transformer on several files (bench.recsys_epochs, bench.recsys_search)."""
    p.add_argument(
        "--data", type=Path, action="append", required=True, help="Beauty.txt-format file (repeat)"
    )
    p.add_argument("--out", type=Path, required=True, help="where to write the JSON results")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--time-budget", type=float, default=900.0, help="the Transformer's whole budget (default 900 s)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.recsys",
        description="Leave-one-out, full-ranking benchmark (pessimistic ties) on a Beauty.txt-format file.",
    )
    p.add_argument("--data", type=Path, help="file with one line per user: 'user item item ...'")
    p.add_argument("--out", required=True, type=Path, help="where to write the JSON results")
    p.add_argument(
        "--throughput",
        action="store_true",
        help="instead of the accuracy benchmark: time top-K scoring of --users synthetic users over --items "
        "items in one batched pass for EASE and SASRec (users/second); --data is not needed",
    )
    p.add_argument("--users", type=int, default=50_000, help="throughput: number of users (default 50000)")
    p.add_argument("--items", type=int, default=10_000, help="throughput: catalogue size (default 10000)")
    p.add_argument("--k", type=int, default=100, help="throughput: list length (default 100)")
    p.add_argument("--batch-size", type=int, default=4096, help="throughput: users per scoring batch")
    p.add_argument(
        "--models",
        default=",".join(ALL_MODELS),
        help=f"comma-separated subset of {','.join(ALL_MODELS)} (default: all)",
    )
    p.add_argument(
        "--time-budget",
        type=float,
        default=900.0,
        help="seconds of Transformer training in total (early stopping plus any refit; default 900)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch/BLAS threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--max-epochs", type=int, default=200, help="Transformer epoch cap (early stopping decides)"
    )
    p.add_argument("--patience", type=int, default=5, help="epochs without validation gain before stopping")
    p.add_argument(
        "--attributes",
        type=Path,
        default=None,
        help="item attribute JSON {item: [attr, ...]} for the Transformer's item inputs and the cold-start experiment "
        "(default: <stem>_item2attributes.json beside --data when it exists)",
    )
    p.add_argument(
        "--sasrec-refit",
        choices=("auto", "always", "never"),
        default="auto",
        help="refit the Transformer from scratch on all but the test item for the early-stopped epochs: auto "
        "(default: early stopping keeps room for the refit in the budget, and the output says when that cut "
        "it short), always (half the budget each), or never",
    )
    p.add_argument(
        "--sasrec-config",
        type=json.loads,
        default={},
        help="JSON overrides of SASRecConfig, e.g. '{\"hidden\": 128}' (defaults are the documented ones)",
    )
    p.add_argument("--no-cold-start", action="store_true", help="skip the cold-start experiment")
    p.add_argument(
        "--fast",
        action="store_true",
        help="small grids and a tiny Transformer (smoke tests; numbers not comparable)",
    )
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not args.throughput and args.data is None:
        p.error("--data is required (except with --throughput)")
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(args.models) - set(ALL_MODELS))
    if unknown:
        p.error(f"unknown models: {', '.join(unknown)}")
    return args


def _round(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 5) for k, v in metrics.items()}


class Runner:
    """Holds the split and evaluates a model on validation or test in batches."""

    def __init__(self, loo: Any, threads: int | None):
        self.loo = loo
        self.threads = threads

    def validate(self, model: Any, ks: tuple[int, ...] = (10,)) -> dict[str, float]:
        from ml.recommend.metrics import evaluate

        hist = self.loo.val_train
        return evaluate(lambda b: model._score(hist.subset(b), b), hist, self.loo.val_target, ks=ks)

    def test(self, model: Any) -> tuple[dict[str, float], float]:
        from ml.recommend.metrics import evaluate

        hist = self.loo.test_train
        t0 = time.perf_counter()
        metrics = evaluate(lambda b: model._score(hist.subset(b), b), hist, self.loo.test_target, ks=KS)
        return metrics, time.perf_counter() - t0


def tune(
    runner: Runner, name: str, make: Callable[..., Any], grid: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Fit every configuration on the validation view and keep the best by validation NDCG@10."""
    results = []
    for params in grid:
        t0 = time.perf_counter()
        model = make(**params).fit(runner.loo.val_train)
        val = runner.validate(model)["NDCG@10"]
        results.append(
            {"params": params, "val_NDCG@10": round(val, 5), "seconds": round(time.perf_counter() - t0, 2)}
        )
        log(f"{name} {params} val NDCG@10 {val:.4f}")
    best = max(results, key=lambda r: r["val_NDCG@10"])
    return best["params"], results


def run_baseline(
    runner: Runner, name: str, make: Callable[..., Any], grid: list[dict[str, Any]]
) -> dict[str, Any]:
    t0 = time.perf_counter()
    best, trials = tune(runner, name, make, grid)
    tune_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = make(**best).fit(runner.loo.test_train)
    train_seconds = time.perf_counter() - t0
    metrics, score_seconds = runner.test(model)
    log(f"{name} test {_round(metrics)} (train {train_seconds:.1f}s, score {score_seconds:.1f}s)")
    return {
        **_round(metrics),
        "train_seconds": round(train_seconds, 2),
        "score_seconds": round(score_seconds, 2),
        "tune_seconds": round(tune_seconds, 2),
        "params": model.params(),
        "validation": trials,
    }


def baseline_grids(fast: bool) -> dict[str, tuple[Callable[..., Any], list[dict[str, Any]]]]:
    from ml.recommend.baselines import EASE, ItemKNN, Popularity
    from ml.recommend.transition import Transition

    knn = [{"shrink": s, "neighbours": n} for s, n in itertools.product((0, 10, 50, 200), (None, 100))]
    ease = [{"lam": lam} for lam in ((10.0, 100.0) if fast else (30.0, 100.0, 300.0))]
    trans = [
        {"n_last": n, "decay": 0.4, "backward": b, "alpha": 1.0}
        for n, b in itertools.product((1, 2, 3, 4), (0.0, 0.15, 0.3, 0.5))
    ]
    if fast:
        knn, trans = knn[:2], trans[:3]
    return {
        "popularity": (Popularity, [{}]),
        "itemknn": (ItemKNN, knn),
        "ease": (EASE, ease),
        "transition": (Transition, trans),
    }


def refine_transition(runner: Runner, best: dict[str, Any], fast: bool) -> list[dict[str, Any]]:
    """Second stage of the transition grid: decay and smoothing around the best order/backward setting."""
    if fast:
        return [best]
    return [
        best | {"decay": d, "alpha": a} for d, a in itertools.product((0.2, 0.4, 0.6, 0.8), (0.3, 1.0, 3.0))
    ]


def run_sasrec(
    runner: Runner,
    args: argparse.Namespace,
    need_blend: bool,
    trans_params: dict[str, Any],
    attributes: Any = None,
) -> dict[str, dict[str, Any]]:
    """Early-stopped Transformer, its refit, and (optionally) its validation-weighted blend with transitions."""
    from ml.recommend.blend import Blend, blend_grid
    from ml.recommend.data import validation_users
    from ml.recommend.sasrec import SASRecConfig, fit_with_refit
    from ml.recommend.transition import Transition

    loo = runner.loo
    cfg = SASRecConfig(
        seed=args.seed, threads=args.threads, max_epochs=args.max_epochs, patience=args.patience, verbose=True
    )
    if args.fast:
        cfg = SASRecConfig(
            seed=args.seed,
            threads=args.threads,
            hidden=16,
            max_len=20,
            max_epochs=3,
            patience=2,
            emb_dropout=0.1,
            dropout=0.1,
            lr=3e-3,
            verbose=True,
        )
    cfg = dataclasses.replace(cfg, **args.sasrec_config, time_budget=args.time_budget)
    # Early stopping on the validation items (every user, a seeded sample above MAX_VALIDATION_USERS) with the
    # model trained on what precedes them, then the refit on all but the test item: the platform's daily
    # training does the same (ml.recommend.sasrec.fit_with_refit)
    val_users = validation_users(loo.test_train.lengths, args.seed)
    histories, targets = loo.val_train.subset(val_users), loo.val_target[val_users]
    log(f"sasrec: early stopping on {len(val_users)} users, refit {args.sasrec_refit}, config {cfg}")
    fitted = fit_with_refit(
        cfg,
        loo.val_train,
        (histories, targets),
        loo.test_train,
        refit=args.sasrec_refit,
        item_attributes=attributes,
    )
    val_model, model = fitted.early_stopped, fitted.model
    phase1, phase2 = fitted.seconds_early_stopping, fitted.seconds_refit
    best_epoch = val_model.best_epoch_
    history = val_model.config.history
    epoch_seconds = float(np.mean([h["seconds"] for h in history]))
    log(f"sasrec best epoch {best_epoch}, val NDCG@10 {val_model.best_val_ndcg_:.4f}, {phase1:.0f}s")
    log(f"sasrec: {fitted.note}")

    weight = None
    blend_trials: list[dict[str, Any]] = []
    if need_blend:
        trans_val = Transition(**trans_params).fit(loo.val_train)
        grid = [round(float(w), 2) for w in np.arange(0.0, 0.81, 0.05)]
        res = blend_grid(
            [
                lambda b: val_model._score(histories.subset(b), b),
                lambda b: trans_val._score(histories.subset(b), b),
            ],
            ["logprob", "prob"],
            histories,
            targets,
            [(1 - w, w) for w in grid],
            ks=(10,),
        )
        blend_trials = [
            {"transition_weight": w, "val_NDCG@10": round(r["NDCG@10"], 5)}
            for w, r in zip(grid, res, strict=True)
        ]
        weight = max(blend_trials, key=lambda r: r["val_NDCG@10"])["transition_weight"]
        log(f"blend weights on validation: {blend_trials}; chosen transition weight {weight}")
    metrics, score_seconds = runner.test(model)
    log(f"sasrec test {_round(metrics)}")
    params = model.params() | {
        "best_epoch": best_epoch,
        "refit": fitted.refit,
        "refit_epochs": len(model.config.history) if fitted.refit else 0,
        "refit_note": fitted.note,
        "early_stopping_ended_by_budget": bool(val_model.stopped_by_budget_),
        "validation_users": len(val_users),
        "train_seconds_per_epoch": round(epoch_seconds, 2),
        "val_NDCG@10": round(val_model.best_val_ndcg_, 5),
    }
    out = {
        "sasrec": {
            **_round(metrics),
            "train_seconds": round(phase1 + phase2, 2),
            "score_seconds": round(score_seconds, 2),
            "train_seconds_early_stopping": round(phase1, 2),
            "train_seconds_refit": round(phase2, 2),
            "params": params,
            "epochs": [{k: round(v, 5) for k, v in h.items()} for h in history],
        }
    }
    if need_blend:
        t0 = time.perf_counter()
        trans = Transition(**trans_params).fit(loo.test_train)
        blend = Blend([model, trans], [1 - weight, weight], prefit=True).fit(loo.test_train)
        fit_trans = time.perf_counter() - t0
        metrics, score_seconds = runner.test(blend)
        log(f"sasrec+transition test {_round(metrics)}")
        out["sasrec+transition"] = {
            **_round(metrics),
            "train_seconds": round(phase1 + phase2 + fit_trans, 2),
            "score_seconds": round(score_seconds, 2),
            "params": {"transition_weight": weight, "sasrec": params, "transition": trans_params},
            "validation": blend_trials,
        }
    return out


COLD_SLOT_SPACINGS: tuple[int | None, ...] = (None, 20, 10, 5, 3, 2)
"""Candidate spacings of the slots reserved for new items (None: no slot, the blend ranks everything)."""


def choose_routing(
    val_ranks: np.ndarray, cold_users: np.ndarray, grid: list[float], spacings: tuple[int | None, ...]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The content weight and slot spacing with the best validation NDCG@10 among those whose new-item slice is
    at least the content model's alone (weight 1, no slot); the best new-item slice when none is. Validation only."""
    from ml.recommend.metrics import metrics_from_ranks

    def ndcg(r: np.ndarray) -> float:
        return metrics_from_ranks(r, (10,))["NDCG@10"]

    trials = [
        {
            "content_weight": w,
            "every": every,
            "val_NDCG@10": round(ndcg(val_ranks[g, s]), 5),
            "val_cold_NDCG@10": round(ndcg(val_ranks[g, s][cold_users]), 5),
        }
        for g, w in enumerate(grid)
        for s, every in enumerate(spacings)
    ]
    floor = next(t for t in trials if t["content_weight"] == 1.0 and t["every"] is None)["val_cold_NDCG@10"]
    eligible = [t for t in trials if t["val_cold_NDCG@10"] >= floor]
    if eligible:
        best = max(eligible, key=lambda t: (t["val_NDCG@10"], t["val_cold_NDCG@10"]))
    else:
        best = max(trials, key=lambda t: (t["val_cold_NDCG@10"], t["val_NDCG@10"]))
    return {**best, "val_cold_floor": floor, "floor_met": bool(eligible)}, trials


def run_cold_start(runner: Runner, feats: Any, knn_params: dict[str, Any], seed: int) -> dict[str, Any]:
    """Items unseen by the collaborative model: content vs ItemKNN vs their validation-weighted blend, and the blend
    with slots reserved for new items (routed through the content scores).

    10 % of the items (seeded) are removed from every training sequence, as if they had just been listed. The blend
    weight is chosen on validation (targets of all users, so it trades cold against warm targets honestly). The
    routed lists (:func:`ml.recommend.blend.cold_slot_ranks`) fill every ``every``-th slot with the next new item by
    content and the rest from the blend; weight and spacing are chosen on validation as the best overall NDCG@10
    whose new-item slice is at least the content model's (:func:`choose_routing`). Test metrics are reported for
    all users and for the users whose test item is one of the new items. ``feats``: the multi-hot item attribute
    matrix (:func:`item_attributes`).
    """
    from ml.recommend.baselines import ItemKNN
    from ml.recommend.blend import cold_slot_ranks
    from ml.recommend.coldstart import ContentKNN
    from ml.recommend.metrics import metrics_from_ranks

    loo = runner.loo
    rng = np.random.default_rng(seed)
    n_items = loo.test_train.n_items
    cold = np.sort(rng.choice(n_items, size=max(1, n_items // 10), replace=False))
    is_cold = np.zeros(n_items, dtype=bool)
    is_cold[cold] = True
    grid = [round(float(w), 2) for w in np.arange(0.0, 1.01, 0.1)]
    results: dict[str, Any] = {
        "cold_items": len(cold),
        "attribute_dims": int(feats.shape[1]),
        "items_with_attributes": int((feats.getnnz(axis=1) > 0).sum()),
    }

    def scored(train: Any, targets: np.ndarray, weights: list[float], spacings) -> np.ndarray:
        cf = ItemKNN(**knn_params).fit(train.without_items(cold))
        content = ContentKNN(feats).fit(train)
        # histories keep the new items: the customer did buy them, only the CF model has no data on them
        fns = [lambda b: cf._score(train.subset(b), b), lambda b: content._score(train.subset(b), b)]
        return cold_slot_ranks(
            fns, ["score", "score"], fns[1], is_cold, train, targets, [(1 - w, w) for w in weights], spacings
        )

    val_ranks = scored(loo.val_train, loo.val_target, grid, COLD_SLOT_SPACINGS)
    val_cold = is_cold[loo.val_target]
    val_ndcg = [metrics_from_ranks(r, (10,))["NDCG@10"] for r in val_ranks[:, 0]]
    best_w = grid[int(np.argmax(val_ndcg))]
    routing, trials = choose_routing(val_ranks, val_cold, grid, COLD_SLOT_SPACINGS)
    results["validation"] = [
        {"content_weight": w, "val_NDCG@10": round(v, 5)} for w, v in zip(grid, val_ndcg, strict=True)
    ]
    results["routing_validation"] = trials
    results["routing_choice"] = routing
    chosen = {
        "itemknn": (0.0, None),
        "content": (1.0, None),
        "blend": (best_w, None),
        "routed": (routing["content_weight"], routing["every"]),
    }
    weights = sorted({w for w, _ in chosen.values()})
    spacings = tuple(dict.fromkeys(e for _, e in chosen.values()))
    test_ranks = scored(loo.test_train, loo.test_target, weights, spacings)
    cold_users = is_cold[loo.test_target]
    for name, (w, every) in chosen.items():
        r = test_ranks[weights.index(w), spacings.index(every)]
        results[name] = {
            "weights": {"itemknn": round(1 - w, 2), "content": w},
            "cold_slot_every": every,
            "all_users": _round(metrics_from_ranks(r, KS)),
            "cold_item_users": _round(metrics_from_ranks(r[cold_users], KS)),
            "warm_item_users": _round(metrics_from_ranks(r[~cold_users], KS)),
        }
    results["cold_item_users"] = int(cold_users.sum())
    log(
        f"cold start (content weight {best_w}; routed {routing}): "
        + json.dumps({k: results[k] for k in chosen})
    )
    return results


def synthetic_sequences(n_users: int, n_items: int, seed: int) -> Any:
    """Users with 5-30 items drawn from 50 taste clusters with Zipf popularity (a realistic sparsity pattern)."""
    from ml.recommend.data import Sequences

    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 31, n_users)
    cluster_of_item = np.arange(n_items) % 50  # every cluster has items
    rng.shuffle(cluster_of_item)
    by_cluster = [np.flatnonzero(cluster_of_item == c) for c in range(50)]
    user_cluster = np.repeat(rng.integers(0, 50, n_users), lengths)
    own = rng.random(len(user_cluster)) < 0.8
    items = rng.zipf(1.3, len(user_cluster)) % n_items
    for c in range(50):  # one loop over clusters, not users
        rows = np.flatnonzero(own & (user_cluster == c))
        members = by_cluster[c]
        items[rows] = members[rng.zipf(1.5, len(rows)) % len(members)]
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    return Sequences(indptr, items.astype(np.int64), n_items, np.arange(n_users), np.arange(n_items))


def run_throughput(args: argparse.Namespace) -> dict[str, Any]:
    """Top-K for every user in one batched pass (:func:`ml.recommend.base.batched_topk`), EASE and SASRec."""
    import torch

    from ml.recommend.base import batched_topk
    from ml.recommend.baselines import EASE
    from ml.recommend.sasrec import SASRec

    threads = torch.get_num_threads()
    seqs = synthetic_sequences(args.users, args.items, args.seed)
    log(f"throughput: {len(seqs)} users, {seqs.n_items} items, {len(seqs.items)} interactions, top-{args.k}")
    results: dict[str, Any] = {}
    t0 = time.perf_counter()
    ease = EASE(lam=100.0).fit(seqs)
    fit_ease = time.perf_counter() - t0
    log(f"EASE fitted in {fit_ease:.1f}s")
    # SASRec's scoring cost does not depend on what its weights learned: one epoch on 5,000 users (same
    # catalogue) gives real weights without spending the time of a full training run
    t0 = time.perf_counter()
    sample = seqs.subset(np.arange(min(5_000, len(seqs))))
    sasrec = SASRec(seed=args.seed, threads=args.threads, max_len=50, hidden=64).fit(sample, epochs=1)
    fit_sasrec = time.perf_counter() - t0
    log(f"SASRec (1 epoch on {len(sample)} users) fitted in {fit_sasrec:.1f}s")
    for name, model, fit_seconds in (("ease", ease, fit_ease), ("sasrec", sasrec, fit_sasrec)):
        batched_topk(model, seqs.subset(np.arange(min(256, len(seqs)))), args.k, args.batch_size)  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        items, _ = batched_topk(model, seqs, args.k, args.batch_size)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        seen = np.zeros(len(seqs), dtype=bool)
        # check on a sample that the lists are full and never contain history items
        sample = np.arange(0, len(seqs), max(1, len(seqs) // 200))
        for u in sample:
            seen[u] = bool(np.isin(items[u], seqs[u]).any())
        results[name] = {
            "users": len(seqs),
            "items": seqs.n_items,
            "k": args.k,
            "batch_size": args.batch_size,
            "seconds": round(seconds, 3),
            "users_per_second": round(len(seqs) / seconds, 1),
            # CPU seconds of this process (all threads): on a shared machine wall time also counts waiting
            "cpu_seconds": round(cpu_seconds, 3),
            "users_per_cpu_second": round(len(seqs) / cpu_seconds, 1),
            "load_average_1min": round(os.getloadavg()[0], 2),
            "fit_seconds": round(fit_seconds, 2),
            "history_items_in_lists": int(seen.sum()),
        }
        log(
            f"{name}: top-{args.k} for {len(seqs)} users in {seconds:.2f}s = {len(seqs) / seconds:,.0f} users/s"
        )
    return {
        "benchmark": "recsys_throughput",
        "machine": machine_description(threads),
        "threads": threads,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.recsys " + " ".join(args.argv),
        "models": results,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    if args.throughput:
        if args.threads:
            torch.set_num_threads(args.threads)
        result = run_throughput(args)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        log(f"wrote {args.out}")
        return result

    from ml.recommend.data import LeaveOneOut, read_sequence_file

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    started = time.perf_counter()
    seqs = read_sequence_file(args.data)
    loo = LeaveOneOut.split(seqs)
    log(
        f"{args.data.name}: {len(seqs)} users, {seqs.n_items} items, {len(seqs.items)} interactions; "
        f"{len(loo.test_target)} evaluated users; threads {threads}"
    )
    runner = Runner(loo, args.threads)
    grids = baseline_grids(args.fast)
    models: dict[str, Any] = {}
    for name in ("popularity", "itemknn", "ease"):
        if name in args.models:
            models[name] = run_baseline(runner, name, *grids[name])
    trans_params: dict[str, Any] | None = None
    if {"transition", "sasrec+transition"} & set(args.models):
        make, grid = grids["transition"]
        best, trials = tune(runner, "transition", make, grid)
        best, trials2 = tune(runner, "transition", make, refine_transition(runner, best, args.fast))
        trans_params = best
        if "transition" in args.models:
            t0 = time.perf_counter()
            model = make(**best).fit(loo.test_train)
            train_seconds = time.perf_counter() - t0
            metrics, score_seconds = runner.test(model)
            log(f"transition test {_round(metrics)}")
            models["transition"] = {
                **_round(metrics),
                "train_seconds": round(train_seconds, 2),
                "score_seconds": round(score_seconds, 2),
                "params": model.params(),
                "validation": trials + trials2,
            }
    wants_sasrec = bool({"sasrec", "sasrec+transition"} & set(args.models))
    attributes = (
        item_attributes(attributes_file(args.data, args.attributes), loo.test_train.item_ids)
        if wants_sasrec or not args.no_cold_start
        else None
    )
    if wants_sasrec:
        out = run_sasrec(
            runner,
            args,
            "sasrec+transition" in args.models,
            trans_params or {},
            attributes,
        )
        for name, res in out.items():
            if name in args.models:
                models[name] = res

    result: dict[str, Any] = {
        "dataset": args.data.name,
        "protocol": "loo_full_ranking",
        "ties": "pessimistic",
        "machine": machine_description(threads),
        "threads": threads,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "users": len(loo.test_target),
        "items": seqs.n_items,
        "interactions": len(seqs.items),
        "command": "python -m bench.recsys " + " ".join(sys.argv[1:] if argv is None else argv),
        "models": models,
    }
    if not args.no_cold_start and attributes is not None:
        knn = models.get("itemknn", {}).get("params", {"shrink": 50.0, "neighbours": None})
        result["cold_start"] = run_cold_start(runner, attributes, knn, args.seed)
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {args.out} in {result['total_seconds']}s")
    return result


if __name__ == "__main__":
    main()
