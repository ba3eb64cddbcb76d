"""The hash-chained audit log: query it, verify it, anchor its root on chain."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from veilchain.platform.api import adapter
from veilchain.platform.api.deps import ServiceDep, require
from veilchain.platform.api.problems import problem_responses
from veilchain.platform.api.schemas import (
    AuditAnchorPublic,
    AuditEntriesPublic,
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
    rows = adapter.audit_query(
        service, event=event, subject=subject, since_seq=since_seq, limit=limit
    )
    return AuditEntriesPublic(data=rows, count=len(rows))


@router.get(
    "/verify", response_model=AuditVerificationPublic, responses=problem_responses(401, 403)
)
def verify_audit(service: ServiceDep, user: Principal = _READERS) -> AuditVerificationPublic:
    """Recompute the hash chain and compare it with the newest on-chain anchor."""
    return adapter.audit_verify(service)


@router.post(
    "/anchor", response_model=AuditAnchorPublic, responses=problem_responses(401, 403, 409)
)
def anchor_audit(
    service: ServiceDep, user: Principal = Depends(require("admin", "auditor", "keyservice"))
) -> AuditAnchorPublic:
    """Anchor the log's head hash on chain (anchorAudit) and log the anchoring."""
    return adapter.audit_anchor(service, actor=user.address)


@router.get("/anchors/latest", response_model=AuditAnchorPublic | None)
def latest_anchor(service: ServiceDep) -> AuditAnchorPublic | None:
    """The newest anchor recorded on chain (public)."""
    return adapter.audit_latest_anchor(service)
