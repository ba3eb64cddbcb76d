"""Platform test fixtures: a fresh SQLite database and its audit log (``sample_inputs`` is in
the top-level conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from veilchain.config import Settings
from veilchain.platform.audit import AuditLog
from veilchain.platform.db import make_engine, make_session_factory
from veilchain.platform.migrations import migrate


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
