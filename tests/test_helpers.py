"""Pure helpers: dbt arguments, partition vars, environment selection and landing paths."""

from __future__ import annotations

import json
import os
from datetime import date, datetime

import pytest

from ml import settings
from ml.dbt import LOOKBACK_DAYS, build_args, partition_vars, window_env, window_environ
from ml.sources.landing import LandingPathError, day_dir, parse_day, safe_join
from orchestration.partitions import window_days


def test_partition_vars_widen_the_window_by_the_lookback():
    assert partition_vars(date(2025, 1, 10), date(2025, 1, 10)) == {
        "min_date": "2025-01-07",
        "max_date": "2025-01-10",
    }
    assert partition_vars(date(2025, 3, 1), date(2025, 3, 7), lookback_days=0) == {
        "min_date": "2025-03-01",
        "max_date": "2025-03-07",
    }
    assert LOOKBACK_DAYS == 3
    # crossing a month and a year
    assert partition_vars(date(2025, 1, 2), date(2025, 1, 2))["min_date"] == "2024-12-30"


def test_partition_vars_refuse_empty_or_negative_windows():
    with pytest.raises(ValueError):
        partition_vars(date(2025, 1, 2), date(2025, 1, 1))
    with pytest.raises(ValueError):
        partition_vars(date(2025, 1, 2), date(2025, 1, 2), lookback_days=-1)


def test_build_args_keep_the_window_out_of_vars_and_full_refresh_only_when_asked():
    window = {"min_date": "2025-01-01", "max_date": "2025-01-02"}
    # the window goes in the environment (window_env); dbt's unit tests run in `make test`, not in daily builds
    assert build_args(window) == ["build", "--exclude-resource-type", "unit_test"]
    args = build_args({**window, "min_pair_orders": 2})
    assert args[3] == "--vars" and json.loads(args[4]) == {"min_pair_orders": 2}
    assert "--full-refresh" not in args
    assert build_args(window, full_refresh=True)[-1] == "--full-refresh"


def test_the_window_travels_in_two_environment_variables_set_only_for_the_call(monkeypatch):
    window = {"min_date": "2025-01-01", "max_date": "2025-01-02"}
    assert window_env(window) == {"AIGC_DBT_MIN_DATE": "2025-01-01", "AIGC_DBT_MAX_DATE": "2025-01-02"}
    monkeypatch.setenv("AIGC_DBT_MAX_DATE", "2024-12-31")
    monkeypatch.delenv("AIGC_DBT_MIN_DATE", raising=False)
    with window_environ(window):
        assert (os.environ["AIGC_DBT_MIN_DATE"], os.environ["AIGC_DBT_MAX_DATE"]) == (
            "2025-01-01",
            "2025-01-02",
        )
    assert "AIGC_DBT_MIN_DATE" not in os.environ and os.environ["AIGC_DBT_MAX_DATE"] == "2024-12-31"


def test_window_days_of_a_partition_time_window():
    assert window_days(datetime(2025, 1, 30), datetime(2025, 2, 2)) == [
        date(2025, 1, 30),
        date(2025, 1, 31),
        date(2025, 2, 1),
    ]
    assert window_days(datetime(2025, 1, 1), datetime(2025, 1, 2)) == [date(2025, 1, 1)]


def test_environment_selection(monkeypatch):
    monkeypatch.delenv("AIGC_ENV", raising=False)
    assert settings.environment() == "local"
    monkeypatch.setenv("AIGC_ENV", "PROD")
    assert settings.environment() == "prod"
    monkeypatch.setenv("AIGC_ENV", "staging")
    with pytest.raises(ValueError, match="AIGC_ENV"):
        settings.environment()


def test_one_warehouse_path_for_python_and_dbt(monkeypatch, tmp_path):
    monkeypatch.delenv("AIGC_ENV", raising=False)
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AIGC_PII_KEY", "k")
    assert settings.warehouse_path() == tmp_path.resolve() / "warehouse.duckdb"
    assert settings.dbt_env() == {
        "AIGC_WAREHOUSE_PATH": str(settings.warehouse_path()),
        "AIGC_DUCKDB_MEMORY_LIMIT": "4GB",
        "AIGC_DBT_TARGET": "local",
        "AIGC_PII_KEY": "k",
    }
    monkeypatch.setenv("AIGC_ENV", "prod")
    with pytest.raises(RuntimeError, match="AIGC_PROD_WAREHOUSE_PATH"):
        settings.warehouse_path()
    monkeypatch.setenv("AIGC_PROD_WAREHOUSE_PATH", "/srv/warehouse.duckdb")
    assert settings.dbt_env()["AIGC_WAREHOUSE_PATH"] == "/srv/warehouse.duckdb"
    assert settings.dbt_env()["AIGC_DBT_TARGET"] == "prod"


