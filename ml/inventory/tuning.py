"""Choosing service levels on replayed validation windows (never on the window being judged).

A policy parameter (the cycle service level of the forecast policy, the cover days of the naive one) is tuned by
replaying windows before the origin: the smallest value on a grid whose replay reaches the target fill rate on
every window. :func:`levels_by_class` then refines one level into one per demand class by marginal analysis: a
unit of safety stock buys more fill on some classes than on others (an erratic SKU's tail is short, a lumpy SKU's
is a few huge orders), so one level for all SKUs holds more stock than needed for the same total fill rate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def smallest_feasible(grid: Sequence, run: Callable, windows: Sequence, target: float):
    """``(value, results)``: the first ``grid`` value whose ``run(value, window)`` reaches ``target`` fill rate on
    every window (else the last value), with the per-window results."""
    for g in grid:
        res = [run(g, w) for w in windows]
        if min(r.fill_rate for r in res) >= target:
            return g, res
    return grid[-1], [run(grid[-1], w) for w in windows]


def mean_stock(results) -> float:
    return float(np.mean([r.avg_inventory_units for r in results]))


def levels_by_class(
    grid: Sequence[float],
    run: Callable,
    windows: Sequence,
    target: float,
    start: float,
    classes: Sequence[str],
    max_rounds: int = 20,
    progress: Callable[[str], None] | None = None,
):
    """``(levels, results)``: one service level per class, from ``start`` for all, by greedy moves on ``grid``.

    ``run(levels, window)`` replays a window with ``levels`` (class -> level). A move lowers one class by a grid
    step, or lowers one class and raises another (stock shifted to where it buys more fill); the move kept in
    each round is the one with the least mean stock over the windows among those still reaching ``target`` on
    every window, and only if it holds less stock than the current levels. Stops when no move helps.
    """
    grid = list(grid)
    levels = {c: start for c in classes}
    best = [run(levels, w) for w in windows]
    for round_ in range(max_rounds):
        moves = []
        for down in classes:
            i = grid.index(levels[down])
            if i == 0:
                continue
            moves.append({down: grid[i - 1]})
            for up in classes:
                j = grid.index(levels[up])
                if up != down and j + 1 < len(grid):
                    moves.append({down: grid[i - 1], up: grid[j + 1]})
        found = None
        for move in moves:
            trial = {**levels, **move}
            res = [run(trial, w) for w in windows]
            if min(r.fill_rate for r in res) >= target and mean_stock(res) < mean_stock(
                found[1] if found else best
            ):
                found = (trial, res)
        if found is None:
            break
        levels, best = found
        if progress:
            progress(f"round {round_ + 1}: {levels}, mean stock {mean_stock(best):,.0f}")
    return levels, best
