"""Encrypted keystores: create, reload, wrong passphrase, corruption, names."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from veilchain.chain import Keystore, account_from_key
from veilchain.errors import InputError, KeystoreError

FAST_N = 2**12  # scrypt work factor for tests; the default is eth-account's 2**18


def test_get_or_create_persists_an_encrypted_key(tmp_path: Path) -> None:
    store = Keystore(tmp_path / "ks", "correct horse", scrypt_n=FAST_N)
    account = store.get_or_create("admin")
    path = store.path_of("admin")
    stored = json.loads(path.read_text())
    assert stored["address"].lower() == account.address[2:].lower()
    assert stored["crypto"]["kdf"] == "scrypt" and stored["crypto"]["kdfparams"]["n"] == FAST_N
    assert account.key.hex() not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Keystore(tmp_path / "ks", "correct horse").get_or_create("admin")
    assert again.address == account.address and again.key == account.key
    assert store.names() == ["admin"]


def test_wrong_passphrase_is_keystore_error(tmp_path: Path) -> None:
    Keystore(tmp_path, "right", scrypt_n=FAST_N).create("inst")
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        Keystore(tmp_path, "wrong").load("inst")
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        Keystore(tmp_path, "wrong").get_or_create("inst")


def test_missing_corrupt_duplicate_and_bad_names(tmp_path: Path) -> None:
    store = Keystore(tmp_path, "pw", scrypt_n=FAST_N)
    with pytest.raises(KeystoreError, match="no account 'ghost'"):
        store.load("ghost")
    store.path_of("broken").write_text("{not json")
    with pytest.raises(KeystoreError, match="corrupt"):
        store.load("broken")
    store.create("once")
    with pytest.raises(KeystoreError, match="already exists"):
        store.create("once")
    with pytest.raises(InputError):
        store.path_of("../escape")
    with pytest.raises(KeystoreError, match="empty"):
        Keystore(tmp_path, "")


def test_import_a_given_private_key(tmp_path: Path) -> None:
    key = "0x" + "11" * 32
    store = Keystore(tmp_path, "pw", scrypt_n=FAST_N)
    assert store.create("imported", key).address == account_from_key(key).address
    assert Keystore(tmp_path, "pw").load("imported").key.hex().endswith("11" * 32)
    with pytest.raises(KeystoreError, match="not a valid"):
        account_from_key("0x1234")
