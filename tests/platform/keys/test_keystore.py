"""Master keys: passphrase/raw-key keystores, rotation, rewrap and retirement."""

from __future__ import annotations

import json
import os
import secrets

import pytest
from sqlalchemy import select, update

from tests.factories import FAST_SCRYPT_N, PASSPHRASE
from veilchain.errors import ConfigError, KeystoreError, KeyVersionError
from veilchain.platform.keys import KeyManager, PassphraseSource, RawKeySource, build_key_manager
from veilchain.platform.keys.keystore import DEFAULT_SCRYPT_N
from veilchain.platform.keys.tables import DATA_KEYS, KEK_VERSIONS, KEYSTORE


def _versions(session_factory, dataset=None) -> dict[str, int]:
    stmt = select(DATA_KEYS.c.image, DATA_KEYS.c.kek_version)
    if dataset:
        stmt = stmt.where(DATA_KEYS.c.dataset == dataset)
    with session_factory() as s:
        return dict(s.execute(stmt).all())


def test_scrypt_parameters_and_salt_are_stored(km, session_factory):
    with session_factory() as s:
        row = s.execute(select(KEYSTORE)).one()
        kek = s.execute(select(KEK_VERSIONS)).one()
    kdf = json.loads(row.kdf)
    assert kdf["name"] == "scrypt" and kdf["n"] == FAST_SCRYPT_N and kdf["r"] == 8
    assert len(bytes.fromhex(row.keystore_id)) == 16 and len(kdf["salt"]) == 24  # 16 bytes
    assert len(kek.wrapped) == 12 + 32 + 16


def test_default_scrypt_cost_is_memory_hard(tmp_path):
    km = build_key_manager(data_dir=tmp_path, passphrase=PASSPHRASE)
    assert DEFAULT_SCRYPT_N >= 2**17
    assert km.status().kdf == "scrypt"


def test_wrong_passphrase_is_a_one_line_keystore_error(km, session_factory, audit):
    with pytest.raises(KeystoreError) as err:
        KeyManager(session_factory, PassphraseSource("not the passphrase", n=FAST_SCRYPT_N), audit)
    assert "wrong KMS passphrase" in str(err.value) and "\n" not in str(err.value)
    # The stored cost parameters are used, not the caller's: the right passphrase still opens.
    KeyManager(session_factory, PassphraseSource(PASSPHRASE, n=2**10), audit)


def test_raw_master_key_from_hex(tmp_path):
    hex_key = secrets.token_hex(32)
    km = build_key_manager(data_dir=tmp_path, master_key_hex=hex_key, passphrase="ignored")
    ct = km.encrypt(b"raw", dataset="ds", image="a")
    assert km.status().kdf == "raw-hkdf-sha256"
    again = build_key_manager(data_dir=tmp_path, master_key_hex="0x" + hex_key.upper())
    assert again.decrypt(ct, dataset="ds", image="a") == b"raw"
    with pytest.raises(KeystoreError, match="wrong KMS passphrase or master key"):
        build_key_manager(data_dir=tmp_path, master_key_hex=secrets.token_hex(32))
    with pytest.raises(KeystoreError, match="created with a raw master key"):
        build_key_manager(data_dir=tmp_path, passphrase=PASSPHRASE)
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("veilchain.db*"))
    assert bytes.fromhex(hex_key) not in blob and hex_key.encode() not in blob


def test_passphrase_keystore_refuses_raw_key(km, session_factory, audit):
    with pytest.raises(KeystoreError, match="created with a passphrase"):
        KeyManager(session_factory, RawKeySource(os.urandom(32)), audit)


@pytest.mark.parametrize("bad", ["", "abcd", "zz" * 32, "00" * 31])
def test_bad_master_key_hex_is_config_error(tmp_path, bad):
    with pytest.raises(ConfigError):
        build_key_manager(data_dir=tmp_path, master_key_hex=bad or None, passphrase=bad or None)


def test_tampered_kek_record_is_refused(km, session_factory, audit):
    with session_factory() as s:
        wrapped = bytearray(s.execute(select(KEK_VERSIONS.c.wrapped)).scalar())
        wrapped[20] ^= 1
        s.execute(update(KEK_VERSIONS).values(wrapped=bytes(wrapped)))
        s.commit()
    with pytest.raises(KeystoreError):
        KeyManager(session_factory, PassphraseSource(PASSPHRASE, n=FAST_SCRYPT_N), audit)


