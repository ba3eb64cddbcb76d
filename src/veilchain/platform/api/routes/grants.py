"""On-chain access grants: the data set owner grants and revokes; list them."""

from __future__ import annotations

from fastapi import APIRouter

from veilchain.platform.api import adapter
from veilchain.platform.api.deps import Address, CurrentUser, DatasetId, ServiceDep, SessionDep
from veilchain.platform.api.problems import problem_responses
from veilchain.platform.api.schemas import GrantCreate, GrantPublic, GrantsPublic

router = APIRouter(prefix="/datasets/{dataset_id}/grants", tags=["grants"])


@router.get("", response_model=GrantsPublic, responses=problem_responses(401, 403, 404))
def list_grants(
    dataset_id: DatasetId, user: CurrentUser, service: ServiceDep, session: SessionDep
) -> GrantsPublic:
    """Grants of a data set (owner, auditors and the admin see all; a grantee its own)."""
    rows = adapter.list_grants(service, session, dataset_id, user)
    return GrantsPublic(data=rows, count=len(rows))


@router.post(
    "", response_model=GrantPublic, status_code=201, responses=problem_responses(401, 403, 404)
)
def grant(
    dataset_id: DatasetId,
    body: GrantCreate,
    user: CurrentUser,
    service: ServiceDep,
    session: SessionDep,
) -> GrantPublic:
    """Grant ``grantee`` access until ``expires_at`` (a transaction on the contract)."""
    return adapter.grant(service, session, dataset_id, user, body)


@router.delete("/{grantee}", response_model=GrantPublic, responses=problem_responses(401, 403, 404))
def revoke(
    dataset_id: DatasetId, grantee: Address, user: CurrentUser, service: ServiceDep,
    session: SessionDep,
) -> GrantPublic:  # fmt: skip
    """Revoke a grant; future key releases are refused."""
    return adapter.revoke(service, session, dataset_id, user, grantee)
