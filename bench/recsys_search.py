"""Validation search over the Transformer's configuration: early stopping only, no test item is ever scored.

    python -m bench.recsys_search --data ../shared/data/amazon_beauty_s3rec/Beauty.txt \\
        --data ../shared/data/amazon_toys_s3rec/Toys_and_Games.txt \\
        --config '{}' --config '{"hidden": 128}' --config '{"ffn_mult": 4}' --threads 2 --out search.json

Each ``--config`` is a JSON object of :class:`ml.recommend.sasrec.SASRecConfig` fields changed from the defaults
(``{}`` is the defaults). Item attributes are read from ``<stem>_item2attributes.json`` beside each file when
it exists (as ``bench.recsys`` does) and used when the configuration's ``attributes`` is true. For every data file and configuration the Transformer is trained on all but each user's
last two items and early-stopped on the second-to-last (every user, a seeded sample above
``MAX_VALIDATION_USERS``), exactly the first phase of :func:`ml.recommend.sasrec.fit_with_refit` in
``bench.recsys``; the test items are not read. Reported per run: the best validation NDCG@10 and its epoch, the
seconds per training epoch and per validation pass, and the whole run's projected cost in the budget (early
stopping plus a refit to the best epoch), so that a configuration that scores better but cannot refit inside
the budget is seen as such. The choice is the configuration with the best mean validation NDCG@10 over the data
files (one default for every data set). Results are rewritten after every run, so an interrupted search keeps
what it measured.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from bench import write_result
from bench.recsys import add_file_arguments, attributes_file, item_attributes, log, machine_description


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.recsys_search",
        description="Early-stopping-only validation search over SASRecConfig fields, on one or more data files.",
    )
    add_file_arguments(p)
    p.add_argument(
        "--config",
        action="append",
        type=json.loads,
        required=True,
        help="JSON object of SASRecConfig fields to change from the defaults (repeat; '{}' = defaults)",
    )
    return p.parse_args(argv)


def search_one(
    loo: Any, changes: dict[str, Any], args: argparse.Namespace, attributes: Any = None
) -> dict[str, Any]:
    import dataclasses

    from ml.recommend.data import validation_users
    from ml.recommend.sasrec import SASRec, SASRecConfig

    cfg = dataclasses.replace(SASRecConfig(seed=args.seed, threads=args.threads), **changes)
    users = validation_users(loo.test_train.lengths, args.seed)
    model = SASRec(cfg).fit(
        loo.val_train,
        validation=(loo.val_train.subset(users), loo.val_target[users]),
        item_attributes=attributes,
    )
    history = model.config.history
    train_seconds = float(np.mean([h["seconds"] for h in history]))
    eval_seconds = float(np.mean([h.get("eval_seconds", 0.0) for h in history]))
    projected = model.train_seconds_ + model.best_epoch_ * train_seconds
    return {
        "config": changes,
        "val_NDCG@10": round(float(model.best_val_ndcg_), 5),
        "best_epoch": model.best_epoch_,
        "epochs": len(history),
        "train_seconds_per_epoch": round(train_seconds, 2),
        "eval_seconds": round(eval_seconds, 2),
        "early_stopping_seconds": round(model.train_seconds_, 1),
        "projected_seconds_with_refit": round(projected, 1),
        "fits_budget": projected <= args.time_budget,
        "val_curve": [round(h.get("val_NDCG@10", float("nan")), 5) for h in history],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started = time.perf_counter()
    import torch

    from ml.recommend.data import LeaveOneOut, read_sequence_file

    torch.set_num_threads(args.threads)
    runs: list[dict[str, Any]] = []
    result: dict[str, Any] = {}
    for path in args.data:
        loo = LeaveOneOut.split(read_sequence_file(path))
        attributes = item_attributes(attributes_file(path), loo.val_train.item_ids)
        for changes in args.config:
            log(f"{path.stem} {changes}: early stopping")
            row = {"data": path.stem, "item_attributes": attributes is not None}
            row |= search_one(loo, changes, args, attributes)
            log(f"{path.stem} {changes}: {row}")
            runs.append(row)
            result = write_result(
                args.out,
                {
                    "benchmark": "recsys_search",
                    "cpu": machine_description(torch.get_num_threads()),
                    "seed": args.seed,
                    "runs": runs,
                    "mean_val_NDCG@10": mean_by_config(runs),
                },
                "bench.recsys_search",
                argv,
                started,
            )
    log(f"wrote {args.out}")
    return result


def mean_by_config(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean validation NDCG@10 of each configuration over the files it has run on, best first."""
    by: dict[str, list[float]] = {}
    for r in runs:
        by.setdefault(json.dumps(r["config"], sort_keys=True), []).append(r["val_NDCG@10"])
    rows = [
        {"config": json.loads(k), "files": len(v), "mean": round(float(np.mean(v)), 5)} for k, v in by.items()
    ]
    return sorted(rows, key=lambda r: (-r["files"], -r["mean"]))


if __name__ == "__main__":
    main()
