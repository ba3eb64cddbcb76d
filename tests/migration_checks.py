"""The migration checks, run on SQLite (tests/platform/api/test_migrations.py) and on
PostgreSQL (tests/integration/test_postgres.py): upgrade, no drift from the models,
downgrade, and adoption of a database made before migrations."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from veilchain.platform.migrations import alembic_config, migrate
from veilchain.platform.migrations.models import load_models


def _diff(engine) -> list:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, load_models())


def check_upgrade_matches_models_and_downgrades(engine) -> None:
    cfg = alembic_config(engine)
    command.upgrade(cfg, "head")
    tables = set(inspect(engine).get_table_names())
    assert {"auth_nonces", "api_keys", "jobs", "alembic_version"} <= tables
    assert _diff(engine) == [], "models changed without a migration: run alembic revision"
    command.downgrade(cfg, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}


def check_migrate_is_idempotent_and_adopts_old_databases(engine) -> None:
    command.upgrade(alembic_config(engine), "0001")  # the first schema, as create_all made it
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))  # before migrations existed
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert head == ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert _diff(engine) == []
