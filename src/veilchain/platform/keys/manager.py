"""KeyManager: per-image data keys, versioned master keys and sealed release.

The caller decides whether a release is allowed (live on-chain grant) and audits it; the
KeyManager does the cryptography, stores wrapped keys and audits what changes key state
(rotation, rewrap, retirement, deletion) inside the same transaction as the change.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from veilchain.errors import (
    DataKeyNotFoundError,
    InputError,
    KeyManagementError,
    KeyVersionError,
)
from veilchain.platform.audit import AuditLog
from veilchain.platform.audit_entries import AuditEvent
from veilchain.platform.db import Base, affected_rows, engine_of, first_line
from veilchain.platform.keys.envelope import (
    DATA_KEY_LEN,
    context_bytes,
    decrypt_with_data_key,
    encrypt_with_data_key,
)
from veilchain.platform.keys.keystore import KekSource, Keyring
from veilchain.platform.keys.sealing import seal_data_key
from veilchain.platform.keys.tables import ALL_TABLES, DATA_KEYS, KEK_VERSIONS, KEYSTORE

log = logging.getLogger(__name__)

DEFAULT_REWRAP_BATCH = 1_000
_IN_CHUNK = 500
_AUDIT_IMAGE_LIST_MAX = 100

_KEYS_FROM = DATA_KEYS.join(KEYSTORE, KEYSTORE.c.id == 1)
_ONE_KEY = (
    select(DATA_KEYS.c.kek_version, DATA_KEYS.c.wrapped, KEYSTORE.c.min_decryption_version)
    .select_from(_KEYS_FROM)
    .where(DATA_KEYS.c.dataset == bindparam("ds"), DATA_KEYS.c.image == bindparam("img"))
)
_MANY_KEYS = (
    select(
        DATA_KEYS.c.image,
        DATA_KEYS.c.kek_version,
        DATA_KEYS.c.wrapped,
        KEYSTORE.c.min_decryption_version,
    )
    .select_from(_KEYS_FROM)
    .where(
        DATA_KEYS.c.dataset == bindparam("ds"),
        DATA_KEYS.c.image.in_(bindparam("imgs", expanding=True)),
    )
)


@dataclass(frozen=True)
class KekVersionInfo:
    version: int
    created_at: str
    state: str  # "current", "active" (decrypts) or "retired"
    data_keys: int


@dataclass(frozen=True)
class KeyStatus:
    keystore_id: str
    kdf: str
    current_version: int
    min_decryption_version: int
    versions: list[KekVersionInfo] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "keystore_id": self.keystore_id,
            "kdf": self.kdf,
            "current_version": self.current_version,
            "min_decryption_version": self.min_decryption_version,
            "versions": [v.__dict__ for v in self.versions],
        }


class KeyManager:
    """Encrypt/decrypt images under per-image data keys wrapped by versioned master keys."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        kek_source: KekSource,
        audit: AuditLog,
        *,
        actor: str = "kms",
    ):
        self._session_factory = session_factory
        self._engine = engine_of(session_factory)
        self._audit = audit
        self._actor = actor
        try:
            Base.metadata.create_all(self._engine, tables=ALL_TABLES)
            self._keyring = Keyring(session_factory, kek_source)
        except SQLAlchemyError as exc:
            raise KeyManagementError(f"cannot open the key store: {first_line(exc)}") from exc

    # --- encryption -------------------------------------------------------------------
    def encrypt(self, plaintext: bytes, *, dataset: str, image: str) -> bytes:
        """Encrypt one image under a fresh data key and store the wrapped key."""
        return self.encrypt_many([(image, plaintext)], dataset=dataset)[0]

    def encrypt_many(self, items: Sequence[tuple[str, bytes]], *, dataset: str) -> list[bytes]:
        """Encrypt ``(image_id, plaintext)`` pairs; all keys are stored in one transaction."""
        ciphertexts, keys = [], []
        for image, plaintext in items:
            data_key = os.urandom(DATA_KEY_LEN)
            ciphertexts.append(
                encrypt_with_data_key(plaintext, data_key, dataset=dataset, image=image)
            )
            keys.append((image, data_key))
        self.store_data_keys(keys, dataset=dataset)
        return ciphertexts

    def store_data_keys(self, items: Sequence[tuple[str, bytes]], *, dataset: str) -> None:
        """Wrap ``(image_id, data_key)`` pairs under the current master key and store them in
        one transaction: for data keys made elsewhere (a Ray worker's, opened from their
        sealed transport box; platform/keys/transport.py)."""
        images = [image for image, _ in items]
        if len(set(images)) != len(images):
            raise InputError("image ids in one encrypt_many call must be unique")
        if any(len(key) != DATA_KEY_LEN for _, key in items):
            raise InputError("a data key must be 32 bytes")
        try:
            with self._session_factory() as session:
                version = session.execute(select(KEYSTORE.c.current_version)).scalar_one()
                rows = [
                    {
                        "dataset": dataset,
                        "image": image,
                        "kek_version": version,
                        "wrapped": self._keyring.wrap(
                            version, data_key, context_bytes(dataset, image)
                        ),
                    }
                    for image, data_key in items
                ]
                if rows:
                    session.execute(insert(DATA_KEYS), rows)
                session.commit()
        except IntegrityError as exc:
            raise KeyManagementError(
                f"a data key already exists for an image of dataset {dataset!r}; "
                "delete_keys() it before encrypting that image again"
            ) from exc
        except SQLAlchemyError as exc:
            raise KeyManagementError(f"cannot store data keys: {first_line(exc)}") from exc

    def decrypt(self, ciphertext: bytes, *, dataset: str, image: str) -> bytes:
        """Decrypt one image; DecryptionError when anything was altered or misplaced."""
        data_key = self._data_keys(dataset, [image])[image]
        return decrypt_with_data_key(ciphertext, data_key, dataset=dataset, image=image)

    def decrypt_many(self, items: Sequence[tuple[str, bytes]], *, dataset: str) -> list[bytes]:
        """Decrypt ``(image_id, ciphertext)`` pairs with one key lookup per 500 images."""
        keys = self._data_keys(dataset, [image for image, _ in items])
        return [
            decrypt_with_data_key(ct, keys[image], dataset=dataset, image=image)
            for image, ct in items
        ]

    def release_sealed(self, *, dataset: str, image: str, recipient_public_key: bytes) -> bytes:
        """The image's data key sealed to an X25519 public key (libsodium sealed box).

        The caller must already have checked the grant and audits the release.
        """
        data_key = self._data_keys(dataset, [image])[image]
        return seal_data_key(data_key, recipient_public_key)

    def _data_keys(self, dataset: str, images: Sequence[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(images))
        found: dict[str, tuple[int, bytes, int]] = {}
        try:
            # A plain connection and prebuilt statements keep the per-image overhead low.
            with self._engine.connect() as conn:
                if len(wanted) == 1:
                    row = conn.execute(_ONE_KEY, {"ds": dataset, "img": wanted[0]}).first()
                    if row is not None:
                        found[wanted[0]] = (row[0], bytes(row[1]), row[2])
                for start in range(0, len(wanted) if len(wanted) > 1 else 0, _IN_CHUNK):
                    chunk = wanted[start : start + _IN_CHUNK]
                    for img, version, wrapped, min_version in conn.execute(
                        _MANY_KEYS, {"ds": dataset, "imgs": chunk}
                    ):
                        found[img] = (version, bytes(wrapped), min_version)
        except SQLAlchemyError as exc:
            raise KeyManagementError(f"cannot read data keys: {first_line(exc)}") from exc
        keys: dict[str, bytes] = {}
        for image in wanted:
            if image not in found:
                raise DataKeyNotFoundError(
                    f"no data key for image {image!r} in dataset {dataset!r}; "
                    "it was never registered here or its key was deleted"
                )
            version, wrapped, min_version = found[image]
            if version < min_version:
                raise KeyVersionError(
                    f"the data key of image {image!r} is wrapped under retired master key "
                    f"version {version} (minimum {min_version}); it can no longer be decrypted"
                )
            keys[image] = self._keyring.unwrap(version, wrapped, context_bytes(dataset, image))
        return keys

    # --- key inventory ----------------------------------------------------------------
    def has_key(self, dataset: str, image: str) -> bool:
        stmt = select(DATA_KEYS.c.image).where(
            DATA_KEYS.c.dataset == dataset, DATA_KEYS.c.image == image
        )
        return self._read(lambda s: s.execute(stmt).first() is not None)

    def images_with_keys(self, dataset: str) -> set[str]:
        stmt = select(DATA_KEYS.c.image).where(DATA_KEYS.c.dataset == dataset)
        return self._read(lambda s: set(s.execute(stmt).scalars()))

    def delete_keys(
        self, dataset: str, images: Iterable[str] | None = None, *, actor: str | None = None
    ) -> int:
        """Delete the data keys of a whole dataset or of some images (crypto-shredding);
        returns how many were deleted and audits the deletion."""
        image_list = None if images is None else list(dict.fromkeys(images))
        deleted = 0
        try:
            with self._session_factory() as session:
                if image_list is None:
                    deleted = affected_rows(
                        session.execute(delete(DATA_KEYS).where(DATA_KEYS.c.dataset == dataset))
                    )
                else:
                    for start in range(0, len(image_list), _IN_CHUNK):
                        chunk = image_list[start : start + _IN_CHUNK]
                        deleted += affected_rows(
                            session.execute(
                                delete(DATA_KEYS).where(
                                    DATA_KEYS.c.dataset == dataset, DATA_KEYS.c.image.in_(chunk)
                                )
                            )
                        )
                details: dict = {"dataset": dataset, "deleted": deleted}
                if image_list is not None and len(image_list) <= _AUDIT_IMAGE_LIST_MAX:
                    details["images"] = image_list
                elif image_list is not None:
                    details["requested"] = len(image_list)
                self._audit.append(
                    AuditEvent.KEY_DELETION,
                    actor=actor or self._actor,
                    subject=dataset,
                    details=details,
                    session=session,
                )
                session.commit()
        except SQLAlchemyError as exc:
            raise KeyManagementError(f"cannot delete data keys: {first_line(exc)}") from exc
        log.info("deleted %d data keys of dataset %s", deleted, dataset)
        return deleted

    # --- master key lifecycle ---------------------------------------------------------
    def rotate(self, *, actor: str | None = None) -> int:
        """Make a new master key version current and return it; old versions still decrypt."""
        try:
            with self._session_factory() as session:
                # The UPDATE takes the write/row lock before anything else is read.
                version = session.execute(
                    update(KEYSTORE)
                    .values(current_version=KEYSTORE.c.current_version + 1)
                    .returning(KEYSTORE.c.current_version)
                ).scalar_one()
                self._keyring.new_version(session, version)
                self._audit.append(
                    AuditEvent.ROTATION,
                    actor=actor or self._actor,
                    subject=f"kms:{self._keyring.keystore_id}",
                    details={"version": version, "previous_version": version - 1},
                    session=session,
                )
                session.commit()
        except SQLAlchemyError as exc:
            raise KeyManagementError(f"cannot rotate the master key: {first_line(exc)}") from exc
        log.info("master key rotated to version %d", version)
        return version

    def rewrap(
        self,
        dataset_id: str | None = None,
        *,
        batch: int = DEFAULT_REWRAP_BATCH,
        actor: str | None = None,
    ) -> int:
        """Re-wrap data keys under older (still decryptable) versions with the current one.

        Works in batches of ``batch`` keys, one transaction each; plaintext data keys exist
        only in memory for the moment of re-wrapping. Returns how many keys were re-wrapped.
        """
        if batch < 1:
            raise InputError("rewrap batch size must be at least 1")
        total = 0
        try:
            with self._session_factory() as session:
                current, min_version = session.execute(
                    select(KEYSTORE.c.current_version, KEYSTORE.c.min_decryption_version)
                ).one()
                cursor: tuple[str, str] = ("", "")
                while True:
                    stmt = (
                        select(
                            DATA_KEYS.c.dataset,
                            DATA_KEYS.c.image,
                            DATA_KEYS.c.kek_version,
                            DATA_KEYS.c.wrapped,
                        )
                        .where(
                            DATA_KEYS.c.kek_version < current,
                            DATA_KEYS.c.kek_version >= min_version,
                            (DATA_KEYS.c.dataset > cursor[0])
                            | and_(DATA_KEYS.c.dataset == cursor[0], DATA_KEYS.c.image > cursor[1]),
                        )
                        .order_by(DATA_KEYS.c.dataset, DATA_KEYS.c.image)
                        .limit(batch)
                    )
                    if dataset_id is not None:
                        stmt = stmt.where(DATA_KEYS.c.dataset == dataset_id)
                    rows = session.execute(stmt).all()
                    if not rows:
                        break
                    session.execute(
                        update(DATA_KEYS)
                        .where(
                            DATA_KEYS.c.dataset == bindparam("b_ds"),
                            DATA_KEYS.c.image == bindparam("b_img"),
                            DATA_KEYS.c.kek_version == bindparam("b_old"),
                        )
                        .values(kek_version=bindparam("b_new"), wrapped=bindparam("b_wrapped")),
                        self._rewrapped(rows, current),
                    )
                    session.commit()
                    total += len(rows)
                    cursor = (rows[-1][0], rows[-1][1])
                self._audit.append(
                    AuditEvent.REWRAP,
                    actor=actor or self._actor,
                    subject=dataset_id or f"kms:{self._keyring.keystore_id}",
                    details={"dataset": dataset_id, "to_version": current, "rewrapped": total},
                    session=session,
                )
                session.commit()
        except SQLAlchemyError as exc:
            raise KeyManagementError(f"cannot rewrap data keys: {first_line(exc)}") from exc
        log.info("re-wrapped %d data keys under master key version %d", total, current)
        return total

    def _rewrapped(self, rows: Sequence[Any], current: int) -> list[dict[str, Any]]:
        """UPDATE parameters moving each ``(dataset, image, version, wrapped)`` row's data key
        under master key version ``current``."""
        params = []
        for ds, img, version, wrapped in rows:
            ctx = context_bytes(ds, img)
            data_key = self._keyring.unwrap(version, wrapped, ctx)
            params.append(
                {
                    "b_ds": ds,
                    "b_img": img,
                    "b_old": version,
                    "b_new": current,
                    "b_wrapped": self._keyring.wrap(current, data_key, ctx),
                }
            )
        return params

    def set_min_decryption_version(
        self, version: int, *, force: bool = False, actor: str | None = None
    ) -> None:
        """Retire every master key version below ``version``: their data keys stop
        decrypting. Refused while data keys still depend on them, unless ``force``."""
        try:
            with self._session_factory() as session:
                current, previous = session.execute(
                    update(KEYSTORE)
                    .values(min_decryption_version=KEYSTORE.c.min_decryption_version)
                    .returning(KEYSTORE.c.current_version, KEYSTORE.c.min_decryption_version)
                ).one()
                if not previous <= version <= current:
                    raise KeyVersionError(
                        f"minimum decryption version must be between {previous} (the current "
                        f"minimum; it never goes down) and {current} (the current version)"
                    )
                stranded = session.execute(
                    select(func.count()).where(DATA_KEYS.c.kek_version < version)
                ).scalar_one()
                if stranded and not force:
                    raise KeyVersionError(
                        f"{stranded} data keys are still wrapped under versions below {version}; "
                        "run rewrap first (or force, making them undecryptable)"
                    )
                session.execute(update(KEYSTORE).values(min_decryption_version=version))
                self._audit.append(
                    AuditEvent.RETIRE,
                    actor=actor or self._actor,
                    subject=f"kms:{self._keyring.keystore_id}",
                    details={
                        "min_decryption_version": version,
                        "previous_min": previous,
                        "stranded_data_keys": stranded,
                    },
                    session=session,
                )
                session.commit()
        except SQLAlchemyError as exc:
            raise KeyManagementError(
                f"cannot set the minimum decryption version: {first_line(exc)}"
            ) from exc
        log.info("master key versions below %d retired", version)

    def rekey_root(self, new_source: KekSource, *, actor: str | None = None) -> None:
        """Change the passphrase or raw master key: every KEK version is re-wrapped under the
        new root key (fresh salt); data keys and ciphertexts are untouched. Other processes
        must restart with the new secret."""
        try:
            with self._session_factory() as session:
                session.execute(update(KEYSTORE).values(current_version=KEYSTORE.c.current_version))
                kdf_name = self._keyring.rekey_root(session, new_source)
                self._audit.append(
                    AuditEvent.ROOT_REKEY,
                    actor=actor or self._actor,
                    subject=f"kms:{self._keyring.keystore_id}",
                    details={"kdf": kdf_name},
                    session=session,
                )
                session.commit()
        except SQLAlchemyError as exc:
            raise KeyManagementError(f"cannot change the root key: {first_line(exc)}") from exc
        self._keyring.commit_root()
        log.info("keystore root key changed (%s)", kdf_name)

    def status(self) -> KeyStatus:
        """Current and minimum versions, and every version with its state and key count."""

        def read(session: Session) -> KeyStatus:
            ks = session.execute(select(KEYSTORE)).one()
            counts: dict[int, int] = dict(
                session.execute(
                    select(DATA_KEYS.c.kek_version, func.count()).group_by(DATA_KEYS.c.kek_version)
                ).all()
            )
            versions = []
            for version, created in session.execute(
                select(KEK_VERSIONS.c.version, KEK_VERSIONS.c.created_at).order_by(
                    KEK_VERSIONS.c.version
                )
            ):
                state = (
                    "current"
                    if version == ks.current_version
                    else ("retired" if version < ks.min_decryption_version else "active")
                )
                versions.append(KekVersionInfo(version, created, state, counts.get(version, 0)))
            return KeyStatus(
                keystore_id=ks.keystore_id,
                kdf=json.loads(ks.kdf)["name"],
                current_version=ks.current_version,
                min_decryption_version=ks.min_decryption_version,
                versions=versions,
            )

        return self._read(read)

    def _read(self, fn):
        try:
            with self._session_factory() as session:
                return fn(session)
        except SQLAlchemyError as exc:
            raise KeyManagementError(f"cannot read the key store: {first_line(exc)}") from exc
