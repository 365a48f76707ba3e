"""The one store of model artifacts: fitted recommender bundles, stored forecast selections.

Every artifact lives at ``<root>/<kind>/<name>`` (a file or a folder) and is written atomically: the writer fills
a temporary sibling that is renamed into place only once complete, so a reader (or a run started after a
crash) sees either the previous complete artifact or the new complete one, never a half-written one; leftovers
of a killed writer are hidden names that :meth:`ArtifactStore.names` ignores and the next write of the same
name clears. :meth:`ArtifactStore.info` gives the path, size and content hash that the assets show in their
metadata.

Dated artifacts (one per day, named ``YYYY-MM-DD``) are listed by :meth:`ArtifactStore.dated` and deleted by
retention only (:func:`ml.recommend.bundles.expired_bundles`), never by the steps that read them.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

_TMP = ".tmp-"
_OLD = ".old-"


@dataclass(frozen=True)
class ArtifactInfo:
    path: Path
    size_bytes: int
    sha256: str
    """Content hash: of the file, or of a folder's files (relative names and bytes, in name order)."""

    def as_metadata(self) -> dict[str, Any]:
        return {"path": str(self.path), "size_bytes": self.size_bytes, "sha256": self.sha256}


class ArtifactStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, kind: str, name: str) -> Path:
        if not name or name.startswith(".") or "/" in name or "/" in kind:
            raise ValueError(f"not an artifact name: {kind!r}/{name!r}")
        return self.root / kind / name

    def exists(self, kind: str, name: str) -> bool:
        return self.path(kind, name).exists()

    def names(self, kind: str) -> list[str]:
        """The complete artifacts of ``kind``, in name order."""
        folder = self.root / kind
        if not folder.is_dir():
            return []
        return sorted(entry.name for entry in folder.iterdir() if not entry.name.startswith("."))

    def dated(self, kind: str) -> list[tuple[date, str]]:
        """The artifacts of ``kind`` named by a day (``YYYY-MM-DD``), oldest first; other names are skipped."""
        out = []
        for name in self.names(kind):
            try:
                out.append((date.fromisoformat(name), name))
            except ValueError:
                continue
        return out

    def write(
        self, kind: str, name: str, writer: Callable[[Path], None], folder: bool = False
    ) -> ArtifactInfo:
        """Write an artifact atomically: ``writer(path)`` fills a temporary file (or, with ``folder``, a temporary
        folder), which then replaces ``kind/name``."""
        final = self.path(kind, name)
        final.parent.mkdir(parents=True, exist_ok=True)
        for stale in final.parent.glob(f"{_TMP}{name}-*"):
            _remove(stale)
        tmp = final.with_name(f"{_TMP}{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            if folder:
                tmp.mkdir()
            writer(tmp)
            if folder and final.exists():
                # a folder cannot replace another in one rename: move the old one aside first
                old = final.with_name(f"{_OLD}{name}-{uuid.uuid4().hex[:8]}")
                final.rename(old)
                tmp.rename(final)
                _remove(old)
            else:
                os.replace(tmp, final)
        except BaseException:
            _remove(tmp)
            raise
        return self.info(kind, name)

    def save_pickle(self, kind: str, name: str, obj: Any) -> ArtifactInfo:
        def dump(path: Path) -> None:
            with path.open("wb") as fh:
                pickle.dump(obj, fh)

        return self.write(kind, name, dump)

    def load_pickle(self, kind: str, name: str) -> Any:
        with self.path(kind, name).open("rb") as fh:
            return pickle.load(fh)

    def info(self, kind: str, name: str) -> ArtifactInfo:
        path = self.path(kind, name)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        digest = hashlib.sha256()
        size = 0
        for f in files:
            digest.update(f.relative_to(path).as_posix().encode() if path.is_dir() else b"")
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
                    size += len(chunk)
        return ArtifactInfo(path=path, size_bytes=size, sha256=digest.hexdigest())

    def delete(self, kind: str, name: str) -> None:
        _remove(self.path(kind, name))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
