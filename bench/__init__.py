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
