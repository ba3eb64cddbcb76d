"""Alembic migrations over the shared ``Base`` metadata, and :func:`migrate` for start-up.

``alembic upgrade head`` (alembic.ini at the repository root) and :func:`migrate` run the same
scripts. A database that ``init_db`` created before migrations existed (no ``alembic_version``
table) is brought up to the metadata with ``create_all`` and stamped at head.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the database at ``engine`` to the newest schema."""
    from veilchain.platform.migrations.models import load_models

    metadata = load_models()
    tables = set(inspect(engine).get_table_names())
    cfg = alembic_config(engine)
    if tables and "alembic_version" not in tables:
        metadata.create_all(engine)
        command.stamp(cfg, "head")
        return
    command.upgrade(cfg, "head")
    # Tables registered after the newest migration (tests check there are none) still appear.
    metadata.create_all(engine)
