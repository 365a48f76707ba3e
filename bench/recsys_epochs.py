"""Transformer training throughput against data size: seconds per epoch, epochs per minute, and what a full
early-stopped run costs in the 15-minute budget, before and after the throughput work (issue 23, point 3).

    python -m bench.recsys_epochs --data ../shared/data/amazon_beauty_s3rec/Beauty.txt \\
        --data ../shared/data/amazon_toys_s3rec/Toys_and_Games.txt --threads 2 --out recsys_epochs.json

Data sizes: half of the first file's users (seeded), each file alone, and all files together with their
catalogues kept apart (Beauty + Toys is about twice Beauty: 1.8x the users and interactions, 2x the items). On each,
with the benchmark's configuration (``SASRecConfig`` defaults), both ways are timed in the same run:

* **before**: the catalogue cross-entropy through autograd (``fused_loss=False``) and early stopping validated on
  every user in batches of 2,048;
* **after**: the hand-written cross-entropy (``fused_loss=True``, :class:`ml.recommend.sasrec._CatalogueCrossEntropy`)
  and validation on every user up to ``MAX_VALIDATION_USERS`` (a seeded sample above it) in batches of
  ``EVALUATION_BATCH``.

Each way trains ``--epochs`` epochs on all but the validation items (no early stopping; seconds per epoch are the
mean over them) and runs one validation pass. A full run is then estimated for a typical schedule (``--best-epoch``
epochs to the best, plus the patience, then the refit of ``--best-epoch`` epochs) and compared with the budget.
Progress goes to stderr; the JSON (with the command, machine, date and commit) to ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import write_result
from bench.recsys import add_file_arguments, log, machine_description


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.recsys_epochs",
        description="Seconds per Transformer epoch against data size, before and after the throughput work.",
    )
    add_file_arguments(p)
    p.add_argument("--epochs", type=int, default=2, help="epochs timed per data set and way (default 2)")
    p.add_argument(
        "--best-epoch",
        type=int,
        default=25,
        help="epochs to the best validation score assumed for the full-run estimate (default 25: the middle of "
        "the 19-37 measured on Beauty and Toys)",
    )
    return p.parse_args(argv)


def combined(parts: list[Any]) -> Any:
    """Users of every part in one data set, each part's items kept apart (item indices offset)."""
    from ml.recommend.data import Sequences

    offsets = np.cumsum([0] + [p.n_items for p in parts[:-1]])
    lengths = np.concatenate([p.lengths for p in parts])
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    items = np.concatenate([p.items + off for p, off in zip(parts, offsets, strict=True)])
    users = np.concatenate([[f"{k}:{u}" for u in p.user_ids] for k, p in enumerate(parts)])
    item_ids = np.concatenate([[f"{k}:{i}" for i in p.item_ids] for k, p in enumerate(parts)])
    return Sequences(indptr, items, int(sum(p.n_items for p in parts)), users, item_ids)


def data_sets(files: list[Path], seed: int) -> list[tuple[str, Any]]:
    from ml.recommend.data import read_sequence_file

    parts = [read_sequence_file(f) for f in files]
    first = parts[0]
    half = np.sort(np.random.default_rng(seed).choice(len(first), len(first) // 2, replace=False))
    out = [(f"{files[0].stem} (half the users)", first.subset(half))]
    out += [(f.stem, p) for f, p in zip(files, parts, strict=True)]
    if len(parts) > 1:
        out.append((" + ".join(f.stem for f in files), combined(parts)))
    return out


def time_way(loo: Any, after: bool, args: argparse.Namespace) -> dict[str, Any]:
    from ml.recommend.data import validation_users
    from ml.recommend.metrics import EVALUATION_BATCH, evaluate
    from ml.recommend.sasrec import SASRec, SASRecConfig

    cfg = SASRecConfig(seed=args.seed, threads=args.threads, fused_loss=after)
    users = validation_users(loo.test_train.lengths, args.seed) if after else np.arange(len(loo.val_target))
    eval_batch = EVALUATION_BATCH if after else 2048
    histories, targets = loo.val_train.subset(users), loo.val_target[users]
    model = SASRec(cfg).fit(loo.val_train, epochs=args.epochs)
    epoch_seconds = [h["seconds"] for h in model.config.history]
    t0 = time.perf_counter()
    ndcg = evaluate(
        lambda b: model._logits(histories.subset(b)), histories, targets, ks=(10,), batch_size=eval_batch
    )["NDCG@10"]
    eval_seconds = time.perf_counter() - t0
    positions = int(np.maximum(np.minimum(loo.val_train.lengths, cfg.max_len + 1) - 1, 0).sum())
    return {
        "loss": "hand-written backward" if after else "autograd",
        "validation_users": len(targets),
        "evaluation_batch": eval_batch,
        "positions_per_epoch": positions,
        "epoch_seconds": [round(s, 2) for s in epoch_seconds],
        "train_seconds_per_epoch": round(float(np.mean(epoch_seconds)), 2),
        "eval_seconds": round(eval_seconds, 2),
        "epochs_per_minute": round(60.0 / (float(np.mean(epoch_seconds)) + eval_seconds), 2),
        "loss_after_epochs": round(model.config.history[-1]["loss"], 4),
        "val_NDCG@10_after_epochs": round(ndcg, 4),
    }


def full_run(way: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Seconds of a typical run: early stopping (best epoch plus the patience, each epoch validated) and the refit
    to the best epoch."""
    from ml.recommend.sasrec import SASRecConfig

    epochs = args.best_epoch + SASRecConfig().patience
    early = epochs * (way["train_seconds_per_epoch"] + way["eval_seconds"])
    refit_seconds = args.best_epoch * way["train_seconds_per_epoch"]
    total = early + refit_seconds
    return {
        "epochs": epochs,
        "early_stopping_seconds": round(early),
        "refit_seconds": round(refit_seconds),
        "total_seconds": round(total),
        "fits_budget": total <= args.time_budget,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started = time.perf_counter()
    import torch

    from ml.recommend.data import LeaveOneOut

    torch.set_num_threads(args.threads)
    rows = []
    for name, seqs in data_sets(args.data, args.seed):
        loo = LeaveOneOut.split(seqs)
        log(f"{name}: {len(seqs)} users, {seqs.n_items} items, {len(seqs.items)} interactions")
        before = time_way(loo, after=False, args=args)
        log(f"  before: {before}")
        after = time_way(loo, after=True, args=args)
        log(f"  after:  {after}")
        rows.append(
            {
                "data": name,
                "users": len(seqs),
                "items": seqs.n_items,
                "interactions": len(seqs.items),
                "before": before | {"full_run": full_run(before, args)},
                "after": after | {"full_run": full_run(after, args)},
                "train_speedup": round(
                    before["train_seconds_per_epoch"] / after["train_seconds_per_epoch"], 2
                ),
                "epochs_per_minute_ratio": round(after["epochs_per_minute"] / before["epochs_per_minute"], 2),
            }
        )
    result = {
        "benchmark": "recsys_epochs",
        "cpu": machine_description(torch.get_num_threads()),
        "time_budget": args.time_budget,
        "assumed_best_epoch": args.best_epoch,
        "data_sets": rows,
    }
    result = write_result(args.out, result, "bench.recsys_epochs", argv, started)
    log(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
