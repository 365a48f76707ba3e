"""Mean and spread of ``bench.recsys`` runs over seeds, per data set and model.

    python -m bench.recsys_seeds bench/results/recsys_beauty_seed*.json bench/results/recsys_toys_seed*.json \\
        --out bench/results/recsys_seeds.json

Reads the JSON results of :mod:`bench.recsys` (one per seed; runs of the same data file are grouped) and prints
one markdown table per data set: NDCG@10 and HR@10 of every model as mean ± sample standard deviation over the
seeds, with each seed's value, and for the Transformer its best epoch and whether the refit ran. It reads figures
only: nothing is trained or tuned here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

METRICS = ("NDCG@10", "HR@10")


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per data set: the seeds, and per model each metric's values, mean and sample standard deviation; for the
    Transformer the best epoch and refit of each seed."""
    out: dict[str, Any] = {}
    for result in sorted(results, key=lambda r: (r["dataset"], _seed(r))):
        data = out.setdefault(result["dataset"], {"seeds": [], "models": {}})
        data["seeds"].append(_seed(result))
        for model, row in result["models"].items():
            entry = data["models"].setdefault(model, {m: {"values": []} for m in METRICS})
            for metric in METRICS:
                entry[metric]["values"].append(row[metric])
            params = row.get("params", {})
            if "best_epoch" in params:
                entry.setdefault("best_epoch", []).append(params["best_epoch"])
                entry.setdefault("refit", []).append(bool(params.get("refit")))
    for data in out.values():
        for entry in data["models"].values():
            for metric in METRICS:
                values = np.asarray(entry[metric]["values"], dtype=float)
                entry[metric]["mean"] = round(float(values.mean()), 5)
                entry[metric]["std"] = round(float(values.std(ddof=1)), 5) if len(values) > 1 else None
    return out


def _seed(result: dict[str, Any]) -> int:
    params = result["models"].get("sasrec", {}).get("params", {})
    if "seed" in params:
        return int(params["seed"])
    command = result.get("command", "").split()
    return int(command[command.index("--seed") + 1]) if "--seed" in command else 0


def markdown(summary: dict[str, Any]) -> str:
    lines = []
    for dataset, data in summary.items():
        seeds = ", ".join(str(s) for s in data["seeds"])
        lines += [
            f"{dataset} (seeds {seeds})",
            "",
            "| model | NDCG@10 mean ± sd | per seed | HR@10 mean ± sd |",
            "|---|---|---|---|",
        ]
        for model, entry in data["models"].items():
            ndcg, hr = entry["NDCG@10"], entry["HR@10"]
            per_seed = " / ".join(f"{v:.4f}" for v in ndcg["values"])
            lines.append(
                f"| {model} | {_pm(ndcg)} | {per_seed} | {_pm(hr)} |"
                + (
                    f" best epochs {entry['best_epoch']}, refit {entry['refit']}"
                    if "best_epoch" in entry and model == "sasrec"
                    else ""
                )
            )
        lines.append("")
    return "\n".join(lines)


def _pm(metric: dict[str, Any]) -> str:
    return f"{metric['mean']:.4f}" + (f" ± {metric['std']:.4f}" if metric["std"] is not None else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.recsys_seeds", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("results", nargs="+", type=Path, help="bench.recsys result JSON files (one per seed)")
    parser.add_argument("--out", type=Path, help="where to write the summary JSON (default: print only)")
    args = parser.parse_args(argv)
    summary = summarise([json.loads(p.read_text()) for p in args.results])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    sys.stdout.write(markdown(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
