"""On-chain access grants: the data set owner grants and revokes; list them."""

from __future__ import annotations

from fastapi import APIRouter

from veilchain.platform.api.deps import Address, CurrentUser, DatasetId, ServiceDep, SessionDep
from veilchain.platform.api.problems import problem_responses
from veilchain.platform.api.schemas import GrantCreate, GrantPublic, GrantsPublic, JobPublic

router = APIRouter(prefix="/datasets/{dataset_id}/grants", tags=["grants"])


@router.get("", response_model=GrantsPublic, responses=problem_responses(401, 403, 404))
def list_grants(dataset_id: DatasetId, user: CurrentUser, service: ServiceDep) -> GrantsPublic:
    """Grants of a data set (owner, auditors and the admin see all; a grantee its own)."""
    rows = [GrantPublic.of(g) for g in service.list_grants(dataset_id, viewer=user)]
    return GrantsPublic(data=rows, count=len(rows))


@router.post(
    "", response_model=GrantPublic, status_code=201, responses=problem_responses(401, 403, 404)
)
def grant(
    dataset_id: DatasetId, body: GrantCreate, user: CurrentUser, service: ServiceDep
) -> GrantPublic:
    """Grant ``grantee`` access until ``expires_at``, or for ``ttl_s`` from now (a
    transaction on the contract); only the data set's owner may."""
    ttl = None if body.expires_at is not None else body.ttl_s
    done = service.grant(
        dataset_id, body.grantee, expires_at=body.expires_at, ttl_s=ttl, actor=user
    )
    return GrantPublic.of(done.grant, done.tx_hash)


@router.delete("/{grantee}", response_model=GrantPublic, responses=problem_responses(401, 403, 404))
def revoke(
    dataset_id: DatasetId, grantee: Address, user: CurrentUser, service: ServiceDep
) -> GrantPublic:
    """Revoke a grant; future key releases are refused."""
    done = service.revoke(dataset_id, grantee, actor=user)
    return GrantPublic.of(done.grant, done.tx_hash)


reencryptions = APIRouter(prefix="/datasets/{dataset_id}/reencryptions", tags=["grants"])


@reencryptions.post(
    "", response_model=JobPublic, status_code=202, responses=problem_responses(401, 403, 404)
)
def reencrypt(
    dataset_id: DatasetId, user: CurrentUser, service: ServiceDep, session: SessionDep
) -> JobPublic:
    """True revocation, after ``DELETE .../grants/{grantee}``: a job re-encrypts the newest
    version under fresh data keys and registers it as a new version (the owner only); keys
    released before open nothing in it."""
    job = service.submit_reencryption(session, dataset_id=dataset_id, actor=user)
    return JobPublic.model_validate(job)
