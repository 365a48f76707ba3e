"""The experiment split: a fixed, hashed share of customers sees the popularity list (the control arm).

The platform's serving assigns the arm and publishes it with each list (:func:`ml.recommend.daily.recommend_day`);
the shop records it with each exposure,
so uplift is measured between customers inside the same days. The hash of the salt and the customer id makes
the split stable across days and runs and independent of anything else about the customer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from ml.sources.schema import EXPERIMENT_ARMS

TREATMENT, CONTROL = EXPERIMENT_ARMS
CONTROL_SHARE = 0.10
"""Share of customers in the control arm (served the popularity list)."""
SPLIT_SALT = "recommendations-v1"
"""Changing the salt draws a new control group; keep it while an experiment runs."""


def control_score(customer_id: str, salt: str = SPLIT_SALT) -> float:
    """A uniform number in [0, 1) fixed by the salt and the customer id."""
    digest = hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def arms(
    customer_ids: Iterable[str], control_share: float = CONTROL_SHARE, salt: str = SPLIT_SALT
) -> np.ndarray:
    """The arm of each customer: ``control`` for a score below ``control_share``, else ``treatment``."""
    if not 0.0 <= control_share < 1.0:
        raise ValueError(f"control_share must be in [0, 1), got {control_share}")
    scores = np.array([control_score(str(c), salt) for c in customer_ids], dtype=float)
    return np.where(scores < control_share, CONTROL, TREATMENT).astype(object)


def list_ids(target_date: str, customer_ids: Iterable[str], model_versions: Iterable[str]) -> np.ndarray:
    """A short stable id of each served list: the day it is for, the customer and the model version."""
    return np.array(
        [
            hashlib.sha256(f"{target_date}:{c}:{v}".encode()).hexdigest()[:16]
            for c, v in zip(customer_ids, model_versions, strict=True)
        ],
        dtype=object,
    )
