"""Key release and content for grantees; every release and refusal is audited."""

from __future__ import annotations

from fastapi import APIRouter, Response

from veilchain.platform.api import adapter
from veilchain.platform.api.deps import (
    CtxDep,
    CurrentUser,
    DatasetId,
    ImageIndex,
    ServiceDep,
    VersionNo,
)
from veilchain.platform.api.problems import problem_responses
from veilchain.platform.api.schemas import KeyRequest, SealedKeyPublic
from veilchain.platform.api.throttle import refusals_limited

router = APIRouter(prefix="/datasets/{dataset_id}/versions/{version}/images/{index}", tags=["keys"])


@router.post(
    "/key", response_model=SealedKeyPublic, responses=problem_responses(401, 403, 404, 422, 429)
)
def release_key(
    dataset_id: DatasetId,
    version: VersionNo,
    index: ImageIndex,
    body: KeyRequest,
    user: CurrentUser,
    service: ServiceDep,
    ctx: CtxDep,
) -> SealedKeyPublic:
    """The image's data key sealed to the caller's X25519 public key; needs a live grant.
    An account refused too often in a minute gets 429."""
    with refusals_limited(ctx, user.address):
        return adapter.release_key(service, dataset_id, version, index, user, body.public_key)


@router.get(
    "/content",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "application/octet-stream": {}},
              "description": "The decrypted anonymized image."},
        **problem_responses(401, 403, 404, 502),
    },
)  # fmt: skip
def get_content(
    dataset_id: DatasetId,
    version: VersionNo,
    index: ImageIndex,
    user: CurrentUser,
    service: ServiceDep,
    ctx: CtxDep,
) -> Response:
    """The decrypted image bytes; needs a live grant."""
    with refusals_limited(ctx, user.address):
        data, media_type = adapter.fetch_image(service, dataset_id, version, index, user)
    return Response(data, media_type=media_type, headers={"Cache-Control": "no-store"})
