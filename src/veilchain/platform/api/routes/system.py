"""Health of the API and the components behind it."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from veilchain.platform.api.deps import CtxDep, ServiceDep
from veilchain.platform.trust import deployment_record

router = APIRouter(tags=["system"])


class HealthPublic(BaseModel):
    status: str = Field(examples=["ok"])
    chain_id: int = Field(examples=[1337])
    version: str = Field(examples=["1.0.0"])


@router.get("/healthz", response_model=HealthPublic)
def health(ctx: CtxDep) -> HealthPublic:
    """Liveness: the API answers and knows its chain."""
    return HealthPublic(status="ok", chain_id=ctx.chain_id, version="1.0.0")


@router.get("/.well-known/veilchain.json")
def well_known(service: ServiceDep) -> dict:
    """The deployment record an auditor pins (docs/contract.md): chain id, genesis hash,
    contract address and code hash, admin, key service, current institutions and auditors,
    and the CA certificate of this institution's Content Credentials (docs/provenance.md)."""
    return deployment_record(service.chain, service.accounts, service.signing_identity())
