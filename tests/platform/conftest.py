"""Platform test fixtures: a fresh SQLite database and its audit log (``sample_inputs`` is in
the top-level conftest.py)."""

from __future__ import annotations

import pytest

from veilchain.platform.audit import AuditLog
from veilchain.platform.db import make_engine, make_session_factory
from veilchain.platform.migrations import migrate


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
