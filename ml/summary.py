"""What a daily step reports besides its rows: the one shape every step of ``ml`` returns and the assets attach.

    {"row_count": int | None,
     "metrics": {name: number, bool, text or None},   # numbers plot over partitions in the UI
     "markdown": {name: markdown text},              # small tables and charts
     "json": {name: JSON-able value}}                # structured details

A daily asset turns it into Dagster metadata (``orchestration.metadata.summary_metadata``); for a range of days it
shows the last day in full and every day's numbers in a table.
"""

from __future__ import annotations

import math
from typing import Any


def summary(
    row_count: int | None = None,
    metrics: dict[str, Any] | None = None,
    markdown: dict[str, str] | None = None,
    json: dict[str, Any] | None = None,
) -> dict:
    """A step's summary; NaN numbers become ``None`` (not computable that day), so they never plot as 0."""
    clean = {
        k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else v)
        for k, v in (metrics or {}).items()
    }
    return {
        "row_count": None if row_count is None else int(row_count),
        "metrics": clean,
        "markdown": dict(markdown or {}),
        "json": dict(json or {}),
    }
