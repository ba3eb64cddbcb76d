"""Tables of the key service: the keystore header, master key versions and wrapped data keys."""

from __future__ import annotations

from typing import cast

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from veilchain.platform.db import Base


class KeystoreRow(Base):
    """One row (id 1): how the root key is derived and which master key versions are live."""

    __tablename__ = "kms_keystore"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    keystore_id: Mapped[str] = mapped_column(String(32))
    kdf: Mapped[str] = mapped_column(Text)  # JSON: name, salt (base64), parameters
    current_version: Mapped[int] = mapped_column(Integer)
    min_decryption_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[str] = mapped_column(String(32))


class KekVersionRow(Base):
    """A master key version, AES-256-GCM-wrapped under the root key (never in plaintext)."""

    __tablename__ = "kms_kek_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[str] = mapped_column(String(32))


class DataKeyRow(Base):
    """A per-image data key wrapped under one master key version with its context as AD."""

    __tablename__ = "kms_data_keys"

    dataset: Mapped[str] = mapped_column(String(1024), primary_key=True)
    image: Mapped[str] = mapped_column(String(1024), primary_key=True)
    kek_version: Mapped[int] = mapped_column(
        Integer, ForeignKey("kms_kek_versions.version"), index=True
    )
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)


# A declarative class's __table__ is typed FromClause; for these mapped classes it is a Table.
KEYSTORE = cast(Table, KeystoreRow.__table__)
KEK_VERSIONS = cast(Table, KekVersionRow.__table__)
DATA_KEYS = cast(Table, DataKeyRow.__table__)
ALL_TABLES = [KEYSTORE, KEK_VERSIONS, DATA_KEYS]
