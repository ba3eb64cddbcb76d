"""Alembic migrations on SQLite: upgrade, no drift from the models, downgrade, adoption of an
old database. The same checks on PostgreSQL are in tests/integration/test_postgres.py."""

from __future__ import annotations

import pytest

from tests.migration_checks import (
    check_migrate_is_idempotent_and_adopts_old_databases,
    check_upgrade_matches_models_and_downgrades,
)
from veilchain.platform.db import make_engine


@pytest.fixture
def engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    yield eng
    eng.dispose()


def test_upgrade_matches_models_and_downgrades(engine):
    check_upgrade_matches_models_and_downgrades(engine)


def test_migrate_is_idempotent_and_adopts_databases_made_before_migrations(engine):
    check_migrate_is_idempotent_and_adopts_old_databases(engine)