def test_rotation_rewrap_and_retirement(km, session_factory, audit):
    old = {f"i{n}": os.urandom(100) for n in range(7)}
    cts = dict(zip(old, km.encrypt_many(list(old.items()), dataset="ds"), strict=True))
    stay = km.encrypt(b"other dataset", dataset="ds2", image="x")

    assert km.rotate() == 2
    new_ct = km.encrypt(b"new", dataset="ds", image="new")
    assert _versions(session_factory, "ds") == {**dict.fromkeys(old, 1), "new": 2}
    # Old versions still decrypt before any rewrap.
    assert km.decrypt(cts["i0"], dataset="ds", image="i0") == old["i0"]

    # Retiring version 1 is refused while keys still depend on it.
    with pytest.raises(KeyVersionError, match="rewrap first"):
        km.set_min_decryption_version(2)

    with session_factory() as s:
        before = dict(
            s.execute(
                select(DATA_KEYS.c.image, DATA_KEYS.c.wrapped).where(DATA_KEYS.c.dataset == "ds")
            ).all()
        )
    assert km.rewrap("ds", batch=3) == 7  # several batches, only this dataset
    assert set(_versions(session_factory, "ds").values()) == {2}
    assert _versions(session_factory, "ds2") == {"x": 1}
    with session_factory() as s:
        after = dict(s.execute(select(DATA_KEYS.c.image, DATA_KEYS.c.wrapped)).all())
    assert all(after[i] != before[i] for i in old) and after["new"] == before["new"]
    assert km.rewrap("ds") == 0  # idempotent

    # Force-retire version 1: ds2/x (never rewrapped) is refused, ds still decrypts.
    km.set_min_decryption_version(2, force=True)
    for image, data in old.items():
        assert km.decrypt(cts[image], dataset="ds", image=image) == data
    assert km.decrypt(new_ct, dataset="ds", image="new") == b"new"
    with pytest.raises(KeyVersionError, match="retired master key version 1") as err:
        km.decrypt(stay, dataset="ds2", image="x")
    assert "\n" not in str(err.value)
    assert km.rewrap() == 0  # retired keys cannot be rewrapped any more

    status = km.status()
    assert (status.current_version, status.min_decryption_version) == (2, 2)
    assert [(v.version, v.state, v.data_keys) for v in status.versions] == [
        (1, "retired", 1),
        (2, "current", 8),
    ]
    assert json.loads(json.dumps(status.to_dict()))["current_version"] == 2

    events = [(e.event, e.details) for e in audit.query()]
    assert events[0] == ("rotation", {"version": 2, "previous_version": 1})
    assert events[1][0] == "rewrap" and events[1][1]["rewrapped"] == 7
    retire = [d for name, d in events if name == "retire"]
    assert retire == [{"min_decryption_version": 2, "previous_min": 1, "stranded_data_keys": 1}]
    assert audit.verify().ok


def test_min_decryption_version_bounds(km):
    with pytest.raises(KeyVersionError):
        km.set_min_decryption_version(2)  # beyond the current version
    km.rotate()
    km.set_min_decryption_version(2)
    with pytest.raises(KeyVersionError, match="never goes down"):
        km.set_min_decryption_version(1)


def test_rewrap_all_datasets_after_two_rotations(km, session_factory):
    cts = [km.encrypt(b"a", dataset=f"ds{n}", image="img") for n in range(4)]
    km.rotate()
    km.encrypt(b"b", dataset="ds0", image="img2")
    km.rotate()
    assert km.rewrap(batch=2) == 5
    assert set(_versions(session_factory).values()) == {3}
    km.set_min_decryption_version(3)
    assert [km.decrypt(c, dataset=f"ds{n}", image="img") for n, c in enumerate(cts)] == [b"a"] * 4


def test_rekey_root_changes_the_passphrase(km, session_factory, audit):
    ct = km.encrypt(b"kept", dataset="ds", image="a")
    km.rotate()
    ct2 = km.encrypt(b"kept too", dataset="ds", image="b")
    with session_factory() as s:
        before = dict(s.execute(select(KEK_VERSIONS.c.version, KEK_VERSIONS.c.wrapped)).all())
    km.rekey_root(PassphraseSource("a new passphrase", n=FAST_SCRYPT_N))
    with session_factory() as s:
        after = dict(s.execute(select(KEK_VERSIONS.c.version, KEK_VERSIONS.c.wrapped)).all())
    assert before.keys() == after.keys() and all(before[v] != after[v] for v in before)
    assert km.rotate() == 3  # the new root wraps new versions too
    with pytest.raises(KeystoreError):
        KeyManager(session_factory, PassphraseSource(PASSPHRASE, n=FAST_SCRYPT_N), audit)
    fresh = KeyManager(session_factory, PassphraseSource("a new passphrase"), audit)
    assert fresh.decrypt(ct, dataset="ds", image="a") == b"kept"
    assert fresh.decrypt(ct2, dataset="ds", image="b") == b"kept too"
    hex_key = secrets.token_hex(32)
    fresh.rekey_root(RawKeySource.from_hex(hex_key))
    raw = KeyManager(session_factory, RawKeySource.from_hex(hex_key), audit)
    assert raw.decrypt(ct, dataset="ds", image="a") == b"kept"
    assert raw.status().kdf == "raw-hkdf-sha256"
    assert [e.details for e in audit.query(event="root_rekey")] == [
        {"kdf": "scrypt"},
        {"kdf": "raw-hkdf-sha256"},
    ]
    assert audit.verify().ok
