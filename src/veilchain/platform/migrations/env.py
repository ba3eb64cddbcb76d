"""Alembic environment: the shared Base metadata, an engine from the caller or the URL."""

from __future__ import annotations

from alembic import context

from veilchain.platform.db import make_engine
from veilchain.platform.migrations.models import load_models

config = context.config
target_metadata = load_models()


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from veilchain.config import get_settings

        url = get_settings().db_url
    return url


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = config.attributes.get("engine") or make_engine(_url())
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
