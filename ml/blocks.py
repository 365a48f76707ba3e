"""Splitting work that would not fit in memory at once into consecutive blocks of bounded size."""

from __future__ import annotations

import numpy as np


def consecutive_blocks(sizes: np.ndarray, limit: float) -> list[tuple[int, int]]:
    """Consecutive ``(first, last)`` ranges of ``sizes`` whose sums stay within ``limit`` (an entry above it
    alone), covering every entry in order."""
    blocks, first, total = [], 0, 0.0
    for row, value in enumerate(np.asarray(sizes, dtype=float).tolist()):
        if row > first and total + value > limit:
            blocks.append((first, row))
            first, total = row, 0.0
        total += value
    if len(sizes):
        blocks.append((first, len(sizes)))
    return blocks
