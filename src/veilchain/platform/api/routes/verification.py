"""Auditors verify a data set version from the chain and record the verdict (attest)."""

from __future__ import annotations

from fastapi import APIRouter

from veilchain.platform.api.deps import AuditorUser, DatasetId, ServiceDep, SessionDep, VersionNo
from veilchain.platform.api.problems import problem_responses
from veilchain.platform.api.schemas import JobPublic, VerificationCreate

router = APIRouter(prefix="/datasets/{dataset_id}/versions/{version}", tags=["verification"])


@router.post(
    "/verifications",
    response_model=JobPublic,
    status_code=202,
    responses=problem_responses(401, 403, 404),
)
def start_verification(
    dataset_id: DatasetId,
    version: VersionNo,
    service: ServiceDep,
    session: SessionDep,
    user: AuditorUser,
    body: VerificationCreate | None = None,
) -> JobPublic:
    """Start verifying every image of a version (CIDs, hashes, Merkle root against the
    chain). The job's result is the per-image report; with ``attest`` the report is pinned
    and the verdict recorded on chain."""
    body = body or VerificationCreate()
    job = service.submit_verification(
        session, owner=user.address, dataset_id=dataset_id, version=version, attest=body.attest
    )
    return JobPublic.model_validate(job)
