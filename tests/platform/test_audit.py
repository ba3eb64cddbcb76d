"""The hash-chained audit log: verification, tamper pinpointing, concurrency, anchoring."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import threading
import time

import pytest
from sqlalchemy import delete, select, update

from veilchain.errors import AuditError
from veilchain.platform.audit import AuditLog
from veilchain.platform.audit_entries import AuditHead, AuditRow
from veilchain.platform.db import make_engine, make_session_factory

LOG = AuditRow.__table__
HEAD = AuditHead.__table__


@pytest.fixture
def sf(session_factory):
    return session_factory


@pytest.fixture
def filled(audit):
    for i in range(1, 11):
        audit.append("release", actor=f"0xuser{i}", subject=f"ds/{i}", details={"n": i})
    return audit


def _independent_hash(entry: dict) -> str:
    """docs/keys.md, re-implemented without Veilchain's code."""
    body = {k: entry[k] for k in ("seq", "ts", "event", "actor", "subject", "details")}
    body["prev_hash"] = entry["prev_hash"]
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(bytes.fromhex(entry["prev_hash"]) + canonical.encode()).hexdigest()


def test_chain_links_and_matches_documented_hash(filled):
    entries = filled.query()
    assert [e.seq for e in entries] == list(range(1, 11))
    assert entries[0].prev_hash == "0" * 64
    for prev, cur in zip(entries, entries[1:], strict=False):
        assert cur.prev_hash == prev.entry_hash
    for e in entries:
        assert _independent_hash(e.to_dict()) == e.entry_hash
    result = filled.verify()
    assert result.ok and result.entries == 10 and result.first_bad_seq is None
    assert (
        filled.head() == (10, entries[-1].entry_hash) and result.head_hash == entries[-1].entry_hash
    )


def test_unicode_and_nested_details_round_trip(audit):
    e = audit.append(
        "grant", actor="0xabc", subject="Données/é", details={"b": [1, {"z": "ü"}], "a": None}
    )
    assert audit.query()[0] == e and audit.verify().ok


def test_query_filters(filled):
    filled.append("refusal", actor="0xuser3", subject="ds/3", details={"why": "no grant"})
    assert [e.seq for e in filled.query(event="refusal")] == [11]
    assert [e.seq for e in filled.query(subject="ds/3")] == [3, 11]
    assert [e.seq for e in filled.query(since_seq=8)] == [9, 10, 11]
    assert [e.seq for e in filled.query(limit=2)] == [1, 2]
    assert len(list(filled.iter_entries(batch=3))) == 11


@pytest.mark.parametrize(
    "column, value",
    [
        ("subject", "ds/evil"),
        ("actor", "0xmallory"),
        ("details", '{"n":99}'),
        ("ts", "2000-01-01T00:00:00.000000Z"),
        ("event", "grant"),
    ],
)
def test_edited_field_is_pinpointed(filled, sf, column, value):
    with sf() as s:
        s.execute(update(LOG).where(LOG.c.seq == 6).values({column: value}))
        s.commit()
    result = filled.verify()
    assert not result.ok and result.first_bad_seq == 6 and result.entries == 5


def test_rewritten_entry_with_recomputed_hash_is_pinpointed(filled, sf):
    """An attacker who recomputes the edited entry's hash still breaks the next link."""
    e = filled.query(since_seq=3, limit=1)[0].to_dict()
    e["details"] = {"n": 1000}
    with sf() as s:
        s.execute(
            update(LOG)
            .where(LOG.c.seq == 4)
            .values(details='{"n":1000}', entry_hash=_independent_hash(e))
        )
        s.commit()
    result = filled.verify()
    assert (result.ok, result.first_bad_seq) == (False, 4)


def test_deleted_middle_row_is_pinpointed(filled, sf):
    with sf() as s:
        s.execute(delete(LOG).where(LOG.c.seq == 7))
        s.commit()
    result = filled.verify()
    assert (result.ok, result.first_bad_seq) == (False, 7)
    assert "missing" in result.reason


def test_deleted_last_row_is_caught_by_the_head(filled, sf):
    with sf() as s:
        s.execute(delete(LOG).where(LOG.c.seq == 10))
        s.commit()
    result = filled.verify()
    assert (result.ok, result.first_bad_seq) == (False, 10)


def test_reordered_rows_are_pinpointed(filled, sf):
    with sf() as s:
        s.execute(update(LOG).where(LOG.c.seq == 5).values(seq=-5))
        s.execute(update(LOG).where(LOG.c.seq == 6).values(seq=5))
        s.execute(update(LOG).where(LOG.c.seq == -5).values(seq=6))
        s.commit()
    result = filled.verify()
    assert (result.ok, result.first_bad_seq) == (False, 5)


