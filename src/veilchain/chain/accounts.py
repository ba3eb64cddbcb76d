"""Signing accounts kept as encrypted JSON keystores (the geth / eth-account format)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from veilchain.errors import InputError, KeystoreError

__all__ = ["Keystore", "account_from_key"]

DEFAULT_SCRYPT_N = 2**18  # eth-account's default work factor
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def account_from_key(private_key: str | bytes) -> LocalAccount:
    """A LocalAccount from a hex or raw private key; a bad key is a KeystoreError."""
    try:
        return Account.from_key(private_key)
    except (ValueError, TypeError) as exc:
        raise KeystoreError(
            "the private key is not a valid secp256k1 key; check VEILCHAIN_CHAIN__PRIVATE_KEY"
        ) from exc


class Keystore:
    """Named accounts in ``directory/<name>.json``, each encrypted under ``passphrase``."""

    def __init__(self, directory: Path, passphrase: str, *, scrypt_n: int = DEFAULT_SCRYPT_N):
        if not passphrase:
            raise KeystoreError("the keystore passphrase is empty; set a passphrase")
        self.directory = Path(directory)
        self._passphrase = passphrase
        self._scrypt_n = scrypt_n
        self._cache: dict[str, LocalAccount] = {}

    def path_of(self, name: str) -> Path:
        if not _NAME.match(name):
            raise InputError(f"account name {name!r} is invalid; use letters, digits, '_.-'")
        return self.directory / f"{name}.json"

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.json"))

    def exists(self, name: str) -> bool:
        return self.path_of(name).exists()

    def load(self, name: str) -> LocalAccount:
        """Decrypt the named account; wrong passphrase or corrupt file -> KeystoreError."""
        if name in self._cache:
            return self._cache[name]
        path = self.path_of(name)
        try:
            encrypted = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise KeystoreError(f"no account {name!r} in keystore {self.directory}") from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise KeystoreError(f"keystore file {path} is unreadable or corrupt") from exc
        try:
            key = Account.decrypt(encrypted, self._passphrase)
        except ValueError as exc:
            raise KeystoreError(
                f"cannot decrypt keystore {path}: wrong passphrase or corrupt file"
            ) from exc
        account = Account.from_key(key)
        self._cache[name] = account
        return account

    def create(self, name: str, private_key: str | bytes | None = None) -> LocalAccount:
        """Store a new (or the given) key under ``name``; refuses to overwrite."""
        path = self.path_of(name)
        if path.exists():
            raise KeystoreError(f"account {name!r} already exists in {self.directory}")
        account = account_from_key(private_key) if private_key else Account.create()
        encrypted = Account.encrypt(
            account.key, self._passphrase, kdf="scrypt", iterations=self._scrypt_n
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(encrypted, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        self._cache[name] = account
        return account

    def get_or_create(self, name: str) -> LocalAccount:
        """The named account, created with a fresh random key on first use."""
        return self.load(name) if self.exists(name) else self.create(name)
