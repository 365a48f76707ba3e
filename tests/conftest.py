"""Shared fixtures: every test that touches data works in its own temporary data directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Library progress bars and Dagster's telemetry only add noise to test output.
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
# The retry policy's first wait (ml/retry.py), read when the assets are defined: seconds, not minutes, here.
os.environ.setdefault("AIGC_RETRY_DELAY_SECONDS", "1")


@pytest.fixture(scope="session")
def simulated_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's warehouse: the small simulated store's first days built by the raw loader and a real
    ``dbt build`` (tests/warehouses.py). Read-only: a test that writes works on ``copy_warehouse`` of it."""
    from tests.warehouses import build_simulated

    return build_simulated(tmp_path_factory.mktemp("simulated_store"))


@pytest.fixture(scope="session")
def four_day_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four clean days of a tiny shop written into the raw layer (tests/warehouses.py) and the marts a real dbt
    build makes of them. Read-only: tests break their own copy."""
    import duckdb

    from ml.dbt import run_dbt
    from tests.warehouses import D1, D4, MARTS, build_four_day_shop

    path = tmp_path_factory.mktemp("four_day_shop") / "warehouse.duckdb"
    with duckdb.connect(str(path)) as connection:
        build_four_day_shop(connection)
    run_dbt(path, D1, D4, MARTS)
    return path


DEMAND_SHOP_SERIES = {"n_series": 24, "n_periods": 260, "season_length": 7, "seed": 5, "start": "2025-01-01"}


@pytest.fixture(scope="session")
def demand_shop_frame():
    """The synthetic store's demand the demand shop sells (unique_id, ds, y, price, promo) and its expectation."""
    from ml.forecast.synthetic import synthetic_store

    return synthetic_store(**DEMAND_SHOP_SERIES)


@pytest.fixture(scope="session")
def demand_shop(tmp_path_factory: pytest.TempPathFactory, demand_shop_frame) -> Path:
    """260 days of 24 SKUs with known demand, landed, loaded and modelled by a real dbt build
    (tests/warehouses.py); the folder holds the landing files and ``warehouse.duckdb``. Read-only: tests work on
    ``copy_shop`` of it."""
    from tests.warehouses import build_demand_shop

    folder = tmp_path_factory.mktemp("demand_shop")
    build_demand_shop(folder, demand_shop_frame[0])
    return folder


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh AIGC_DATA_DIR for one test."""
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


# `make test` runs on two workers (pytest-xdist, --dist loadfile --no-loadscope-reorder) whole work units: a test
# file, or all the files that use one of the session warehouses named in WORK_UNITS, so that warehouse is built once
# and not once per worker. Units are handed out in collection order (without --no-loadscope-reorder xdist hands out
# the units with the most tests first): the longest units go first, longest first, so the workers split them and
# the short files fill in at the end instead of a long end-to-end file starting last on one worker. Approximate
# order from `--durations` runs.
SLOWEST_FIRST = (
    "test_supply_weekly_selection.py",  # with the other files of the demand shop: the longest unit
    "test_supply_service_levels.py",
    "test_forecast_service.py",
    "test_online_retail_e2e.py",
    "test_ml_layers_e2e.py",
    "test_pipeline_e2e.py",
    "test_profiles.py",
    "test_dirty_store_e2e.py",
    "test_automation.py",
    "test_shop_front.py",
    "test_recommend_platform.py",
)

WORK_UNITS = {
    "test_profiles.py": "simulated_warehouse",
    "test_profiles_churn.py": "simulated_warehouse",
    "test_expectations.py": "four_day_shop",
    "test_expectations_dagster.py": "four_day_shop",
    "test_forecast_service.py": "demand_shop",
    "test_supply_service_levels.py": "demand_shop",
    "test_supply_weekly_selection.py": "demand_shop",
}
"""The test files that use a session fixture building a warehouse, by that fixture: each group runs on one worker
(``tests/test_work_units.py`` holds this map to the fixtures the files use)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.hookimpl(optionalhook=True)  # an xdist hook: pytest without xdist (`-p no:xdist`) must not refuse it
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadfile`` with the files of one shared warehouse in one work unit. (xdist's own ``loadgroup``
    would do this from marks, but it does not group at all under pytest 9.2: pytest-xdist issue #1386.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedWarehouseScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return SharedWarehouseScheduling(config, log)


def work_unit(nodeid: str) -> str:
    """The work unit of a test: its file's shared warehouse, else its file."""
    test_file = nodeid.split("::", 1)[0]
    return WORK_UNITS.get(Path(test_file).name, test_file)
