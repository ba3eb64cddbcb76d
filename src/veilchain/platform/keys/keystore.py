"""Versioned master keys (KEKs), kept in the database wrapped under a root key.

The root key never touches disk: it is derived at start-up either from a passphrase with
scrypt (salt and cost parameters stored in ``kms_keystore``) or from a raw 32-byte key given in
hex, expanded with HKDF-SHA256 over the stored salt. Each KEK version is 32 random bytes,
stored as ``nonce || AES-256-GCM(root, nonce, kek, AD) || tag`` with
``AD = "veilchain.kek.v1" || keystore_id || u32be(version)``. A wrong passphrase shows up
as a KEK version that does not authenticate.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import struct
import threading
import unicodedata
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from veilchain.errors import ConfigError, DecryptionError, KeystoreError, KeyVersionError
from veilchain.platform.keys.envelope import NONCE_LEN
from veilchain.platform.keys.tables import KEK_VERSIONS, KEYSTORE

# OWASP's scrypt recommendation: N=2^17, r=8, p=1 (128 MiB, ~0.4 s on one core here).
DEFAULT_SCRYPT_N = 2**17
DEFAULT_SCRYPT_R = 8
DEFAULT_SCRYPT_P = 1
_SALT_LEN = 16
_KEY_LEN = 32
_KEK_AD = b"veilchain.kek.v1"
_DEK_AD = b"veilchain.dek.v1"
_HKDF_INFO = b"veilchain.kms.root.v1"
_MAX_SCRYPT_N = 2**22


class PassphraseSource:
    """Root key from a passphrase via scrypt; cost parameters apply to new keystores only."""

    kind = "scrypt"

    def __init__(
        self,
        passphrase: str,
        *,
        n: int = DEFAULT_SCRYPT_N,
        r: int = DEFAULT_SCRYPT_R,
        p: int = DEFAULT_SCRYPT_P,
    ):
        if not passphrase:
            raise ConfigError("the KMS passphrase is empty; set VEILCHAIN_KMS__PASSPHRASE")
        if n < 2 or n & (n - 1) or n > _MAX_SCRYPT_N:
            raise ConfigError("scrypt n must be a power of two up to 2^22")
        self._secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
        self.params = {"n": n, "r": r, "p": p}

    def __repr__(self) -> str:
        return "PassphraseSource(<hidden>)"

    def new_kdf(self) -> dict:
        salt = base64.b64encode(os.urandom(_SALT_LEN)).decode()
        return {"name": self.kind, "salt": salt, **self.params, "dklen": _KEY_LEN}

    def derive(self, kdf: dict) -> bytes:
        if kdf.get("name") != self.kind:
            raise KeystoreError(
                "the keystore was created with a raw master key; "
                "set VEILCHAIN_KMS__MASTER_KEY_HEX to that key"
            )
        n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
        if n < 2 or n & (n - 1) or n > _MAX_SCRYPT_N or not 1 <= r * p <= 64:
            raise KeystoreError("the keystore's scrypt parameters are out of range; it is corrupt")
        salt = base64.b64decode(kdf["salt"])
        return Scrypt(salt=salt, length=_KEY_LEN, n=n, r=r, p=p).derive(self._secret)


class RawKeySource:
    """Root key from 32 raw bytes (e.g. ``VEILCHAIN_KMS__MASTER_KEY_HEX``), via HKDF-SHA256."""

    kind = "raw-hkdf-sha256"

    def __init__(self, key: bytes):
        if len(key) != _KEY_LEN:
            raise ConfigError("the KMS master key must be 32 bytes")
        self._secret = bytes(key)

    @classmethod
    def from_hex(cls, master_key_hex: str) -> RawKeySource:
        text = master_key_hex.strip().removeprefix("0x")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
        if len(raw) != _KEY_LEN:
            raise ConfigError(
                "VEILCHAIN_KMS__MASTER_KEY_HEX must be 64 hex characters (32 bytes); "
                "make one with: python -c 'import secrets; print(secrets.token_hex(32))'"
            )
        return cls(raw)

    def __repr__(self) -> str:
        return "RawKeySource(<hidden>)"

    def new_kdf(self) -> dict:
        return {"name": self.kind, "salt": base64.b64encode(os.urandom(_SALT_LEN)).decode()}

    def derive(self, kdf: dict) -> bytes:
        if kdf.get("name") != self.kind:
            raise KeystoreError(
                "the keystore was created with a passphrase; unset "
                "VEILCHAIN_KMS__MASTER_KEY_HEX and set VEILCHAIN_KMS__PASSPHRASE"
            )
        salt = base64.b64decode(kdf["salt"])
        return HKDF(hashes.SHA256(), _KEY_LEN, salt, _HKDF_INFO).derive(self._secret)


KekSource = PassphraseSource | RawKeySource


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _kek_ad(keystore_id: str, version: int) -> bytes:
    return _KEK_AD + keystore_id.encode("ascii") + struct.pack(">I", version)


def dek_ad(version: int, context: bytes) -> bytes:
    """AD for wrapping a data key: label || u32be(KEK version) || encryption context."""
    return _DEK_AD + struct.pack(">I", version) + context


class Keyring:
    """Unwrapped master key versions held in memory; loads versions made by other processes."""

    def __init__(self, session_factory: sessionmaker[Session], source: KekSource):
        self._session_factory = session_factory
        self._lock = threading.Lock()
        self._keks: dict[int, AESGCM] = {}
        with session_factory() as session:
            row = session.execute(select(KEYSTORE)).first()
            if row is None:
                row = self._create(session, source)
        self.keystore_id: str = row.keystore_id
        self.kdf_name: str = json.loads(row.kdf)["name"]
        try:
            self._root = AESGCM(source.derive(json.loads(row.kdf)))
        except (KeyError, ValueError, TypeError) as exc:
            raise KeystoreError("the keystore's KDF record is corrupt") from exc
        self.load_versions()
        if not self._keks:
            raise KeystoreError("the keystore has no master key versions; it is corrupt")

    def _create(self, session: Session, source: KekSource):
        keystore_id = secrets.token_hex(16)
        kdf = source.new_kdf()
        root = AESGCM(source.derive(kdf))
        now = _now()
        try:
            session.execute(
                insert(KEYSTORE).values(
                    id=1,
                    keystore_id=keystore_id,
                    kdf=json.dumps(kdf, sort_keys=True),
                    current_version=1,
                    min_decryption_version=1,
                    created_at=now,
                )
            )
            session.execute(
                insert(KEK_VERSIONS).values(
                    version=1,
                    wrapped=self._wrap_kek(root, keystore_id, 1, os.urandom(_KEY_LEN)),
                    created_at=now,
                )
            )
            session.commit()
        except IntegrityError:  # another process created the keystore first
            session.rollback()
        return session.execute(select(KEYSTORE)).one()

    @staticmethod
    def _wrap_kek(root: AESGCM, keystore_id: str, version: int, kek: bytes) -> bytes:
        nonce = os.urandom(NONCE_LEN)
        return nonce + root.encrypt(nonce, kek, _kek_ad(keystore_id, version))

    def _unwrap_kek(self, version: int, wrapped: bytes, error: str) -> bytes:
        """The KEK of ``version`` under the current root key; KeystoreError(error) if the
        root key does not open it."""
        blob = bytes(wrapped)
        try:
            return self._root.decrypt(
                blob[:NONCE_LEN], blob[NONCE_LEN:], _kek_ad(self.keystore_id, version)
            )
        except InvalidTag as exc:
            raise KeystoreError(error) from exc

    def load_versions(self, session: Session | None = None) -> None:
        """Unwrap every stored version not yet in memory (a wrong root key fails here)."""
        if session is None:
            with self._session_factory() as own:
                return self.load_versions(own)
        rows = session.execute(select(KEK_VERSIONS.c.version, KEK_VERSIONS.c.wrapped)).all()
        with self._lock:
            for version, wrapped in rows:
                if version in self._keks:
                    continue
                kek = self._unwrap_kek(
                    version,
                    wrapped,
                    "wrong KMS passphrase or master key: the keystore does not open; "
                    "use the one it was created with",
                )
                self._keks[version] = AESGCM(kek)
        return None

    def rekey_root(self, session: Session, source: KekSource) -> str:
        """Re-wrap every KEK version under a root key from ``source`` with a fresh salt,
        inside the caller's transaction; returns the new KDF name. KEKs do not change."""
        kdf = source.new_kdf()
        new_root = AESGCM(source.derive(kdf))
        rows = session.execute(select(KEK_VERSIONS.c.version, KEK_VERSIONS.c.wrapped)).all()
        for version, wrapped in rows:
            kek = self._unwrap_kek(
                version,
                wrapped,
                f"master key version {version} does not open under the current root key",
            )
            session.execute(
                update(KEK_VERSIONS)
                .where(KEK_VERSIONS.c.version == version)
                .values(wrapped=self._wrap_kek(new_root, self.keystore_id, version, kek))
            )
        session.execute(update(KEYSTORE).values(kdf=json.dumps(kdf, sort_keys=True)))
        self._pending_root, self._pending_kdf_name = new_root, kdf["name"]
        return kdf["name"]

    def commit_root(self) -> None:
        """Switch to the root key of :meth:`rekey_root` once its transaction committed."""
        self._root, self.kdf_name = self._pending_root, self._pending_kdf_name
        del self._pending_root

    def new_version(self, session: Session, version: int) -> None:
        """Create and store KEK ``version`` inside the caller's transaction."""
        kek = os.urandom(_KEY_LEN)
        session.execute(
            insert(KEK_VERSIONS).values(
                version=version,
                wrapped=self._wrap_kek(self._root, self.keystore_id, version, kek),
                created_at=_now(),
            )
        )
        with self._lock:
            self._keks[version] = AESGCM(kek)

    def _kek(self, version: int) -> AESGCM:
        kek = self._keks.get(version)
        if kek is None:
            self.load_versions()
            kek = self._keks.get(version)
            if kek is None:
                raise KeyVersionError(f"master key version {version} does not exist")
        return kek

    def wrap(self, version: int, data_key: bytes, context: bytes) -> bytes:
        """``nonce || AES-256-GCM(KEK_v, nonce, data_key, dek_ad(v, context)) || tag``."""
        nonce = os.urandom(NONCE_LEN)
        return nonce + self._kek(version).encrypt(nonce, data_key, dek_ad(version, context))

    def unwrap(self, version: int, wrapped: bytes, context: bytes) -> bytes:
        blob = bytes(wrapped)
        try:
            return self._kek(version).decrypt(
                blob[:NONCE_LEN], blob[NONCE_LEN:], dek_ad(version, context)
            )
        except InvalidTag as exc:
            raise DecryptionError(
                "a stored data key does not unwrap: the key record was altered or moved"
            ) from exc
