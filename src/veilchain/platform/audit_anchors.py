"""The audit log against the chain: anchor its head hash, and one verdict on it.

The CLI (``veilchain audit verify``) and the API (``GET /audit/verify``) both ask
:func:`audit_verdict`, so they cannot disagree: the log is sound when its hash chain verifies
AND the newest anchor on chain is the hash of the entry it names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from veilchain.chain.client import ChainClient
from veilchain.platform.audit import AuditLog


@dataclass(frozen=True)
class AuditVerdict:
    ok: bool
    entries: int
    head: str
    broken_at: int | None
    reason: str | None
    anchored: bool | None  # None: nothing anchored on chain yet
    anchor_count: int | None

    def to_dict(self) -> dict:
        return asdict(self)


def audit_verdict(audit: AuditLog, chain: ChainClient) -> AuditVerdict:
    chain_check = audit.verify()
    anchor = chain.latest_audit_anchor()
    anchored = None if anchor is None else audit.verify_anchor(anchor.root, anchor.entry_count)
    reason = chain_check.reason
    if reason is None and anchor is not None and anchored is False:
        reason = f"the on-chain anchor of entry {anchor.entry_count} differs from the log"
    return AuditVerdict(
        ok=chain_check.ok and anchored is not False,
        entries=chain_check.entries,
        head=chain_check.head_hash,
        broken_at=chain_check.first_bad_seq,
        reason=reason,
        anchored=anchored,
        anchor_count=None if anchor is None else anchor.entry_count,
    )


def anchor_audit(audit: AuditLog, keyservice: ChainClient, *, actor: str) -> dict[str, Any]:
    """Anchor the log's head hash on chain (signed by the key service) and log it."""
    root, count = audit.root_for_anchor()
    ref = keyservice.anchor_audit(root, count)
    audit.record_anchor(ref.tx_hash, root, count, actor=actor)
    return {"root": "0x" + root.hex(), "count": count, "tx_hash": ref.tx_hash}
