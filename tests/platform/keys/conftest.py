"""Fixtures for the key service: a real SQLite database and a fast scrypt keystore."""

from __future__ import annotations

import pytest

from veilchain.platform.db import make_engine, make_session_factory
from veilchain.platform.keys import KeyManager, PassphraseSource
from veilchain.platform.migrations import migrate

PASSPHRASE = "correct horse battery staple"
FAST_SCRYPT_N = 2**14  # tests only; the default is 2**17


@pytest.fixture
def km(session_factory, audit):
    return KeyManager(session_factory, PassphraseSource(PASSPHRASE, n=FAST_SCRYPT_N), audit)


@pytest.fixture
def pg_session_factory(request):
    """A session factory on the PostgreSQL server of tests/servers/postgres.py, in a fresh
    schema; skipped when that fixture or the server is unavailable."""
    try:
        url = request.getfixturevalue("pg_url")
    except pytest.FixtureLookupError:
        pytest.skip("PostgreSQL fixture pg_url is not available (tests/servers/postgres.py)")
    from sqlalchemy import text

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate(engine)
    yield make_session_factory(engine)
    engine.dispose()
