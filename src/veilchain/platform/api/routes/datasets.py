"""Data sets: upload images (files or a zip) -> a registration job; list and inspect."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile
from fastapi.concurrency import run_in_threadpool

from veilchain.anonymizer.methods import (
    METHODS,
    METHODS_BY_NAME,
    no_budget_error,
    validate_method,
)
from veilchain.errors import InputError
from veilchain.platform.api.deps import (
    DatasetId,
    InstitutionUser,
    ServiceDep,
    SessionDep,
    VersionNo,
)
from veilchain.platform.api.problems import problem_responses
from veilchain.platform.api.schemas import (
    DatasetPublic,
    DatasetsPublic,
    DatasetSummary,
    JobPublic,
    VersionPublic,
)
from veilchain.platform.limits import check_epsilon, check_seed
from veilchain.platform.statements import LIMITS
from veilchain.platform.uploads import MAX_IMAGE_BYTES, MAX_UPLOAD_BYTES, MAX_UPLOAD_FILES

router = APIRouter(prefix="/datasets", tags=["datasets"])
_EXAMPLES = {
    "description": "Portraits of consenting staff, anonymized for a face detection benchmark.",
    "licence": "CC-BY-4.0",
    "consent": "Every person shown gave written consent to publication on 2026-11-02.",
}


def _statement(field: str) -> Any:
    """The form field of one data set statement; its rules live in platform/statements.py."""
    label, limit, multiline = LIMITS[field]
    lines = "line breaks allowed" if multiline else "one line"
    return Form(
        examples=[_EXAMPLES[field]],
        description=f"The data set's {label}: plain text, at most {limit} characters, {lines};"
        " published in the manifest. Too long or with control characters: 422.",
    )


@router.post(
    "",
    response_model=JobPublic,
    status_code=202,
    responses=problem_responses(400, 401, 403, 413, 422),
)
async def upload_dataset(
    service: ServiceDep,
    session: SessionDep,
    user: InstitutionUser,
    name: Annotated[str, Form(min_length=1, max_length=200, examples=["faces-2026-11"])],
    method: Annotated[str, Form(examples=["pixelate"], description=f"one of {', '.join(METHODS)}")],
    params: Annotated[
        str,
        Form(
            max_length=4000,
            examples=['{"epsilon": 1.0, "seed": 0}'],
            description="JSON object; keys: epsilon (dp and dppix), seed",
        ),
    ] = "{}",
    files: Annotated[list[UploadFile] | None, File(description="Image files.")] = None,
    archive: Annotated[UploadFile | None, File(description="A zip of image files.")] = None,
    allow_recognizable: Annotated[
        bool, Form(description="Publish images whose faces failed the identity check.")
    ] = False,
    description: Annotated[str | None, _statement("description")] = None,
    licence: Annotated[str | None, _statement("licence")] = None,
    consent: Annotated[str | None, _statement("consent")] = None,
) -> JobPublic:
    """Upload images with an anonymization method and its parameters, and optionally the
    data set's description, licence and consent statement (published in its manifest);
    returns the job that anonymizes, encrypts, pins and registers them (poll
    ``GET /jobs/{id}``)."""
    validate_method(method)
    method_params = _method_params(method, params)
    items = await read_upload(files or [], archive)
    job = await run_in_threadpool(
        service.submit_registration, session, owner=user.address, name=name, method=method,
        params=method_params, items=items, allow_recognizable=allow_recognizable,
        description=description, licence=licence, consent=consent,
    )  # fmt: skip
    return JobPublic.model_validate(job)


async def read_upload(files: list[UploadFile], archive: UploadFile | None) -> list[bytes]:
    """Image bytes from uploaded files and/or a zip, within the upload limits."""
    items: list[bytes] = []
    total = 0

    def take(data: bytes, name: str) -> None:
        nonlocal total
        total += len(data)
        if len(data) > MAX_IMAGE_BYTES:
            raise HTTPException(413, f"{name} is larger than {MAX_IMAGE_BYTES >> 20} MiB")
        if total > MAX_UPLOAD_BYTES or len(items) >= MAX_UPLOAD_FILES:
            raise HTTPException(413, "upload too large; split it into several data sets")
        if data:
            items.append(data)

    for f in files:
        take(await f.read(MAX_IMAGE_BYTES + 1), "a file")
    if archive is not None:
        raw = await archive.read(MAX_UPLOAD_BYTES + 1)
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                for info in sorted(zf.infolist(), key=lambda i: i.filename):
                    if info.is_dir() or info.filename.startswith(("__MACOSX/", ".")):
                        continue
                    if info.file_size > MAX_IMAGE_BYTES:
                        raise HTTPException(413, "a zip member is larger than the limit")
                    take(zf.read(info), "a zip member")
        except zipfile.BadZipFile as exc:
            raise InputError("archive is not a readable zip file") from exc
    return items


def _method_params(method: str, params: str) -> dict:
    """The upload's ``params`` JSON, checked: only the keys the pipeline uses, right types."""
    try:
        out = json.loads(params)
    except ValueError as exc:
        raise InputError('params must be a JSON object, e.g. {"epsilon": 1.0}') from exc
    if not isinstance(out, dict):
        raise InputError('params must be a JSON object, e.g. {"epsilon": 1.0}')
    unknown = sorted(set(out) - {"epsilon", "seed"})
    if unknown:
        raise InputError(f"unknown params {', '.join(unknown)}; accepted: epsilon, seed")
    eps = out.get("epsilon")
    if eps is not None:
        if not METHODS_BY_NAME[method].takes_epsilon:
            raise no_budget_error(method)
        check_epsilon(eps)
    check_seed(out.get("seed"))
    return out


@router.get("", response_model=DatasetsPublic)
def list_datasets(
    service: ServiceDep,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> DatasetsPublic:
    """Data sets on the contract, with the newest version's size and method."""
    rows, count = service.list_datasets(limit=limit, offset=offset)
    return DatasetsPublic(data=[DatasetSummary.of(r) for r in rows], count=count)


@router.get("/{dataset_id}", response_model=DatasetPublic, responses=problem_responses(404))
def get_dataset(dataset_id: DatasetId, service: ServiceDep) -> DatasetPublic:
    """A data set with every on-chain version and its attestations."""
    return DatasetPublic.of_detail(service.dataset_detail(dataset_id))


@router.get(
    "/{dataset_id}/versions/{version}",
    response_model=VersionPublic,
    responses=problem_responses(404),
)
def get_version(dataset_id: DatasetId, version: VersionNo, service: ServiceDep) -> VersionPublic:
    """One version as recorded on chain (root, manifest CID, model hash, privacy params)."""
    return VersionPublic.of(service.version_detail(dataset_id, version))
