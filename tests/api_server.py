"""The read API started as a real server on a free local port, over a given exports folder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningAPI:
    """A started ``python -m api.app``: its base URL and what it has logged so far."""

    base: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __add__(self, path: str) -> str:  # ``api + "/health"`` as with a plain base URL
        return self.base + path

    def __str__(self) -> str:
        return self.base


@contextmanager
def running_api(exports_root: Path, env: dict | None = None, host: str = "127.0.0.1") -> Iterator[RunningAPI]:
    """``python -m api.app`` reading ``exports_root`` (extra environment ``env``); yields it, stops it after.

    Its output goes to a file, not a pipe: a pipe nobody reads fills up and stalls a server that logs every
    request."""
    port = free_port()
    full_env = {**os.environ, "AIGC_EXPORTS_DIR": str(exports_root), **(env or {})}
    log_path = Path(tempfile.mkstemp(prefix="api-", suffix=".log")[1])
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.app", "--host", host, "--port", str(port)],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(base + "/health", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(log_path.read_text()) from None
            time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError("the API did not start within 60 s")
    try:
        yield RunningAPI(base, log_path)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log_path.unlink(missing_ok=True)


def get(url: str, headers: dict | None = None) -> tuple[int, dict]:
    """(status, JSON body) of a GET, errors included."""
    status, body, _ = get_full(url, headers)
    return status, body


def get_full(url: str, headers: dict | None = None) -> tuple[int, dict, Message]:
    """(status, JSON body, response headers: names in any case) of a GET, errors included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read()), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers
