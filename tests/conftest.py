"""Shared fixtures: every test that touches data works in its own temporary data directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Library progress bars and Dagster's telemetry only add noise to test output.
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh AIGC_DATA_DIR for one test."""
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"
