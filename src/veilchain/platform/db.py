"""Database plumbing shared by every platform table: one declarative ``Base`` and engine helpers.

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy timeout, so
several threads and processes can share one file. PostgreSQL URLs (``postgresql://`` or
``postgresql+psycopg://``) use psycopg 3. Tables register themselves on :class:`Base` when
their module is imported; the schema is created and upgraded by the Alembic migrations
(``platform/migrations``, :func:`veilchain.platform.migrations.migrate`), the only schema path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.engine import URL, CursorResult, Result, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from veilchain.errors import ConfigError

DEFAULT_BUSY_TIMEOUT_S = 30.0

_NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every Veilchain table."""

    metadata = MetaData(naming_convention=_NAMING_CONVENTION)


def _normalize_url(url: str | URL) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"invalid database URL {str(url)!r}; use sqlite:///PATH or postgresql://USER@HOST/DB"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        # psycopg 3 is the supported driver (psycopg2/asyncpg are not installed).
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise ConfigError(
            f"unsupported database {backend!r}; use a sqlite:/// or postgresql:// URL"
        )
    return parsed


def _install_sqlite_pragmas(engine: Engine, *, in_memory: bool, busy_timeout_s: float) -> None:
    busy_ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # pragma: no cover - exercised via tests
        cur = dbapi_conn.cursor()
        try:
            if not in_memory:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        finally:
            cur.close()


def _private_sqlite_file(path: Path) -> None:
    """Create the database file 0600 (SQLite gives its -wal/-shm files the same mode), or
    tighten an existing one: it holds wrapped keys, sessions and the audit log."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if p.exists() and p.stat().st_mode & 0o077:
                p.chmod(0o600)
    except OSError:
        pass  # read-only or mode-less filesystem: SQLite reports what matters


def make_engine(
    url: str | URL, *, echo: bool = False, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S
) -> Engine:
    """Create an engine for a SQLite or PostgreSQL URL with Veilchain's connection settings."""
    parsed = _normalize_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
            if not in_memory:
                _private_sqlite_file(Path(database).expanduser())
            engine = create_engine(
                parsed,
                echo=echo,
                connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
            )
            _install_sqlite_pragmas(engine, in_memory=in_memory, busy_timeout_s=busy_timeout_s)
            return engine
        return create_engine(parsed, echo=echo, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"the driver for {parsed.drivername} is missing; pip install 'veilchain[postgres]'"
        ) from exc
    except (ArgumentError, SQLAlchemyError) as exc:
        raise ConfigError(f"cannot create a database engine: {first_line(exc)}") from exc


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine``; objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def first_line(exc: BaseException) -> str:
    """The first line of a database error (its driver's message when it has one)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def engine_of(session_factory: sessionmaker[Session]) -> Engine:
    """The engine a session factory is bound to."""
    bind = session_factory.kw.get("bind")
    if not isinstance(bind, Engine):
        raise ConfigError("the session factory is not bound to an engine; use make_session_factory")
    return bind


def affected_rows(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE touched.

    ``Session.execute`` is typed as returning ``Result``; for DML it is a ``CursorResult``,
    which carries ``rowcount``.
    """
    return cast(CursorResult[Any], result).rowcount
