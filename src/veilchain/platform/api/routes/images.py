"""Image records of a version (from its public manifest), Merkle proofs, privacy reports."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from veilchain.platform.api.deps import DatasetId, ImageIndex, ServiceDep, VersionNo
from veilchain.platform.api.problems import problem_responses
from veilchain.platform.api.schemas import ImagePublic, ImagesPublic, ProofPublic

router = APIRouter(prefix="/datasets/{dataset_id}/versions/{version}/images", tags=["images"])


@router.get("", response_model=ImagesPublic, responses=problem_responses(404, 502))
def list_images(
    dataset_id: DatasetId,
    version: VersionNo,
    service: ServiceDep,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> ImagesPublic:
    """Image records of a version, as published in its manifest."""
    records = service.records(dataset_id, version)
    page = records[offset : offset + limit]
    return ImagesPublic(data=[ImagePublic(**r.to_dict()) for r in page], count=len(records))


@router.get("/{index}", response_model=ImagePublic, responses=problem_responses(404, 502))
def get_image(
    dataset_id: DatasetId, version: VersionNo, index: ImageIndex, service: ServiceDep
) -> ImagePublic:
    """One image record: CID, ciphertext and anonymized-image hashes, size, report."""
    return ImagePublic(**service.record(dataset_id, version, index).to_dict())


@router.get("/{index}/proof", response_model=ProofPublic, responses=problem_responses(404, 502))
async def get_proof(
    dataset_id: DatasetId,
    version: VersionNo,
    index: ImageIndex,
    service: ServiceDep,
    check: bool = Query(False, description="Also call verifyRecord on the contract."),
) -> ProofPublic:
    """The record's Merkle leaf and proof against the on-chain root."""
    if not check:  # hot path: versions are immutable, a proof once built is kept
        cached = service.peek_proof(dataset_id, version, index)
        if cached is not None:
            return ProofPublic(**asdict(cached))
    proof = await run_in_threadpool(service.proof, dataset_id, version, index, check=check)
    return ProofPublic(**asdict(proof))


@router.get("/{index}/report", response_model=dict[str, Any], responses=problem_responses(404, 502))
def get_report(
    dataset_id: DatasetId, version: VersionNo, index: ImageIndex, service: ServiceDep
) -> dict[str, Any]:
    """The privacy report of one image (method, parameters, identity check)."""
    return service.record(dataset_id, version, index).report
