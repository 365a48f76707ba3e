"""Where things live and which environment and source are active: the one place that decides.

No Dagster import here, so the Makefile, dbt helpers and benchmarks can ask for paths cheaply
(``python -m ml.settings warehouse-path``).

Environment variables (all optional):

- ``AIGC_ENV``: ``local`` (default) or ``prod``; see :func:`environment`.
- ``AIGC_DATA_DIR``: the data directory (default ``<repo>/.data``): landing files, the DuckDB warehouse,
  model artifacts, GX Data Docs and ``DAGSTER_HOME``.
- ``AIGC_SOURCE``: ``simulated`` (default) or ``online_retail``; ``AIGC_SCALE``: ``small`` (default),
  ``medium`` or ``large``; ``AIGC_SEED``: the simulator's seed (default 42).
- ``AIGC_PII_KEY``: the secret of the pseudonyms of personal data (:func:`pii_key`; required in ``prod``).
- ``AIGC_DUCKDB_MEMORY_LIMIT``: how much memory DuckDB may use per process before it spills to disk (default
  ``4GB``); see :func:`warehouse_memory_limit`.
- ``AIGC_SHOP_LOOP``: ``open`` (default) or ``closed``: in ``closed`` the simulated store answers what the platform
  published the day before (:mod:`ml.shop`); its days must then run one after another.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
ENVIRONMENTS = ("local", "prod")


def environment() -> str:
    """The active environment. ``local``: DuckDB file + SQLite Dagster storage; ``prod``: see README."""
    env = os.environ.get("AIGC_ENV", "local").strip().lower() or "local"
    if env not in ENVIRONMENTS:
        raise ValueError(f"AIGC_ENV={env!r} is not one of {ENVIRONMENTS}")
    return env


def data_dir() -> Path:
    return Path(os.environ.get("AIGC_DATA_DIR") or REPO_ROOT / ".data").resolve()


def landing_root() -> Path:
    return data_dir() / "landing"


def warehouse_path() -> Path:
    """The DuckDB warehouse: ``$AIGC_DATA_DIR/warehouse.duckdb`` locally; in ``prod`` the file named by
    ``AIGC_PROD_WAREHOUSE_PATH``. dbt's profile receives the same value through
    :func:`dbt_env`, so Python and dbt can never disagree."""
    if environment() == "prod":
        value = os.environ.get("AIGC_PROD_WAREHOUSE_PATH")
        if not value:
            raise RuntimeError("AIGC_ENV=prod needs AIGC_PROD_WAREHOUSE_PATH (the shared warehouse)")
        return Path(value)
    return data_dir() / "warehouse.duckdb"


DEFAULT_WAREHOUSE_MEMORY_LIMIT = "4GB"
_MEMORY_SIZE = re.compile(r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


def warehouse_memory_limit() -> str:
    """DuckDB's ``memory_limit`` for every connection the platform and dbt open (``AIGC_DUCKDB_MEMORY_LIMIT``).

    DuckDB's own default is 80% of the machine's memory, so on a large store one join or aggregation of a run
    could take what the run's Python steps need; with a limit, operators that outgrow it spill to
    ``<warehouse>.tmp`` instead."""
    value = os.environ.get("AIGC_DUCKDB_MEMORY_LIMIT", "").strip() or DEFAULT_WAREHOUSE_MEMORY_LIMIT
    if not _MEMORY_SIZE.match(value):
        raise ValueError(f"AIGC_DUCKDB_MEMORY_LIMIT={value!r} is not a size such as 4GB or 512MiB")
    return value


def artifacts_dir() -> Path:
    return data_dir() / "artifacts"


def exports_dir() -> Path:
    return data_dir() / "exports"


def shop_state_dir() -> Path:
    """The closed-loop shop's own stock records (outside the warehouse, as a real shop's systems are)."""
    return data_dir() / "shop"


def gx_docs_dir() -> Path:
    return data_dir() / "gx_docs"


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or data_dir() / "dagster_home").resolve()


@dataclass(frozen=True)
class SourceSettings:
    name: str
    scale: str
    seed: int
    dirty_rate: float = 0.0
    closed_loop: bool = False


def source_settings() -> SourceSettings:
    return SourceSettings(
        name=os.environ.get("AIGC_SOURCE", "simulated"),
        scale=os.environ.get("AIGC_SCALE", "small"),
        seed=int(os.environ.get("AIGC_SEED", "42")),
        dirty_rate=float(os.environ.get("AIGC_DIRTY_RATE", "0")),
        closed_loop=shop_loop() == "closed",
    )


SHOP_LOOPS = ("open", "closed")


def shop_loop() -> str:
    """``open``: the store ignores what the platform serves; ``closed``: it answers it (``AIGC_SHOP_LOOP``)."""
    loop = os.environ.get("AIGC_SHOP_LOOP", "open").strip().lower() or "open"
    if loop not in SHOP_LOOPS:
        raise ValueError(f"AIGC_SHOP_LOOP={loop!r} is not one of {SHOP_LOOPS}")
    return loop


def prepare_dagster_home() -> Path:
    """Create ``DAGSTER_HOME`` and install the project's instance config for the active environment into it.

    Call :func:`orchestration.instance.prepare_instance` (``python -m orchestration.instance``) instead: it also
    registers the warehouse pool's limit, without which the first queued runs can collide."""
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    shipped = (
        REPO_ROOT / "orchestration" / ("dagster.prod.yaml" if environment() == "prod" else "dagster.yaml")
    )
    (home / "dagster.yaml").write_text(shipped.read_text())
    return home


LOCAL_PII_KEY = "local-development-key"
"""The pseudonymisation key when ``AIGC_PII_KEY`` is unset: public, so local pseudonyms protect nothing."""


def pii_key() -> str:
    """The secret of the keyed hash that replaces e-mails and phone numbers in staging: only from the
    environment. In ``prod`` it must be set; locally the public default is used, with a loud warning."""
    key = os.environ.get("AIGC_PII_KEY")
    if key:
        return key
    if environment() == "prod":
        raise RuntimeError("AIGC_ENV=prod needs AIGC_PII_KEY: the secret of the pseudonyms of personal data")
    logging.getLogger("aigc.secrets").warning(
        "AIGC_PII_KEY is not set: personal data is pseudonymised with the PUBLIC local development key, which "
        "anyone can use to re-identify it. Set AIGC_PII_KEY to a secret outside local development."
    )
    return LOCAL_PII_KEY


def dbt_env(warehouse: str | Path | None = None) -> dict[str, str]:
    """Environment variables that dbt's ``profiles.yml`` and macros read: the target, the warehouse path, its
    memory limit and the pseudonymisation key (:func:`pii_key`)."""
    return {
        "AIGC_WAREHOUSE_PATH": str(warehouse or warehouse_path()),
        "AIGC_DUCKDB_MEMORY_LIMIT": warehouse_memory_limit(),
        "AIGC_DBT_TARGET": environment(),
        "AIGC_PII_KEY": pii_key(),
    }


def _main(argv: list[str]) -> int:
    commands = {
        "warehouse-path": warehouse_path,
        "data-dir": data_dir,
        "dagster-home": dagster_home,
        "environment": environment,
    }
    if len(argv) != 1 or argv[0] not in commands:
        print(f"usage: python -m ml.settings {{{'|'.join(commands)}}}", file=sys.stderr)
        return 2
    print(commands[argv[0]]())
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
