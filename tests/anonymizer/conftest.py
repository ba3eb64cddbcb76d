"""Shared fixtures for the anonymizer tests: real dlib models, the shipped sample photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import veilchain
from veilchain.anonymizer.embedding import FaceEmbedder
from veilchain.anonymizer.faces import HogDetector
from veilchain.anonymizer.image_io import load_image

SAMPLES = Path(veilchain.__file__).parent / "data" / "samples"


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    """CLI commands keep their data directory (the anonymizer's secret) in the test's tmp."""
    monkeypatch.setenv("VEILCHAIN_DATA_DIR", str(tmp_path / "veilchain-data"))


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def detector() -> HogDetector:
    return HogDetector()


@pytest.fixture(scope="session")
def embedder() -> FaceEmbedder:
    return FaceEmbedder()


@pytest.fixture(scope="session")
def sample():
    """Load a sample photo by file name (cached)."""
    cache: dict[str, np.ndarray] = {}

    def get(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = load_image(SAMPLES / name)
        return cache[name].copy()

    return get
