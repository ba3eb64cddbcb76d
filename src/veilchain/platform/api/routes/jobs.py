"""Jobs: progress, result and failure reason of long work (registration, verification)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query

from veilchain.errors import JobNotFoundError
from veilchain.platform import jobs
from veilchain.platform.api.deps import CurrentUser, ServiceDep, SessionDep
from veilchain.platform.api.problems import problem_responses
from veilchain.platform.api.schemas import JobPublic, JobsPublic

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("", response_model=JobsPublic, responses=problem_responses(401))
def list_jobs(
    user: CurrentUser,
    session: SessionDep,
    status: Literal["queued", "running", "succeeded", "failed"] | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> JobsPublic:
    """The caller's jobs, newest first (an admin sees every job)."""
    owner = None if user.has("admin") else user.address
    rows, count = jobs.list_jobs(
        session=session, owner=owner, status=status, limit=limit, offset=offset
    )
    return JobsPublic(data=[JobPublic.model_validate(r) for r in rows], count=count)


@router.get("/{job_id}", response_model=JobPublic, responses=problem_responses(401, 404))
def get_job(job_id: str, user: CurrentUser, session: SessionDep) -> JobPublic:
    """One job; 404 unless the caller started it (or is an admin)."""
    job = jobs.get_job(session=session, job_id=job_id)
    if job.owner != user.address and not user.has("admin"):
        raise JobNotFoundError(f"no job {job_id!r}; list jobs with GET /jobs")
    return JobPublic.model_validate(job)


@router.delete("/{job_id}", response_model=JobPublic, responses=problem_responses(401, 404, 409))
def abort_job(
    job_id: str, user: CurrentUser, session: SessionDep, service: ServiceDep
) -> JobPublic:
    """Abort a job: a queued or failed registration's uploads and their keys are shredded now,
    a running one stops at its next step and is shredded then (audited); 409 if it succeeded."""
    job = service.abort_job(session, job_id, actor=user.address, is_admin=user.has("admin"))
    return JobPublic.model_validate(job)
