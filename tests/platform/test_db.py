"""Engine helpers: SQLite pragmas, URL handling, table creation, PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from veilchain.errors import ConfigError
from veilchain.platform.db import Base, engine_of, make_engine, make_session_factory
from veilchain.platform.migrations import migrate


def test_sqlite_file_gets_wal_foreign_keys_and_busy_timeout(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    assert (tmp_path / "nested" / "dir" / "x.db").exists()
    engine.dispose()


def test_engine_and_session_factory_work(tmp_path, widget_model):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    Base.metadata.create_all(engine, tables=[widget_model.__table__])
    assert "test_db_widgets" in inspect(engine).get_table_names()
    sf = make_session_factory(engine)
    assert engine_of(sf) is engine
    with sf() as s:
        w = widget_model(name="a")
        s.add(w)
        s.commit()
        assert w.name == "a"  # not expired on commit
    engine.dispose()


def test_in_memory_sqlite():
    engine = make_engine("sqlite://")
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1


@pytest.mark.parametrize(
    "url", ["postgresql://u:p@localhost/db", "postgresql+psycopg2://u@h/db", "postgres://u@h/db"]
)
def test_postgres_urls_use_psycopg3(url):
    if url.startswith("postgres://"):
        with pytest.raises(ConfigError):
            make_engine(url)
        return
    engine = make_engine(url)  # no connection is made
    assert engine.url.drivername == "postgresql+psycopg"


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url"])
def test_unsupported_or_invalid_urls_are_config_errors(url):
    with pytest.raises(ConfigError) as err:
        make_engine(url)
    assert "\n" not in str(err.value)


def test_unreachable_postgres_is_a_config_error():
    engine = make_engine("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(ConfigError, match="VEILCHAIN_DB__URL"):
        migrate(engine)
