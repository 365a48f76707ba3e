"""Which failures are worth another try, and how long to wait: the platform's declared retry policy.

Transient (retried with exponential backoff): a landing file that has not arrived yet (an upstream drop running
late) and a DuckDB file locked by another process (a writer finishing). Everything else is permanent and fails
at once with its message: a corrupt or non-conforming file will be just as corrupt in a minute, and retrying it
only delays the alert. The orchestration layer applies this (``orchestration/retries.py``).

``AIGC_RETRY_DELAY_SECONDS`` (default 30) is the first wait; each next one doubles (30 s, 60 s, 120 s), within
:data:`TRANSIENT_RETRIES` retries.
"""

from __future__ import annotations

import os

import duckdb

from ml.ingest.raw_loader import MissingLandingError

TRANSIENT_RETRIES = 3
DEFAULT_DELAY_SECONDS = 30.0


def retry_delay_seconds() -> float:
    return float(os.environ.get("AIGC_RETRY_DELAY_SECONDS", DEFAULT_DELAY_SECONDS))


def is_transient(exc: BaseException) -> bool:
    """A failure that another try may not meet: a late landing file or a locked DuckDB file."""
    if isinstance(exc, MissingLandingError):
        return True
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()
