"""Append-only, hash-chained audit log of every security-relevant event.

Each entry commits to the one before it::

    entry_hash = sha256(prev_hash || canonical_json(entry))

where ``entry`` holds ``seq, ts, event, actor, subject, details, prev_hash`` and the first
entry's ``prev_hash`` is 32 zero bytes. The head hash therefore commits to the whole log; the
platform anchors it on chain (:meth:`AuditLog.root_for_anchor`, :meth:`AuditLog.record_anchor`).
The entry, its tables and its hash are defined in :mod:`veilchain.platform.audit_entries`.

Appends are serialized through a one-row ``audit_head`` table: the first statement of every
append is an ``UPDATE`` of that row, which takes SQLite's write lock or a PostgreSQL row lock,
so concurrent appenders (threads or processes) always build one chain. Within a process,
appends that arrive together are group-committed: one transaction writes all of them, and
each caller returns once its entry is committed.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Integer,
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from veilchain.errors import AuditChainBrokenError, AuditError
from veilchain.platform.audit_entries import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    AuditHead,
    AuditRow,
    AuditVerification,
    canonical_json,
    check_details,
    entry_hash,
    row_to_entry,
)
from veilchain.platform.db import Base, engine_of, first_line

log = logging.getLogger(__name__)

DEFAULT_QUERY_LIMIT = 1_000
_EVENT_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")

# A declarative class's __table__ is typed FromClause; for these mapped classes it is a Table.
_LOG = cast(Table, AuditRow.__table__)
_HEAD = cast(Table, AuditHead.__table__)
# Built once: an append runs these three, and building them per call cost more than running.
_BUMP_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(seq=_HEAD.c.seq + bindparam("n", type_=Integer))
    .returning(_HEAD.c.seq, _HEAD.c.head_hash)
)
_INSERT_LOG = insert(_LOG)
_SET_HEAD = update(_HEAD).where(_HEAD.c.id == 1).values(head_hash=bindparam("h"))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Pending:
    """One append waiting for a group commit."""

    __slots__ = ("done", "entry", "error", "item")

    def __init__(self, event: str, actor: str, subject: str, details: dict[str, Any]):
        self.item = (event, actor, subject, details)
        self.done = False
        self.entry: AuditEntry | None = None
        self.error: BaseException | None = None


class AuditLog:
    """The append-only audit log stored in the platform database."""

    def __init__(self, session_factory: sessionmaker[Session]):
        self._session_factory = session_factory
        self._engine = engine_of(session_factory)
        self._lock = threading.Lock()  # the writer: one group commit at a time
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []
        try:
            Base.metadata.create_all(self._engine, tables=[_LOG, _HEAD])
            self._ensure_head()
        except SQLAlchemyError as exc:
            raise AuditError(f"cannot open the audit log: {first_line(exc)}") from exc

    def _ensure_head(self) -> None:
        with self._session_factory() as session:
            if session.execute(select(_HEAD.c.id).where(_HEAD.c.id == 1)).first():
                return
            if session.execute(select(_LOG.c.seq).limit(1)).first():
                raise AuditChainBrokenError(
                    "audit head row is missing while entries exist; the log was tampered with"
                )
            try:
                session.execute(insert(_HEAD).values(id=1, seq=0, head_hash=GENESIS_HASH.hex()))
                session.commit()
            except IntegrityError:  # another process created it first
                session.rollback()

    # --- writing ----------------------------------------------------------------------
    def append(
        self,
        event: str,
        *,
        actor: str,
        subject: str,
        details: Mapping[str, Any] | None = None,
        session: Session | None = None,
    ) -> AuditEntry:
        """Append one entry; it is committed when this returns. With ``session`` it joins the
        caller's transaction (commit is theirs; append last in that transaction so the audit
        lock is held briefly)."""
        event = str(event)
        if not _EVENT_RE.match(event):
            raise AuditError(f"invalid audit event type {event!r}; use a lowercase name")
        clean = check_details(details)
        if session is not None:
            return self._append_in(session, [(event, actor, subject, clean)])[0]
        return self._append_grouped(_Pending(event, actor, subject, clean))

    def _append_grouped(self, mine: _Pending) -> AuditEntry:
        """Group commit: appends that arrive while a commit is under way queue up, and the
        next thread to get the writer lock commits all of them in one transaction (one
        UPDATE of the head, one multi-row INSERT, one commit), then wakes their callers. Each
        caller still returns only after its own entry is committed, and a failed commit fails
        every entry in it. Threads of this process queue here rather than in the database's
        busy handler (SQLite's backs off with sleeps); other processes serialize in the DB."""
        with self._queue_lock:
            self._queue.append(mine)
        with self._lock:
            if not mine.done:  # else an earlier writer committed it already
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                try:
                    with self._engine.begin() as conn:
                        entries = self._append_in(conn, [p.item for p in batch])
                except BaseException as exc:  # none of the batch is written: fail them all
                    for p in batch:
                        p.error, p.done = exc, True
                else:
                    for p, entry in zip(batch, entries, strict=True):
                        p.entry, p.done = entry, True
        error = mine.error
        if error is None:
            assert mine.entry is not None, "a committed batch sets every entry"
            return mine.entry
        if isinstance(error, SQLAlchemyError):
            raise AuditError(f"cannot append to the audit log: {first_line(error)}") from error
        if not isinstance(error, Exception):  # KeyboardInterrupt and the like
            raise error
        if isinstance(error, AuditError):  # one instance per caller, the cause chained
            raise type(error)(str(error)) from error
        raise AuditError(f"cannot append to the audit log: {error!r}") from error

    def _append_in(
        self, conn: Session | Connection, items: list[tuple[str, str, str, dict[str, Any]]]
    ) -> list[AuditEntry]:
        # The UPDATE comes first: it takes the write/row lock before anything is read.
        head = conn.execute(_BUMP_HEAD, {"n": len(items)}).one_or_none()
        if head is None:
            raise AuditChainBrokenError("audit head row is missing; the log was tampered with")
        seq, prev = head[0] - len(items), head[1]
        ts = _now()
        entries, rows = [], []
        for event, actor, subject, details in items:
            seq += 1
            digest = entry_hash(
                seq=seq,
                ts=ts,
                event=event,
                actor=actor,
                subject=subject,
                details=details,
                prev_hash=prev,
            )
            rows.append(
                {
                    "seq": seq,
                    "ts": ts,
                    "event": event,
                    "actor": actor,
                    "subject": subject,
                    "details": canonical_json(details).decode("utf-8"),
                    "prev_hash": prev,
                    "entry_hash": digest,
                }
            )
            entries.append(AuditEntry(seq, ts, event, actor, subject, details, prev, digest))
            log.debug("audit %s #%d %s by %s", event, seq, subject, actor)
            prev = digest
        conn.execute(_INSERT_LOG, rows)
        conn.execute(_SET_HEAD, {"h": prev})
        return entries

    # --- reading ----------------------------------------------------------------------
    def head(self) -> tuple[int, str]:
        """``(seq, hex hash)`` of the newest entry; ``(0, 64 zeros)`` for an empty log."""
        with self._read() as session:
            row = session.execute(select(_HEAD.c.seq, _HEAD.c.head_hash)).one()
        return row.seq, row.head_hash

    def query(
        self,
        event: str | None = None,
        subject: str | None = None,
        since_seq: int | None = None,
        limit: int = DEFAULT_QUERY_LIMIT,
    ) -> list[AuditEntry]:
        """Entries in ascending ``seq``; ``since_seq`` is exclusive."""
        stmt = select(_LOG).order_by(_LOG.c.seq).limit(limit)
        if event is not None:
            stmt = stmt.where(_LOG.c.event == str(event))
        if subject is not None:
            stmt = stmt.where(_LOG.c.subject == subject)
        if since_seq is not None:
            stmt = stmt.where(_LOG.c.seq > since_seq)
        with self._read() as session:
            return [row_to_entry(r) for r in session.execute(stmt)]

    def iter_entries(self, batch: int = 1_000) -> Iterator[AuditEntry]:
        """Every entry in order, read in batches (for exports)."""
        last = 0
        while True:
            chunk = self.query(since_seq=last, limit=batch)
            yield from chunk
            if len(chunk) < batch:
                return
            last = chunk[-1].seq

    def verify(self) -> AuditVerification:
        """Recompute the whole chain and pinpoint the first entry that does not verify."""
        with self._read() as session:
            head = session.execute(select(_HEAD.c.seq, _HEAD.c.head_hash)).one_or_none()
            stored_head = head.head_hash if head is not None else ""
            expected_seq, prev = 1, GENESIS_HASH.hex()
            anchors: list[tuple[int, int, str]] = []
            for row in session.execute(select(_LOG).order_by(_LOG.c.seq)).yield_per(1_000):
                if row.seq != expected_seq:
                    return _broken(expected_seq, f"entry {expected_seq} is missing", stored_head)
                try:
                    details = json.loads(row.details)
                    digest = entry_hash(
                        seq=row.seq,
                        ts=row.ts,
                        event=row.event,
                        actor=row.actor,
                        subject=row.subject,
                        details=details,
                        prev_hash=row.prev_hash,
                    )
                except (ValueError, TypeError):
                    return _broken(row.seq, "details are not valid JSON", stored_head)
                if digest != row.entry_hash:
                    return _broken(row.seq, "contents do not match the stored hash", stored_head)
                if row.prev_hash != prev:
                    # This row is self-consistent, so the one before it was rewritten.
                    return _broken(
                        row.seq - 1,
                        f"rewritten: entry {row.seq} does not link to it",
                        stored_head,
                    )
                if row.event == AuditEvent.ANCHOR:
                    count_field = details.get("count") if isinstance(details, dict) else None
                    if not isinstance(count_field, int) or count_field >= row.seq:
                        return _broken(row.seq, "anchor entry is malformed", stored_head)
                    anchors.append((row.seq, count_field, str(details.get("root", ""))))
                prev, expected_seq = row.entry_hash, expected_seq + 1
            count = expected_seq - 1
            if head is None:
                return _broken(count + 1, "the audit head row is missing", stored_head)
            if head.seq > count:
                return _broken(
                    count + 1, f"the head says {head.seq} entries but {count} remain", stored_head
                )
            if head.seq < count:
                return _broken(
                    head.seq + 1, f"entries after the head ({head.seq}) were added", stored_head
                )
            if head.head_hash != prev:
                return _broken(max(count, 1), "the last entry was rewritten", stored_head)
            for seq, anchored_count, root in anchors:
                if self._hash_at(session, anchored_count) != root.removeprefix("0x"):
                    return _broken(
                        seq, f"anchor does not match entry {anchored_count}", stored_head
                    )
        return AuditVerification(True, count, prev, anchors_checked=len(anchors))

    @staticmethod
    def _hash_at(session: Session, seq: int) -> str | None:
        if seq == 0:
            return GENESIS_HASH.hex()
        return session.execute(select(_LOG.c.entry_hash).where(_LOG.c.seq == seq)).scalar()

    # --- anchoring --------------------------------------------------------------------
    def root_for_anchor(self) -> tuple[bytes, int]:
        """``(bytes32 root, entry_count)``: the head hash commits to every entry so far."""
        seq, digest = self.head()
        return bytes.fromhex(digest), seq

    def verify_anchor(self, root: bytes, count: int) -> bool:
        """Whether ``root`` (e.g. read back from the chain) is the hash of entry ``count``."""
        with self._read() as session:
            stored = self._hash_at(session, count)
        return stored is not None and bytes.fromhex(stored) == bytes(root)

    def record_anchor(
        self, tx_hash: str, root: bytes, count: int, *, actor: str = "platform"
    ) -> AuditEntry:
        """Log that ``root`` (the hash of entry ``count``) was anchored in ``tx_hash``."""
        if len(root) != 32:
            raise AuditError("an audit anchor root must be 32 bytes")
        if not self.verify_anchor(root, count):
            raise AuditError(f"root {root.hex()} is not the hash of audit entry {count}")
        return self.append(
            AuditEvent.ANCHOR,
            actor=actor,
            subject=tx_hash,
            details={"tx_hash": tx_hash, "root": "0x" + root.hex(), "count": count},
        )

    def _read(self) -> _ReadSession:
        return _ReadSession(self._session_factory)


class _ReadSession:
    """Context manager for a read-only session that translates database errors."""

    def __init__(self, factory: sessionmaker[Session]):
        self._session = factory()

    def __enter__(self) -> Session:
        return self._session

    def __exit__(self, exc_type, exc, tb) -> None:
        self._session.close()
        if isinstance(exc, SQLAlchemyError):
            raise AuditError(f"cannot read the audit log: {first_line(exc)}") from exc


def _broken(first_bad: int, reason: str, head_hash: str) -> AuditVerification:
    log.warning("audit chain broken at entry %d: %s", first_bad, reason)
    return AuditVerification(
        False, max(first_bad - 1, 0), head_hash, first_bad_seq=first_bad, reason=reason
    )
