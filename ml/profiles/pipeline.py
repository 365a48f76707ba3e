"""The Python profile steps for one as-of date, in dependency order (what the benchmark times after dbt)."""

from __future__ import annotations

import logging
import time
from datetime import date

import duckdb

from ml.profiles.items import item_profiles
from ml.profiles.places import place_profiles
from ml.profiles.segments import customer_segments
from ml.profiles.users import user_profiles

log = logging.getLogger(__name__)


def build_profiles(con: duckdb.DuckDBPyConnection, as_of: date, *, segments: bool = True) -> dict[str, dict]:
    """Build every Python-built profile table for ``as_of`` (the dbt feature layer must have built the day);
    returns each step's summary. ``segments=False`` skips clustering (it needs enough buyers, which the first days
    may not have)."""
    steps = [
        ("user_profiles", user_profiles),
        ("item_profiles", item_profiles),
        ("place_profiles", place_profiles),
    ]
    if segments:
        steps.append(("customer_segments", customer_segments))
    out: dict[str, dict] = {}
    for name, step in steps:
        t0 = time.perf_counter()
        out[name] = step(con, as_of)
        log.info("%s %s: %.2fs", name, as_of, time.perf_counter() - t0)
    return out
