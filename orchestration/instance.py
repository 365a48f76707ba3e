"""Prepare the Dagster instance (``DAGSTER_HOME``) that the UI, the daemon and the CLI share.

``python -m orchestration.instance`` installs the shipped instance config (:func:`settings.prepare_dagster_home`)
and registers the warehouse pool's limit, then prints the folder (``make ui`` and ``make backfill`` use it).

Why register the pool: Dagster creates a pool's limit (the ``default_limit`` of dagster.yaml) the first time a
run that needs it is queued, but the queue daemon reads the list of limited pools *before* creating it. So on a
new instance the first runs queued together are all let through, and two DuckDB writers collide ("Could not set
lock on file"); the browser test's queueing check caught exactly that. Creating the limit up front closes the gap.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import dagster as dg

from ml import settings
from orchestration.partitions import POOL


def prepare_instance() -> Path:
    home = settings.prepare_dagster_home()
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        # a no-op when the pool already has a limit (set by this function or by an operator in the UI)
        instance.event_log_storage.initialize_concurrency_limit_to_default(POOL)
    finally:
        instance.dispose()
    return home


if __name__ == "__main__":
    argparse.ArgumentParser(
        description="Install the instance config into DAGSTER_HOME and register the warehouse pool; print the path."
    ).parse_args()
    print(prepare_instance())
