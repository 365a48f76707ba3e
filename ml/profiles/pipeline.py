"""The whole profile step for one as-of date, in dependency order (what the benchmark times)."""

from __future__ import annotations

import logging
import time
from datetime import date

import duckdb

from ml.profiles.baskets import basket_associations
from ml.profiles.daily import update_daily_aggregates
from ml.profiles.items import item_profiles
from ml.profiles.places import place_profiles
from ml.profiles.segments import customer_segments
from ml.profiles.users import user_profiles

log = logging.getLogger(__name__)


def build_profiles(con: duckdb.DuckDBPyConnection, as_of: date, *, segments: bool = True) -> dict[str, dict]:
    """Aggregate day ``as_of`` and build every profile table for it; returns each step's summary.

    ``segments=False`` skips clustering (it needs enough buyers, which the first days may not have).
    """
    steps = [
        ("daily_aggregates", update_daily_aggregates),
        ("user_profiles", user_profiles),
        ("item_profiles", item_profiles),
        ("place_profiles", place_profiles),
        ("basket_associations", basket_associations),
    ]
    if segments:
        steps.append(("customer_segments", customer_segments))
    out: dict[str, dict] = {}
    for name, step in steps:
        t0 = time.perf_counter()
        out[name] = step(con, as_of)
        log.info("%s %s: %.2fs", name, as_of, time.perf_counter() - t0)
    return out
