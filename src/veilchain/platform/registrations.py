"""Local state of data set registrations, so a killed registration can resume.

A registration moves through ``processing`` (images anonymized, encrypted and pinned one by
one) -> ``submitting`` (manifest pinned, transaction about to be sent) -> ``registered``, or
``aborted``. Each image row is ``pending`` until its ciphertext is pinned and its record
stored. Nothing here holds an image or a key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from veilchain.errors import DatasetNotFoundError, RegistrationStateError
from veilchain.platform.db import Base
from veilchain.platform.manifest import ImageRecord
from veilchain.platform.statements import DatasetStatements

PROCESSING, SUBMITTING, REGISTERED, ABORTED = "processing", "submitting", "registered", "aborted"
PENDING, DONE = "pending", "done"


class RegistrationRow(Base):
    __tablename__ = "registrations"

    uid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(32))
    params_json: Mapped[str] = mapped_column(Text)
    model_hash: Mapped[str] = mapped_column(String(66))
    seed: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[str] = mapped_column(String(32))
    # Set when this registration adds a version to an existing on-chain data set.
    dataset_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    previous_manifest_cid: Mapped[str | None] = mapped_column(String(100), nullable=True)
    manifest_cid: Mapped[str | None] = mapped_column(String(100), nullable=True)
    merkle_root: Mapped[str | None] = mapped_column(String(66), nullable=True)
    chain_count_before: Mapped[int | None] = mapped_column(Integer, nullable=True)
    versions_before: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The API job that started it (None: the CLI's own).
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    # What the institution states about the data set (statements.py); None: not given.
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    licence: Mapped[str | None] = mapped_column(Text, nullable=True)
    consent: Mapped[str | None] = mapped_column(Text, nullable=True)


class RegistrationImageRow(Base):
    __tablename__ = "registration_images"
    __table_args__ = (UniqueConstraint("uid", "idx"),)

    uid: Mapped[str] = mapped_column(
        String(32), ForeignKey("registrations.uid", ondelete="CASCADE"), primary_key=True
    )
    image_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer)
    # A file path, or "veilchain:<uid>/<image_id>" to re-encrypt an image of another version.
    source: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    cid: Mapped[str | None] = mapped_column(String(100), nullable=True)
    ciphertext_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    anonymized_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    report_json: Mapped[str | None] = mapped_column(Text, nullable=True)

    def to_record(self) -> ImageRecord:
        """The image's public record in the manifest (call once its ciphertext is pinned)."""
        assert self.cid and self.ciphertext_sha256 and self.anonymized_sha256 and self.report_json
        assert self.size is not None and self.width is not None and self.height is not None
        return ImageRecord(
            index=self.idx,
            image_id=self.image_id,
            cid=self.cid,
            ciphertext_sha256=self.ciphertext_sha256,
            anonymized_sha256=self.anonymized_sha256,
            size=self.size,
            width=self.width,
            height=self.height,
            report=json.loads(self.report_json),
        )


class UsedNonceRow(Base):
    """Nonces of signed key-release requests already served (replay protection)."""

    __tablename__ = "release_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(42))
    issued_at: Mapped[int] = mapped_column(Integer)


@dataclass(frozen=True)
class DatasetSpec:
    """A new data set: its name, how it is anonymized (``seed`` None: the installation's),
    and what it says of itself (published in the manifest)."""

    name: str
    method: str
    epsilon: float | None = None
    seed: int | None = None
    statements: DatasetStatements = DatasetStatements()


@dataclass
class RegistrationResult:
    """What a finished registration reports (CLI tables, API job results)."""

    uid: str
    dataset_id: int
    version: int
    records: int
    manifest_cid: str
    merkle_root: str
    tx_hash: str
    gas_used: int | None
    method: str
    model_hash: str
    params: dict
    faces: int
    faces_failed: int
    images_without_faces: int

    def to_dict(self) -> dict:
        return asdict(self)


def registration_row(session: Session, uid: str) -> RegistrationRow:
    """The registration ``uid``; RegistrationStateError when this database has none."""
    row = session.get(RegistrationRow, uid)
    if row is None:
        raise RegistrationStateError(f"no registration {uid} in this data directory")
    return row