def test_one_duckdb_memory_limit_for_the_platform_and_dbt(monkeypatch, tmp_path):
    import yaml

    from orchestration.resources import WarehouseResource

    monkeypatch.setenv("AIGC_DUCKDB_MEMORY_LIMIT", "512MiB")
    assert settings.dbt_env()["AIGC_DUCKDB_MEMORY_LIMIT"] == "512MiB"
    with WarehouseResource(path=str(tmp_path / "w.duckdb")).connect() as con:
        assert con.execute("SELECT current_setting('memory_limit')").fetchall() == [("512.0 MiB",)]
    # dbt's DuckDB targets read the same variable
    profile = yaml.safe_load((settings.DBT_PROJECT_DIR / "profiles.yml").read_text())["aigc_commerce"]
    for target in ("local", "prod"):
        assert "env_var('AIGC_DUCKDB_MEMORY_LIMIT'" in profile["outputs"][target]["settings"]["memory_limit"]
    monkeypatch.setenv("AIGC_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="AIGC_DUCKDB_MEMORY_LIMIT"):
        settings.warehouse_memory_limit()


def test_prepare_dagster_home_installs_the_shipped_instance_config(monkeypatch, tmp_path):
    monkeypatch.delenv("AIGC_ENV", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path))
    home = settings.prepare_dagster_home()
    assert home == tmp_path.resolve() / "dagster_home"
    text = (home / "dagster.yaml").read_text()
    assert "default_limit: 1" in text and "max_concurrent_runs" in text


def test_landing_paths_refuse_escapes(tmp_path):
    assert (
        day_dir(tmp_path, "simulated", "orders", "2025-01-02")
        == tmp_path.resolve() / "simulated/orders/date=2025-01-02"
    )
    for key in ("../2025-01-02", "2025-01-02/../../x", "2025-1-2", "", "2025-01-02 "):
        with pytest.raises(LandingPathError):
            parse_day(key)
    with pytest.raises(LandingPathError):
        day_dir(tmp_path, "..", "orders", "2025-01-02")
    with pytest.raises(LandingPathError):
        day_dir(tmp_path, "simulated", "orders/../../etc", "2025-01-02")
    with pytest.raises(LandingPathError):
        safe_join(tmp_path, "a", "..", "..", "b")
    assert safe_join(tmp_path, "a", "b") == tmp_path.resolve() / "a" / "b"


def test_shipped_instance_config_queues_runs_and_limits_the_warehouse_pool(monkeypatch, tmp_path):
    import dagster as dg

    monkeypatch.delenv("AIGC_ENV", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path))
    home = settings.prepare_dagster_home()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        config = instance.get_concurrency_config()
        assert config.pool_config.default_pool_limit == 1
        assert config.pool_config.pool_granularity.value == "run"
        assert config.run_queue_config.max_concurrent_runs == 4


def test_prepare_instance_registers_the_warehouse_pool_before_any_run_is_queued(monkeypatch, tmp_path):
    """Without the registration the queue daemon lets the first two warehouse runs through together."""
    import dagster as dg

    from orchestration.instance import prepare_instance
    from orchestration.partitions import POOL

    monkeypatch.delenv("AIGC_ENV", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path))
    with dg.DagsterInstance.from_config(str(settings.prepare_dagster_home())) as bare:
        assert POOL not in bare.event_log_storage.get_concurrency_keys()
    home = prepare_instance()
    prepare_instance()  # idempotent: a second call keeps the one limit
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert POOL in instance.event_log_storage.get_concurrency_keys()
        assert instance.event_log_storage.get_concurrency_info(POOL).slot_count == 1


def test_the_pseudonymisation_key_comes_from_the_environment_and_the_local_default_is_loud(
    monkeypatch, caplog
):
    monkeypatch.delenv("AIGC_PII_KEY", raising=False)
    monkeypatch.delenv("AIGC_ENV", raising=False)
    with caplog.at_level("WARNING", logger="aigc.secrets"):
        assert settings.pii_key() == settings.LOCAL_PII_KEY
    assert "PUBLIC local development key" in caplog.text
    monkeypatch.setenv("AIGC_ENV", "prod")
    with pytest.raises(RuntimeError, match="AIGC_PII_KEY"):
        settings.pii_key()
    monkeypatch.setenv("AIGC_PII_KEY", "a-real-secret")
    assert settings.pii_key() == "a-real-secret"
    # dbt's macro falls back to the same public key, so Python and dbt cannot hash with different keys
    macro = (settings.DBT_PROJECT_DIR / "macros" / "portable.sql").read_text()
    assert f"env_var('AIGC_PII_KEY', '{settings.LOCAL_PII_KEY}')" in macro


def test_no_secret_is_tracked_in_git(tmp_path):
    """``git grep`` over the tracked files (tests aside: they hold throwaway tokens) finds no private key, cloud
    key or hard-coded password, secret or token; the same scan does find one planted in a scratch folder."""
    import subprocess

    pattern = (
        r"(-----BEGIN [A-Z ]*PRIVATE KEY-----|AKIA[0-9A-Z]{16}|ghp_[A-Za-z0-9]{36}|xox[baprs]-[A-Za-z0-9-]+|"
        r"(password|passwd|secret|token|api_key)[\"']?\s*[:=]\s*[\"'][^\"'$<{ ]{8,}[\"'])"
    )
    found = subprocess.run(
        ["git", "grep", "-nIiE", pattern, "--", ".", ":!tests"],
        cwd=settings.REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert found.returncode == 1 and found.stdout == "", found.stdout  # 1: no match
    (tmp_path / "config.py").write_text('db_password = "hunter2hunter2"\n')
    planted = subprocess.run(
        ["git", "grep", "--no-index", "-nIiE", pattern, "--", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert planted.returncode == 0 and "hunter2hunter2" in planted.stdout
