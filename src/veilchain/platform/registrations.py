"""Local state of data set registrations, so a killed registration can resume.

A registration moves through ``processing`` (images anonymized, encrypted and pinned one by
one) -> ``submitting`` (manifest pinned, transaction about to be sent) -> ``registered``, or
``aborted``. Each image row is ``pending`` until its ciphertext is pinned and its record
stored. Nothing here holds an image or a key.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from veilchain.platform.db import Base
from veilchain.platform.manifest import ImageRecord

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
