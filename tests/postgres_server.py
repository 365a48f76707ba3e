"""A throwaway PostgreSQL server for tests: `initdb` into a temporary folder, `pg_ctl start` on a free loopback
port with password authentication, one database, stopped and removed afterwards. No mock: Debian's PostgreSQL
binaries (`postgresql` package; `pg_ctl` and `initdb` on the PATH or under /usr/lib/postgresql/*/bin).

PostgreSQL refuses to run as root; as root the server runs as the `postgres` system user (its folder is made
theirs), as anyone else it runs as that user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from api.local import free_port

USER = "aigc"
DATABASE = "dagster"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    database: str
    folder: Path

    def env(self) -> dict[str, str]:
        """The variables `orchestration/dagster.prod.yaml` reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.database,
        }

    def connect(self, database: str | None = None):
        import psycopg2

        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database or self.database,
        )

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with contextlib.closing(self.connect()) as con, con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()


def binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} was not found: install Debian's postgresql package")
    return str(found)


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def postgres_server(password: str = "aigc-test-password") -> Iterator[PostgresServer]:
    """Start a server, create the database, yield it; stop it and delete its files on exit."""
    # not under pytest's tmp_path: that folder is private to root, and the server may run as another user
    folder = Path(tempfile.mkdtemp(prefix="aigc-postgres-"))
    data, sockets, log = folder / "data", folder / "sockets", folder / "server.log"
    sockets.mkdir()
    (folder / "password").write_text(password)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
        shutil.chown(folder / "password", "postgres")
    port = free_port()
    started = False
    try:
        _run(
            [binary("initdb"), "-D", str(data), "-U", USER, f"--pwfile={folder / 'password'}"]
            + ["--auth=scram-sha-256", "--encoding=UTF8", "--no-instructions"],
            log,
        )
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        _run(
            [binary("pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start"], log
        )
        started = True
        server = PostgresServer("127.0.0.1", port, USER, password, DATABASE, folder)
        with contextlib.closing(server.connect("postgres")) as con:
            con.autocommit = True
            with con.cursor() as cur:
                cur.execute(f"CREATE DATABASE {DATABASE}")
        yield server
    finally:
        if started:
            subprocess.run(
                _as_server_user([binary("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                capture_output=True,
                check=False,
            )
        shutil.rmtree(folder, ignore_errors=True)


def _run(command: list[str], log: Path) -> None:
    done = subprocess.run(_as_server_user(command), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        server_log = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(
            f"{' '.join(command[:2])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{server_log}"
        )
