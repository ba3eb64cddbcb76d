"""Shared builders for the platform tests: sample inputs and a service in a temp dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from veilchain.config import Settings
from veilchain.platform.audit import AuditLog
from veilchain.platform.db import make_engine, make_session_factory
from veilchain.platform.demo import samples_dir
from veilchain.platform.migrations import migrate

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


@pytest.fixture
def session_factory(tmp_path):
    """A fresh SQLite database with every registered table."""
    engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    migrate(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def audit(session_factory):
    return AuditLog(session_factory)
