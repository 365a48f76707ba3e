"""Helpers for tests that materialise real partitions into temporary DuckDB files."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from orchestration.definitions import defs
from orchestration.resources import DataFilesResource, StoreSourceResource, WarehouseResource, build_resources

MODEL_SCHEMAS = ("raw", "staging", "intermediate", "marts")
FOUNDATION_GROUPS = ("landing", "ingest", "staging", "intermediate", "marts", "quality", "feedback")
"""The layers up to the marts and their checks: what the foundation tests materialise (the profile, forecast
and recommendation layers have their own end-to-end tests, so the foundation tests stay fast). ``feedback`` holds
marts too (impressions, exposed customers, lost sales; empty in open loop) and the online metrics read from them."""
# Columns that carry the absolute path of the landing file: equal content, different temporary folders.
PATH_COLUMNS = {"_source_file", "source_file"}


def resources_for(
    data_dir: Path,
    source: str = "simulated",
    scale: str = "small",
    dirty_rate: float = 0.0,
    closed_loop: bool = False,
) -> dict:
    resources = build_resources()
    resources["warehouse"] = WarehouseResource(path=str(data_dir / "warehouse.duckdb"))
    resources["files"] = DataFilesResource.under(data_dir)
    resources["store"] = StoreSourceResource(
        name=source,
        scale=scale,
        seed=42,
        dirty_rate=dirty_rate,
        landing_root=str(data_dir / "landing"),
        closed_loop=closed_loop,
        exports_root=str(data_dir / "exports"),
        shop_state_root=str(data_dir / "shop"),
    )
    return resources


def all_assets() -> list:
    """Every asset and every separately defined asset check (``materialize`` runs only what it is given)."""
    return [*defs.assets, *(defs.asset_checks or [])]


def run_selection(
    groups: tuple[str, ...] | None = FOUNDATION_GROUPS, checks: bool = True
) -> dg.AssetSelection:
    """The assets of ``groups`` (None: all) and their checks, as the daily job selects them: freshness is judged
    against the clock by its sensor, not by the run that makes the data fresh. ``checks=False``: the assets only,
    for a test of what the runs build (the checks' verdicts change no row)."""
    from orchestration.defs.quality.assets import freshness_checks

    selection = dg.AssetSelection.groups(*groups) if groups else dg.AssetSelection.all()
    if not checks:
        return selection - dg.AssetSelection.all_asset_checks()
    return selection - dg.AssetSelection.checks(*freshness_checks)


def materialize_days(
    data_dir: Path,
    first: str,
    last: str | None = None,
    groups: tuple[str, ...] | None = FOUNDATION_GROUPS,
    instance: dg.DagsterInstance | None = None,
    run_config: dict | None = None,
    checks: bool = True,
    **kwargs,
) -> dg.ExecuteInProcessResult:
    """Materialise ``groups`` (None: the whole graph) for ``first`` (or ``first..last`` as one single-run backfill),
    with their checks unless ``checks`` is False (:func:`run_selection`)."""
    tags = {}
    partition_key = first
    if last and last != first:
        tags = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
        partition_key = None
    result = dg.materialize(
        all_assets(),
        selection=run_selection(groups, checks),
        resources=resources_for(data_dir, **kwargs),
        partition_key=partition_key,
        tags=tags,
        instance=instance or dg.DagsterInstance.ephemeral(),
        run_config=run_config,
    )
    assert result.success
    return result


def table_names(con: duckdb.DuckDBPyConnection, schemas=MODEL_SCHEMAS) -> list[str]:
    rows = con.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        f"WHERE table_schema IN ({', '.join('?' for _ in schemas)}) ORDER BY 1",
        list(schemas),
    ).fetchall()
    return [r[0] for r in rows]


def checksums(
    warehouse: Path, *, ignore_paths: bool = True, schemas=MODEL_SCHEMAS
) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent content hash of every table: the sum of DuckDB's hash of each row's
    values (two tables with the same rows in any order sum alike; a changed, missing or extra row changes the sum)."""
    out = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for name in table_names(con, schemas):
            cols = [
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema || '.' || table_name = ? ORDER BY ordinal_position",
                    [name],
                ).fetchall()
                if not (ignore_paths and r[0] in PATH_COLUMNS)
            ]
            row = ", ".join(f'"{c}"' for c in cols)
            count, digest = con.execute(
                f"SELECT count(*), coalesce(sum(hash({row})::HUGEINT), 0) FROM {name}"
            ).fetchall()[0]
            out[name] = (count, str(digest))
    return out


def landing_rows(landing_root: Path, source: str, table: str, days: list[str]) -> int:
    files = [
        str(p) for d in days for p in sorted((landing_root / source / table / f"date={d}").glob("*.parquet"))
    ]
    with duckdb.connect() as con:
        return con.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone()[0]
