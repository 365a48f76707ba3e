"""Reference lists for the shop front, in the ``recommendations`` export's shape: the oracle (from the simulator's
truth) and a random list. They bound what a recommender can earn in the closed loop: the oracle from above,
random from below."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from ml.sources.simulated import START_DATE, World, for_you_appeal


def _frame(world: World, customers: np.ndarray, top: np.ndarray, model: str, day: date) -> pd.DataFrame:
    k = top.shape[1]
    return pd.DataFrame(
        {
            "target_date": day,
            "customer_id": np.repeat(world.customer_ids[customers], k),
            "rank": np.tile(np.arange(1, k + 1), len(customers)),
            "sku": world.skus[top.ravel()],
            "model_name": model,
            "model_version": f"{model}-{day.isoformat()}",
        }
    )


def oracle_lists(
    world: World, customers: np.ndarray, day: date, k: int = 10, chunk: int = 2_000
) -> pd.DataFrame:
    """For each customer (positions), the ``k`` launched products it finds most appealing on ``day``."""
    t = (day - START_DATE).days
    launched = np.flatnonzero(world.product_launch_day <= t)
    tops = []
    for lo in range(0, len(customers), chunk):
        part = customers[lo : lo + chunk]
        pairs_c = np.repeat(part, len(launched))
        pairs_p = np.tile(launched, len(part))
        appeal = for_you_appeal(world, pairs_c, pairs_p).reshape(len(part), len(launched))
        best = np.argsort(-appeal, axis=1, kind="stable")[:, :k]
        tops.append(launched[best])
    top = np.concatenate(tops) if tops else np.empty((0, k), dtype=np.int64)
    return _frame(world, customers, top, "oracle", day)


def random_lists(world: World, customers: np.ndarray, day: date, k: int = 10, seed: int = 0) -> pd.DataFrame:
    """For each customer, ``k`` distinct launched products drawn uniformly (seeded by ``seed`` and the day)."""
    t = (day - START_DATE).days
    launched = np.flatnonzero(world.product_launch_day <= t)
    rng = np.random.default_rng([seed, day.toordinal()])
    top = (
        np.stack([rng.choice(launched, size=k, replace=False) for _ in customers])
        if len(customers)
        else np.empty((0, k), dtype=np.int64)
    )
    return _frame(world, customers, top, "random", day)