def image_row(session: Session, key: tuple[str, str]) -> RegistrationImageRow:
    """The image row ``(uid, name)``; RegistrationStateError when it is missing."""
    row = session.get(RegistrationImageRow, key)
    if row is None:
        raise RegistrationStateError(f"registration {key[0]} has no image {key[1]}")
    return row


def image_rows(session: Session, uid: str) -> list[RegistrationImageRow]:
    """The images of registration ``uid``, in manifest order."""
    return list(
        session.scalars(
            select(RegistrationImageRow)
            .where(RegistrationImageRow.uid == uid)
            .order_by(RegistrationImageRow.idx)
        )
    )


def registered_row(session: Session, dataset_id: int, version: int | None) -> RegistrationRow:
    """This instance's registration of ``dataset_id`` at ``version`` (None: the latest);
    DatasetNotFoundError when it registered no such version."""
    q = select(RegistrationRow).where(
        RegistrationRow.dataset_id == dataset_id, RegistrationRow.status == REGISTERED
    )
    if version is not None:
        q = q.where(RegistrationRow.version == version)
    reg = session.scalars(q.order_by(RegistrationRow.version.desc())).first()
    if reg is None:
        raise DatasetNotFoundError(
            f"data set {dataset_id}"
            + (f" version {version}" if version else "")
            + " was not registered by this Veilchain instance"
        )
    return reg


#: The source of an image re-encrypted from an earlier version: ``veilchain:<uid>/<image>``.
REENCRYPT_PREFIX = "veilchain:"


def count_images(session: Session, uid: str, status: str | None = None) -> int:
    """How many images registration ``uid`` has (with ``status``, when given)."""
    q = select(func.count()).where(RegistrationImageRow.uid == uid)
    if status is not None:
        q = q.where(RegistrationImageRow.status == status)
    return int(session.scalar(q) or 0)


def done_image_ids(session: Session, uid: str, ids: set[str]) -> set[str]:
    """Which of ``ids`` are done in registration ``uid`` (asked 500 at a time)."""
    found: set[str] = set()
    ordered = sorted(ids)
    for i in range(0, len(ordered), 500):
        found |= set(
            session.scalars(
                select(RegistrationImageRow.image_id).where(
                    RegistrationImageRow.uid == uid,
                    RegistrationImageRow.status == DONE,
                    RegistrationImageRow.image_id.in_(ordered[i : i + 500]),
                )
            )
        )
    return found


def has_reencrypted_images(session: Session, uid: str) -> bool:
    """Whether registration ``uid`` re-encrypts images of an earlier version."""
    q = select(RegistrationImageRow.image_id).where(
        RegistrationImageRow.uid == uid,
        RegistrationImageRow.source.startswith(REENCRYPT_PREFIX),
    )
    return session.scalars(q.limit(1)).first() is not None


def iter_image_rows(
    session_factory: sessionmaker[Session], uid: str, *, pending_only: bool = False
) -> Iterator[RegistrationImageRow]:
    """A registration's image rows in order (``pending_only``: those not done yet), read a
    page at a time (one session per page, so no transaction stays open while the caller
    works)."""
    last = -1
    while True:
        q = select(RegistrationImageRow).where(
            RegistrationImageRow.uid == uid, RegistrationImageRow.idx > last
        )
        if pending_only:
            q = q.where(RegistrationImageRow.status != DONE)
        with session_factory() as s:
            page = list(s.scalars(q.order_by(RegistrationImageRow.idx).limit(500)))
        if not page:
            return
        yield from page
        last = page[-1].idx


def iter_records(session_factory: sessionmaker[Session], uid: str) -> Iterator[ImageRecord]:
    """Every image record of a registration in order, streamed (see :func:`iter_image_rows`)."""
    return (row.to_record() for row in iter_image_rows(session_factory, uid))


def face_counts(session_factory: sessionmaker[Session], uid: str) -> tuple[int, int, int, int]:
    """(records, faces, faces that failed the identity check, images without a face),
    streamed over the registration's records."""
    records = faces = failed = without = 0
    for record in iter_records(session_factory, uid):
        records += 1
        found = record.report.get("faces") or []
        faces += len(found)
        failed += sum(1 for f in found if f.get("passed") is False)
        without += not found
    return records, faces, failed, without
