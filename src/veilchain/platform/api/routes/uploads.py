"""A running job's decrypted uploads, for the Ray workers that anonymize them elsewhere.

No sign-in: a link is its own capability (``platform/upload_links.py``), signed for one
file of one running job, short-lived, and dead when the job's files leave memory. Not in
the OpenAPI schema: only this API's own workers get such links.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from veilchain.platform.api.deps import ServiceDep

router = APIRouter(prefix="/uploads", tags=["system"])


@router.get("/{job_id}/{name}", include_in_schema=False)
def upload_file(
    job_id: str, name: str, service: ServiceDep, expires: str = "", sig: str = ""
) -> Response:
    """One upload's bytes for a signed link; 404 for anything else, whatever failed."""
    data = service.uploads.links.read(job_id, name, expires, sig)
    return Response(
        data, media_type="application/octet-stream", headers={"Cache-Control": "no-store"}
    )
