"""Resources, keyed by the environment that :func:`ml.settings.environment` decides."""

from __future__ import annotations

from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource

from ml import settings
from ml.artifacts import ArtifactStore
from ml.dbt import dbt_executable, installed_dbt_version
from ml.exports import write_export, write_export_from_query


class DbtResource(DbtCliResource):
    """dagster-dbt's dbt CLI resource, told dbt's version instead of asking dbt for it: dagster-dbt runs
    `dbt --version` once per resource instance, that is once per run, a whole start of dbt before every dbt step.
    The dbt beside this interpreter reports the installed package's version (:func:`ml.dbt.installed_dbt_version`);
    any other executable is asked."""

    @cached_property
    def _cli_version(self):
        installed = installed_dbt_version(self.dbt_executable)
        if installed is None:
            return super()._cli_version
        from packaging import version

        return version.parse(installed)


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse. Writers hold the file alone (every writing asset is in the warehouse pool);
    readers open it read-only."""

    path: str

    @contextmanager
    def connect(self, read_only: bool = False):
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(self.path, read_only=read_only)
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute(f"SET memory_limit = '{settings.warehouse_memory_limit()}'")
            yield con
        finally:
            con.close()


class DataFilesResource(dg.ConfigurableResource):
    """Where assets write files beside the warehouse: model artifacts, Parquet exports, GX Data Docs."""

    artifacts_dir: str
    exports_dir: str
    gx_docs_dir: str

    def path(self, kind: str, *parts: str) -> Path:
        root = {"artifacts": self.artifacts_dir, "exports": self.exports_dir, "gx_docs": self.gx_docs_dir}[
            kind
        ]
        target = Path(root).joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def artifacts(self) -> ArtifactStore:
        """The model artifact store (recommender bundles, forecast selections)."""
        return ArtifactStore(self.artifacts_dir)

    def export(self, frame, output: str, day) -> Path:
        """Write ``day``'s ``output`` as Parquet for the read API and other systems (:func:`ml.exports.write_export`)."""
        return write_export(frame, Path(self.exports_dir), output, day)

    def export_query(self, con, sql: str, params, output: str, day) -> Path:
        """Write ``day``'s ``output`` from a query, streamed into the file (:func:`ml.exports.write_export_from_query`)."""
        return write_export_from_query(con, sql, params, Path(self.exports_dir), output, day)

    @classmethod
    def under(cls, data_dir: Path) -> DataFilesResource:
        return cls(
            artifacts_dir=str(data_dir / "artifacts"),
            exports_dir=str(data_dir / "exports"),
            gx_docs_dir=str(data_dir / "gx_docs"),
        )


class StoreSourceResource(dg.ConfigurableResource):
    """The active source (simulated store or real-data replay) and the landing zone it writes to."""

    name: str
    scale: str = "small"
    seed: int = 42
    dirty_rate: float = 0.0
    """Defects of each kind per 1,000 events added to the simulator's days (ml/sources/dirt.py); 0 = clean."""
    landing_root: str
    closed_loop: bool = False
    """The simulated store answers the platform's exports of the day before (ml/shop); days run in order."""
    exports_root: str = ""
    shop_state_root: str = ""

    def get(self):
        from ml.sources import get_source

        return get_source(
            self.name,
            scale=self.scale,
            seed=self.seed,
            dirty_rate=self.dirty_rate,
            closed_loop=self.closed_loop,
            exports_root=Path(self.exports_root) if self.exports_root else None,
            state_root=Path(self.shop_state_root) if self.shop_state_root else None,
        )


def build_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources for the active environment. ``prod`` differs in where the warehouse lives (AIGC_DATA_DIR or
    AIGC_PROD_WAREHOUSE_PATH) and in Dagster's own storage (dagster.prod.yaml); the code is the same."""
    from orchestration.defs.transform.project import dbt_project

    source = settings.source_settings()
    return {
        "warehouse": WarehouseResource(path=str(settings.warehouse_path())),
        "store": StoreSourceResource(
            name=source.name,
            scale=source.scale,
            seed=source.seed,
            dirty_rate=source.dirty_rate,
            landing_root=str(settings.landing_root()),
            closed_loop=source.closed_loop,
            exports_root=str(settings.exports_dir()),
            shop_state_root=str(settings.shop_state_dir()),
        ),
        "dbt": DbtResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
        "files": DataFilesResource(
            artifacts_dir=str(settings.artifacts_dir()),
            exports_dir=str(settings.exports_dir()),
            gx_docs_dir=str(settings.gx_docs_dir()),
        ),
    }
