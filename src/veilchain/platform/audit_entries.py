"""What an audit entry is: its two tables, its value objects and its hash.

``entry_hash = sha256(prev_hash || canonical_json(entry))``, where ``entry`` holds ``seq, ts,
event, actor, subject, details, prev_hash`` and the first entry's ``prev_hash`` is
:data:`GENESIS_HASH` (32 zero bytes). docs/keys.md defines the canonical JSON so that anyone
can re-verify an export. The log that writes and verifies entries is
:class:`veilchain.platform.audit.AuditLog`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from veilchain.errors import AuditChainBrokenError, AuditError
from veilchain.platform.db import Base

GENESIS_HASH = bytes(32)
# Keys that must never appear in audit details (defence in depth against leaking secrets).
_FORBIDDEN_DETAIL_KEYS = frozenset(
    {
        "data_key",
        "dek",
        "kek",
        "key",
        "master_key",
        "master_key_hex",
        "passphrase",
        "password",
        "plaintext",
        "private_key",
        "secret",
        "secret_key",
        "seed",
        "token",
    }
)
_SEQ_TYPE = BigInteger().with_variant(Integer(), "sqlite")


class AuditEvent(StrEnum):
    """Event types used by the platform; other lowercase names are accepted too."""

    REGISTER = "register"
    RELEASE = "release"
    REFUSAL = "refusal"
    ROTATION = "rotation"
    REWRAP = "rewrap"
    RETIRE = "retire"
    KEY_DELETION = "key_deletion"
    ROOT_REKEY = "root_rekey"
    GRANT = "grant"
    REVOKE = "revoke"
    ANCHOR = "anchor"


class AuditRow(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(_SEQ_TYPE, primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(256))
    subject: Mapped[str] = mapped_column(String(512), index=True)
    details: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(_SEQ_TYPE)
    head_hash: Mapped[str] = mapped_column(String(64))


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    ts: str
    event: str
    actor: str
    subject: str
    details: dict[str, Any]
    prev_hash: str
    entry_hash: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AuditVerification:
    """Result of :meth:`AuditLog.verify`. ``first_bad_seq`` names the first broken entry."""

    ok: bool
    entries: int  # entries that verified (all of them when ok)
    head_hash: str
    first_bad_seq: int | None = None
    reason: str | None = None
    anchors_checked: int = 0

    def raise_if_broken(self) -> None:
        if not self.ok:
            raise AuditChainBrokenError(
                f"audit log broken at entry {self.first_bad_seq}: {self.reason}"
            )


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, no NaN/Infinity: the bytes that get hashed."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def entry_hash(
    *,
    seq: int,
    ts: str,
    event: str,
    actor: str,
    subject: str,
    details: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """Hex sha256(prev_hash || canonical_json(entry)) as defined in docs/keys.md."""
    body = canonical_json(
        {
            "seq": seq,
            "ts": ts,
            "event": event,
            "actor": actor,
            "subject": subject,
            "details": details,
            "prev_hash": prev_hash,
        }
    )
    return hashlib.sha256(bytes.fromhex(prev_hash) + body).hexdigest()


def check_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise AuditError("audit details must be a JSON object")

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if not isinstance(key, str):
                    raise AuditError("audit detail keys must be strings")
                if key.lower() in _FORBIDDEN_DETAIL_KEYS:
                    raise AuditError(f"audit details must not carry secrets (key {key!r})")
                walk(value)
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value)
        elif isinstance(node, bytes | bytearray | memoryview):
            raise AuditError("audit details must not carry raw bytes; log a hash or an id")

    walk(details)
    try:
        canonical_json(details)
    except (TypeError, ValueError) as exc:
        raise AuditError(f"audit details are not JSON-serializable: {exc}") from exc
    return json.loads(canonical_json(details))


def row_to_entry(row: Any) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        ts=row.ts,
        event=row.event,
        actor=row.actor,
        subject=row.subject,
        details=json.loads(row.details),
        prev_hash=row.prev_hash,
        entry_hash=row.entry_hash,
    )
