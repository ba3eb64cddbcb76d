"""The hash-chained audit log: query it, verify it, anchor its root on chain."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from veilchain.platform.api.deps import ServiceDep, require
from veilchain.platform.api.problems import problem_responses
from veilchain.platform.api.schemas import (
    AuditAnchorPublic,
    AuditEntriesPublic,
    AuditEntryPublic,
    AuditVerificationPublic,
)
from veilchain.platform.auth import Principal

router = APIRouter(prefix="/audit", tags=["audit"])
_READERS = Depends(require("admin", "auditor", "keyservice"))


@router.get("", response_model=AuditEntriesPublic, responses=problem_responses(401, 403))
def query_audit(
    service: ServiceDep,
    user: Principal = _READERS,
    event: str | None = Query(None, max_length=64, examples=["release"]),
    subject: str | None = Query(None, max_length=512),
    since_seq: int | None = Query(None, ge=0, le=2**62),
    limit: int = Query(100, ge=1, le=1000),
) -> AuditEntriesPublic:
    """Audit entries, newest last (admin, auditors, key service)."""
    if since_seq is None and event is None and subject is None:
        since_seq = max(service.audit.head()[0] - limit, 0)  # the newest page
    rows = service.audit.query(event=event, subject=subject, since_seq=since_seq, limit=limit)
    data = [AuditEntryPublic.model_validate(e, from_attributes=True) for e in rows]
    return AuditEntriesPublic(data=data, count=len(data))


@router.get(
    "/verify", response_model=AuditVerificationPublic, responses=problem_responses(401, 403)
)
def verify_audit(service: ServiceDep, user: Principal = _READERS) -> AuditVerificationPublic:
    """Recompute the hash chain and compare it with the newest on-chain anchor."""
    return AuditVerificationPublic(**service.audit_verdict().to_dict())


@router.post(
    "/anchor", response_model=AuditAnchorPublic, responses=problem_responses(401, 403, 409)
)
def anchor_audit(
    service: ServiceDep, user: Principal = Depends(require("admin", "auditor", "keyservice"))
) -> AuditAnchorPublic:
    """Anchor the log's head hash on chain (anchorAudit) and log the anchoring."""
    return AuditAnchorPublic(**service.anchor_audit())


@router.get("/anchors/latest", response_model=AuditAnchorPublic | None)
def latest_anchor(service: ServiceDep) -> AuditAnchorPublic | None:
    """The newest anchor recorded on chain (public)."""
    a = service.chain.latest_audit_anchor()
    if a is None:
        return None
    return AuditAnchorPublic(
        root="0x" + bytes(a.root).hex(),
        count=a.entry_count,
        block_number=a.block_number,
        anchored_at=a.anchored_at,
    )
