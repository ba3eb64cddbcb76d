"""Alembic migrations over the shared ``Base`` metadata, and :func:`migrate` for start-up.

``alembic upgrade head`` (alembic.ini at the repository root) and :func:`migrate` run the same
scripts; it is the only way the schema is created, for a fresh SQLite file too. A database
created before migrations existed (tables but no ``alembic_version``) had the first schema:
it is stamped at 0001 and upgraded from there.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from veilchain.errors import ConfigError
from veilchain.platform.db import first_line

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
    try:
        tables = set(inspect(engine).get_table_names())
        cfg = alembic_config(engine)
        if tables and "alembic_version" not in tables:
            command.stamp(cfg, "0001")  # made by create_all from the first schema
        command.upgrade(cfg, "head")
        # Tables registered after the newest migration (tests check there are none) appear.
        metadata.create_all(engine)
    except SQLAlchemyError as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise ConfigError(
            f"cannot initialise the database {where}: {first_line(exc)}; check VEILCHAIN_DB__URL"
        ) from exc
