"""A day's fitted candidate recommenders, kept as one bundle in the artifact store.

The bundle of day D (artifact kind :data:`BUNDLES`, name ``YYYY-MM-DD``) holds every candidate fitted on the
events up to the end of D and what serving and explanations need; ``manifest.json`` beside the pickled models
says what went in (data window, params, versions, train seconds). Bundles are written atomically
(:class:`ml.artifacts.ArtifactStore`) and deleted only by retention (:func:`expired_bundles`).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.artifacts import ArtifactInfo, ArtifactStore
from ml.recommend.base import Recommender

BUNDLES = "recommend_bundles"
PACKAGE_VERSION = "recommend-1"


@dataclass
class CandidateModel:
    """One servable model of a bundle: ``bundle[name]``."""

    name: str
    version: str
    recommender: Recommender
    bundle: CandidateModels = field(repr=False)


@dataclass
class CandidateModels:
    """Models trained on one data window, with what serving and explanations need."""

    as_of: str
    version: str
    item_ids: np.ndarray
    models: dict[str, Recommender]
    versions: dict[str, str]
    regions: pd.Series
    titles: pd.Series
    categories: pd.Series
    trained_items: np.ndarray
    """Items with at least one interaction in the training window (the others are "new")."""
    similar: sp.csr_matrix
    """ItemKNN similarities over all events ("similar to X you viewed")."""
    manifest: dict[str, Any]
    path: Path | None = None

    def __getitem__(self, name: str) -> CandidateModel:
        return CandidateModel(name, self.versions[name], self.models[name], self)

    @property
    def names(self) -> list[str]:
        return list(self.models)

    def write_into(self, folder: Path) -> None:
        """Write the models and the manifest into ``folder`` (the store's temporary folder)."""
        with open(folder / "models.pkl", "wb") as fh:
            pickle.dump({k: v for k, v in self.__dict__.items() if k != "path"}, fh)
        (folder / "manifest.json").write_text(json.dumps(self.manifest, indent=2, default=str) + "\n")

    def save(self, store: ArtifactStore) -> ArtifactInfo:
        """Store the bundle as day ``as_of``'s (replacing one stored before); returns its path, size and hash."""
        info = store.write(BUNDLES, self.as_of, self.write_into, folder=True)
        self.path = info.path
        return info


def load_bundle(store: ArtifactStore, day: date) -> CandidateModels | None:
    """Day ``day``'s bundle, or None when it was never stored (or was deleted by retention)."""
    if not store.exists(BUNDLES, day.isoformat()):
        return None
    path = store.path(BUNDLES, day.isoformat())
    with open(path / "models.pkl", "rb") as fh:
        state = pickle.load(fh)
    # a bundle written by another package version may hold fields this one does not have
    known = {f.name for f in fields(CandidateModels)}
    return CandidateModels(**{k: v for k, v in state.items() if k in known}, path=path)


def expired_bundles(
    store: ArtifactStore, retention_days: int, protected: set[date] = frozenset()
) -> list[str]:
    """The bundles retention may delete: those older than the ``retention_days`` days ending on the newest
    bundle, except the ``protected`` days (what a run not yet finished still reads). The newest bundle is never
    expired: the next day warm-starts from it."""
    dated = store.dated(BUNDLES)
    if not dated:
        return []
    keep_from = dated[-1][0] - timedelta(days=retention_days - 1)
    return [name for day, name in dated if day < keep_from and day not in protected]


def bundle_version(name: str, as_of: str, params: Mapping[str, Any]) -> str:
    digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{name}-{as_of}-{digest}"
