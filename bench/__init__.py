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