def _forge_history(sf, seq: int, subject: str, *, drop_from: int | None = None) -> None:
    """Rewrite entry ``seq`` and re-chain every later hash and the head, as an attacker
    with write access to the database would."""
    with sf() as s:
        if drop_from is not None:
            s.execute(delete(LOG).where(LOG.c.seq >= drop_from))
        rows = [dict(r._mapping) for r in s.execute(select(LOG).order_by(LOG.c.seq))]
        prev = "0" * 64
        for r in rows:
            if r["seq"] == seq:
                r["subject"] = subject
            r["prev_hash"], r["details"] = prev, json.loads(r["details"])
            r["entry_hash"] = prev = _independent_hash(r)
            s.execute(
                update(LOG)
                .where(LOG.c.seq == r["seq"])
                .values(subject=r["subject"], prev_hash=r["prev_hash"], entry_hash=r["entry_hash"])
            )
        s.execute(update(HEAD).values(seq=len(rows), head_hash=prev))
        s.commit()


def test_forged_history_is_caught_by_the_anchor_entry(filled, sf):
    root, count = filled.root_for_anchor()
    assert (len(root), count) == (32, 10)
    filled.record_anchor("0x" + "ab" * 32, root, count)
    filled.append("release", actor="a", subject="after anchor")
    assert filled.verify().anchors_checked == 1
    _forge_history(sf, 2, "ds/forged")
    result = filled.verify()
    assert (result.ok, result.first_bad_seq) == (False, 11)  # the anchor no longer matches
    assert "anchor" in result.reason


def test_forged_history_without_anchor_entry_is_caught_by_the_chain_root(filled, sf):
    root, count = filled.root_for_anchor()  # the platform anchors this on chain
    filled.record_anchor("0x" + "ab" * 32, root, count)
    _forge_history(sf, 2, "ds/forged", drop_from=11)
    assert filled.verify().ok  # self-consistent again...
    assert not filled.verify_anchor(root, count)  # ...but not the root read from the chain


def test_record_anchor_refuses_a_wrong_root(filled):
    root, count = filled.root_for_anchor()
    with pytest.raises(AuditError):
        filled.record_anchor("0x01", b"\x00" * 32, count)
    with pytest.raises(AuditError):
        filled.record_anchor("0x01", root[:31], count)
    entry = filled.record_anchor("0x01", root, count)
    assert entry.event == "anchor" and entry.details == {
        "tx_hash": "0x01",
        "root": "0x" + root.hex(),
        "count": 10,
    }
    assert filled.verify_anchor(root, count) and filled.verify_anchor(bytes(32), 0)


def test_empty_log(audit):
    assert audit.head() == (0, "0" * 64)
    assert audit.root_for_anchor() == (bytes(32), 0)
    assert audit.verify().ok


@pytest.mark.parametrize(
    "details",
    [
        {"data_key": "00"},
        {"nested": [{"passphrase": "x"}]},
        {"blob": b"\x00"},
        {"x": float("nan")},
        ["not", "a", "dict"],
    ],
)
def test_secrets_and_non_json_details_are_refused(audit, details):
    with pytest.raises(AuditError):
        audit.append("release", actor="a", subject="s", details=details)
    assert audit.head()[0] == 0


def test_bad_event_name_is_refused(audit):
    with pytest.raises(AuditError):
        audit.append("Drop Table", actor="a", subject="s")


def test_append_joins_the_callers_transaction(audit, sf):
    with sf() as s:
        audit.append("register", actor="a", subject="s", session=s)
        s.rollback()
    assert audit.head()[0] == 0
    with sf() as s:
        audit.append("register", actor="a", subject="s", session=s)
        s.commit()
    assert audit.head()[0] == 1 and audit.verify().ok


def test_concurrent_thread_appends_keep_one_chain(audit):
    def worker(n):
        for i in range(40):
            audit.append("release", actor=f"t{n}", subject="ds", details={"i": i})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = audit.verify()
    assert result.ok and result.entries == 240
    assert sorted(e.seq for e in audit.query(limit=1000)) == list(range(1, 241))


def _process_appender(url: str, n: int) -> None:
    log = AuditLog(make_session_factory(make_engine(url)))
    for i in range(25):
        log.append("release", actor=f"p{n}", subject="ds", details={"i": i})


def test_concurrent_process_appends_keep_one_chain(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    AuditLog(make_session_factory(make_engine(url)))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_appender, args=(url, n)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    result = AuditLog(make_session_factory(make_engine(url))).verify()
    assert result.ok and result.entries == 75


def test_grouped_appends_return_their_committed_entries(audit):
    returned = []

    def worker(n):
        for i in range(30):
            returned.append(audit.append("release", actor=f"t{n}", subject="ds", details={"i": i}))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = {e.seq: e for e in audit.query(limit=1000)}
    assert len(returned) == len(stored) == 180 and audit.verify().ok
    assert all(stored[e.seq] == e for e in returned)


def test_a_failed_group_commit_fails_every_caller_in_it(audit, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def broken(self, conn, items):
        time.sleep(0.05)  # let the other callers queue behind this commit
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(AuditLog, "_append_in", broken)
    errors = []

    def worker(n):
        try:
            audit.append("release", actor=f"t{n}", subject="ds")
        except AuditError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(errors) == 5 and all("disk I/O error" in str(e) for e in errors)
    monkeypatch.undo()
    assert audit.head()[0] == 0
    audit.append("release", actor="a", subject="ds")
    assert audit.head()[0] == 1 and audit.verify().ok
