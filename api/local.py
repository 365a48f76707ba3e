"""The read API started as a real server on a free loopback port: what the tests and ``bench.api_load`` run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_locally(exports_root: Path, env: dict | None = None, log_path: Path | None = None) -> Iterator[str]:
    """``python -m api.app`` on 127.0.0.1 reading ``exports_root`` (extra environment ``env``); yields its base
    URL once ``/health`` answers, stops it afterwards.

    Its output goes to ``log_path`` (or nowhere), never to a pipe: a pipe nobody reads fills up and stalls a
    server that logs every request."""
    port = free_port()
    full_env = {**os.environ, "AIGC_EXPORTS_DIR": str(exports_root), **(env or {})}
    with open(log_path or os.devnull, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.app", "--port", str(port)],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/health", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # it answered (an error status, e.g. a response cap smaller than the health report)
            except OSError:
                if proc.poll() is not None:
                    detail = Path(log_path).read_text() if log_path else f"exit code {proc.returncode}"
                    raise RuntimeError(f"the API did not start: {detail}") from None
                if time.time() > deadline:
                    raise RuntimeError("the API did not start within 60 s") from None
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
