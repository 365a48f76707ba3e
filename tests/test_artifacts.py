"""The artifact store: atomic writes, listings that ignore half-written leftovers, content hashes."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest

from ml.artifacts import ArtifactStore


def _folder_writer(text: str):
    def write(folder):
        (folder / "manifest.json").write_text(text)
        (folder / "models.pkl").write_bytes(text.encode() * 3)

    return write


def test_a_failed_write_leaves_the_previous_artifact_whole(tmp_path):
    store = ArtifactStore(tmp_path)
    first = store.write("bundles", "2025-01-02", _folder_writer("one"), folder=True)

    def crash(folder):
        (folder / "manifest.json").write_text("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="mid-write"):
        store.write("bundles", "2025-01-02", crash, folder=True)
    assert (first.path / "manifest.json").read_text() == "one"
    assert store.info("bundles", "2025-01-02") == first
    assert sorted(p.name for p in (tmp_path / "bundles").iterdir()) == ["2025-01-02"]  # nothing left behind


def test_replacing_a_folder_and_a_file(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("bundles", "2025-01-02", _folder_writer("one"), folder=True)
    second = store.write("bundles", "2025-01-02", _folder_writer("two"), folder=True)
    assert (second.path / "manifest.json").read_text() == "two"
    info = store.save_pickle("selections", "s.pkl", {"a": 1})
    assert store.load_pickle("selections", "s.pkl") == {"a": 1}
    assert info.sha256 == hashlib.sha256(info.path.read_bytes()).hexdigest()
    assert info.size_bytes == info.path.stat().st_size
    assert second.size_bytes == len("two") + 3 * len("two")


def test_listings_skip_leftovers_of_a_killed_writer_and_undated_names(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("bundles", "2025-01-03", _folder_writer("x"), folder=True)
    store.write("bundles", "notes", lambda p: p.write_text("n"))
    (tmp_path / "bundles" / ".tmp-2025-01-04-123-abcd").mkdir()  # a writer killed before its rename
    assert store.names("bundles") == ["2025-01-03", "notes"]
    assert store.dated("bundles") == [(date(2025, 1, 3), "2025-01-03")]
    assert not store.exists("bundles", "2025-01-04")
    store.write("bundles", "2025-01-04", _folder_writer("y"), folder=True)  # clears the leftover
    assert sorted(p.name for p in (tmp_path / "bundles").iterdir()) == ["2025-01-03", "2025-01-04", "notes"]
    store.delete("bundles", "2025-01-03")
    assert store.names("bundles") == ["2025-01-04", "notes"] and store.names("missing") == []
    with pytest.raises(ValueError):
        store.path("bundles", "../escape")
