"""Key release and content for grantees; every release and refusal is audited."""

from __future__ import annotations

import base64

from fastapi import APIRouter, Response

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
from veilchain.platform.release import SEAL_SCHEME

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
    recipient = base64.b64decode(body.public_key)  # the schema checked: 32 bytes of base64
    with refusals_limited(ctx, user.address):
        rec, sealed = service.release_key_to(user.address, dataset_id, version, index, recipient)
    return SealedKeyPublic(
        dataset_id=dataset_id,
        version=version,
        index=index,
        image_id=rec.image_id,
        cid=rec.cid,
        scheme=SEAL_SCHEME,
        sealed_key=base64.b64encode(sealed).decode(),
    )


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
        data = service.fetch_image(user.address, dataset_id, index, version=version)
    media_type = "image/png" if data.startswith(b"\x89PNG") else "application/octet-stream"
    return Response(data, media_type=media_type, headers={"Cache-Control": "no-store"})
