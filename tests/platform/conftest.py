"""Shared builders for the platform tests: sample inputs and a service in a temp dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from veilchain.config import Settings
from veilchain.platform.demo import samples_dir

SAMPLE_NAMES = ("astronaut.jpg", "obama.jpg", "biden.jpg")


@pytest.fixture(scope="session")
def sample_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real photos that ship with the package (see data/samples/SOURCES.md)."""
    d = tmp_path_factory.mktemp("inputs")
    for name in SAMPLE_NAMES:
        shutil.copy(samples_dir() / name, d / name)
    return d


def make_settings(data_dir: Path, **kw) -> Settings:
    return Settings(data_dir=data_dir, env="test", **kw)
