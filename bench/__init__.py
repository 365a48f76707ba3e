"""Benchmarks: reproducible runs of the models and policies against public data and peer libraries."""

import argparse


def docstring_parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """An argument parser whose ``--help`` shows a benchmark module's docstring: its first paragraph as the
    description, the rest (commands, protocol) verbatim after the options."""
    summary, _, details = doc.partition("\n\n")
    return argparse.ArgumentParser(
        prog=prog,
        description=summary,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=details,
    )


def source_commit() -> str | None:
    """The commit the benchmark runs from, ``+changes`` when the working tree differs from it (None outside a
    git checkout), so a result file says which code it measured."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def paired_test(a, b, seed: int = 0, draws: int = 10_000) -> dict:
    """Mean of the paired differences ``a - b``, its 95% bootstrap interval
    (:func:`ml.recommend.evaluation.paired_interval`) and the two-sided sign-flip randomisation p-value."""
    import numpy as np

    from ml.recommend.evaluation import paired_interval

    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    flips = np.random.default_rng(seed).choice([-1.0, 1.0], size=(draws, len(diff)))
    p = float(((np.abs((flips * diff).mean(axis=1)) >= abs(diff.mean()) - 1e-12).sum() + 1) / (draws + 1))
    low, high = paired_interval(a, b, n_boot=draws, seed=seed)
    return {
        "mean_difference": round(float(diff.mean()), 4),
        "ci95": [round(low, 4), round(high, 4)],
        "p_value": round(p, 4),
    }


def write_result(out, result: dict, prog: str, argv: list[str] | None, started: float) -> dict:
    """``result`` with how it was made (command, machine, date, commit, wall seconds), written to ``out`` as JSON."""
    import json
    import os
    import platform
    import sys
    import time
    from datetime import date

    result = {
        **result,
        "command": f"python -m {prog} " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()}; {os.cpu_count()} logical CPUs; {platform.system()} {platform.release()}",
        "date": date.today().isoformat(),
        "commit": source_commit(),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result
