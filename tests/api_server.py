"""The read API started as a real server on a free local port, over a given exports folder."""

from __future__ import annotations

import json
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from api.local import serve_locally


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
def running_api(exports_root: Path, env: dict | None = None) -> Iterator[RunningAPI]:
    """``python -m api.app`` reading ``exports_root`` (extra environment ``env``), logging to a file the test can
    read; yields it, stops it after."""
    log_path = Path(tempfile.mkstemp(prefix="api-", suffix=".log")[1])
    try:
        with serve_locally(exports_root, env, log_path) as base:
            yield RunningAPI(base, log_path)
    finally:
        log_path.unlink(missing_ok=True)


REQUEST_TIMEOUT_S = 180


def get(url: str, headers: dict | None = None) -> tuple[int, dict]:
    """(status, JSON body) of a GET, errors included."""
    status, body, _ = get_full(url, headers)
    return status, body


def get_full(url: str, headers: dict | None = None) -> tuple[int, dict, Message]:
    """(status, JSON body, response headers: names in any case) of a GET, errors included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        # generous: the first search of a server loads the text encoder, slow on a machine busy with other work
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as r:
            return r.status, json.loads(r.read()), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers
