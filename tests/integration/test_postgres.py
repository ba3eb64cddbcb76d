"""The platform on PostgreSQL: migrations, the audit log, the key service and the engine.

Each test gets an empty ``public`` schema on the session's throwaway cluster (``pg_url`` of
tests/servers/postgres.py, which skips locally when PostgreSQL is not installed). The same
behaviour on SQLite is tested next to each module in tests/platform/.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import inspect, text, update

from tests.factories import FAST_SCRYPT_N, PASSPHRASE
from tests.migration_checks import (
    check_migrate_is_idempotent_and_adopts_old_databases,
    check_upgrade_matches_models_and_downgrades,
)
from veilchain.errors import DecryptionError, KeystoreError
from veilchain.platform.audit import AuditLog
from veilchain.platform.audit_entries import AuditRow
from veilchain.platform.db import Base, make_engine, make_session_factory
from veilchain.platform.keys import (
    KeyManager,
    PassphraseSource,
    decrypt_with_data_key,
    generate_keypair,
    open_sealed_key,
)
from veilchain.platform.migrations import migrate

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_engine(pg_url):
    """An engine on an empty schema (the cluster is shared by the session)."""
    engine = make_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    yield engine
    engine.dispose()


@pytest.fixture
def pg_session_factory(pg_engine):
    """A session factory on the migrated schema."""
    migrate(pg_engine)
    return make_session_factory(pg_engine)


# --- migrations ----------------------------------------------------------------------------
def test_upgrade_matches_models_and_downgrades(pg_engine):
    check_upgrade_matches_models_and_downgrades(pg_engine)


def test_migrate_is_idempotent_and_adopts_databases_made_before_migrations(pg_engine):
    check_migrate_is_idempotent_and_adopts_old_databases(pg_engine)


# --- engine --------------------------------------------------------------------------------
def test_postgres_round_trip(pg_engine, widget_model):
    Base.metadata.create_all(pg_engine, tables=[widget_model.__table__])
    assert "test_db_widgets" in inspect(pg_engine).get_table_names()
    with pg_engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1


# --- audit log -----------------------------------------------------------------------------
def test_postgres_concurrent_appends_and_tamper(pg_session_factory):
    sf = pg_session_factory
    audit = AuditLog(sf)

    def worker(n):
        for i in range(30):
            audit.append("release", actor=f"t{n}", subject="ds", details={"i": i})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert audit.verify().ok and audit.head()[0] == 120
    with sf() as s:
        s.execute(update(AuditRow).where(AuditRow.seq == 77).values(actor="mallory"))
        s.commit()
    assert audit.verify().first_bad_seq == 77


# --- key service ---------------------------------------------------------------------------
def test_postgres_backend_full_cycle(pg_session_factory):
    audit = AuditLog(pg_session_factory)
    km = KeyManager(pg_session_factory, PassphraseSource(PASSPHRASE, n=FAST_SCRYPT_N), audit)
    results: dict[int, list[bytes]] = {}

    def worker(n: int) -> None:
        items = [(f"t{n}-{i}", f"image {n}/{i}".encode()) for i in range(20)]
        results[n] = km.encrypt_many(items, dataset="pg")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(km.images_with_keys("pg")) == 80
    assert km.rotate() == 2
    assert km.rewrap(batch=7) == 80
    km.set_min_decryption_version(2)
    for n, cts in results.items():
        pairs = [(f"t{n}-{i}", ct) for i, ct in enumerate(cts)]
        assert km.decrypt_many(pairs, dataset="pg") == [
            f"image {n}/{i}".encode() for i in range(20)
        ]
    with pytest.raises(DecryptionError):
        km.decrypt(results[0][0], dataset="pg", image="t0-1")
    sk, pk = generate_keypair()
    key = open_sealed_key(
        km.release_sealed(dataset="pg", image="t1-0", recipient_public_key=pk), sk
    )
    assert decrypt_with_data_key(results[1][0], key, dataset="pg", image="t1-0") == b"image 1/0"
    assert km.delete_keys("pg", ["t0-0"]) == 1
    with pytest.raises(KeystoreError):
        KeyManager(pg_session_factory, PassphraseSource("wrong", n=FAST_SCRYPT_N), audit)
    assert audit.verify().ok and [e.event for e in audit.query()] == [
        "rotation",
        "rewrap",
        "retire",
        "key_deletion",
    ]
