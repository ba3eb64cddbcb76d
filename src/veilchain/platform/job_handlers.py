"""The long work the API queues as jobs: register an upload, verify (and attest) a version.

A job is queued in the database (``jobs.py``) and run by the service's :class:`JobWorker`
thread. Registration jobs resume exactly once after a crash: a resumed job first looks for
the registration it started (``registrations.job_id``) and finishes that one.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from veilchain.errors import JobNotFoundError, RegistrationStateError, VeilchainError
from veilchain.platform import jobs
from veilchain.platform.registrations import PROCESSING, REGISTERED, SUBMITTING
from veilchain.platform.statements import DatasetStatements
from veilchain.platform.uploads import JobAbortedError


class JobHandlers:
    """Submits, runs and aborts jobs for one service (``service`` is the facade)."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.worker = jobs.JobWorker(
            service.session_factory,
            {
                "register": self._run_registration,
                "verify": self._run_verification,
                "reencrypt": self._run_reencryption,
            },  # fmt: skip
        )

    # --- registration -----------------------------------------------------------------
    def submit_registration(
        self,
        session: Session,
        *,
        owner: str,
        name: str,
        method: str,
        params: dict,
        items: list[bytes],
        allow_recognizable: bool = False,
        statements: DatasetStatements | None = None,
    ) -> jobs.Job:
        """Spool the uploads encrypted, then queue a registration job (in that order: the
        worker may claim a queued job at once, and must find every upload spooled)."""
        uploads = self.service.uploads
        uploads.check_size(items)
        job_id = uuid.uuid4().hex
        uploads.spool(job_id, items)
        try:
            job = jobs.create_job(
                session=session,
                kind="register",
                owner=owner,
                params={"name": name, "method": method, "method_params": params,
                        "allow_recognizable": allow_recognizable, "count": len(items),
                        "statements": (statements or DatasetStatements()).to_dict()},
                job_id=job_id,
            )  # fmt: skip
        except Exception:
            uploads.shred(job_id, reason="the job could not be queued", actor=owner)
            raise
        self.worker.notify()
        return job

    def _run_registration(self, job: jobs.Job, progress: jobs.Progress) -> dict:
        uploads = self.service.uploads
        try:
            result = self._register(job, progress)
        except Exception as exc:  # failed or aborted: shred the originals, then fail the job
            reason = str(exc) if isinstance(exc, VeilchainError) else type(exc).__name__
            uploads.shred(job.id, reason=reason, actor="api")
            raise
        uploads.finish(job.id, actor="api")
        return result

    def _register(self, job: jobs.Job, outer: jobs.Progress) -> dict:
        service, p = self.service, job.params
        allow = bool(p.get("allow_recognizable"))

        def progress(done: int, total: int, stage: str = "") -> None:
            if service.uploads.abort_requested(job.id):
                raise JobAbortedError(f"job {job.id} was aborted")
            outer(done, total, stage)

        paths = service.uploads.materialize(job.id)
        try:
            # A resumed job finishes the registration it started, if it got that far.
            reg = service.registrar.registration_of_job(job.id)
            if reg is None:
                result = service.register(
                    paths,
                    name=p["name"],
                    method=p["method"],
                    epsilon=p["method_params"].get("epsilon"),
                    seed=p["method_params"].get("seed"),
                    allow_recognizable=allow,
                    progress=progress,
                    job_id=job.id,
                    **p.get("statements", {}),
                )
            elif reg.status == REGISTERED:
                result = service.registration_result(reg.uid)
            elif reg.status in (PROCESSING, SUBMITTING):
                result = service.resume(reg.uid, allow_recognizable=allow, progress=progress)[0]
            else:
                raise RegistrationStateError(f"registration {reg.uid} of this job was aborted")
        finally:
            service.uploads.release_memory(job.id)
        return result.to_dict()

    # --- verification -------------------------------------------------------------------
    def submit_verification(
        self, session: Session, *, owner: str, dataset_id: int, version: int, attest: bool
    ) -> jobs.Job:
        self.service.catalog.version_detail(dataset_id, version)  # unknown -> 404 now
        job = jobs.create_job(
            session=session,
            kind="verify",
            owner=owner,
            params={"dataset_id": dataset_id, "version": version, "attest": attest},
        )
        self.worker.notify()
        return job

    def _run_verification(self, job: jobs.Job, progress: jobs.Progress) -> dict:
        p = job.params
        report = self.service.verify(p["dataset_id"], p["version"], progress=progress)
        out = report.summary()
        if p.get("attest"):
            progress(len(report.images), len(report.images), "attest")
            att = self.service.attest(report)
            out["report_cid"], out["attest_tx"] = att["report_cid"], att["tx_hash"]
        return out

    # --- re-encryption (true revocation) -----------------------------------------------
    def submit_reencryption(
        self, session: Session, *, owner: str, dataset_id: int, actor: Any
    ) -> jobs.Job:
        """Queue re-encrypting the newest version under fresh data keys as a new version
        (after a revocation: the revoked grantee's released keys open nothing new)."""
        self.service.catalog.check_dataset(dataset_id)
        self.service.grants.require_owner(dataset_id, actor)
        job = jobs.create_job(
            session=session, kind="reencrypt", owner=owner, params={"dataset_id": dataset_id}
        )
        self.worker.notify()
        return job

    def _run_reencryption(self, job: jobs.Job, progress: jobs.Progress) -> dict:
        return self.service.add_reencrypted_version(
            job.params["dataset_id"], progress=progress
        ).to_dict()

    # --- aborting -------------------------------------------------------------------------
    def abort(self, session: Session, job_id: str, *, actor: str, is_admin: bool) -> jobs.Job:
        """Stop a job and shred its uploads: a queued or failed job now, a running one at
        its next step; a job that succeeded cannot be aborted."""
        job = jobs.get_job(session=session, job_id=job_id)
        if job.owner != actor and not is_admin:
            raise JobNotFoundError(f"no job {job_id!r}; list jobs with GET /jobs")
        if job.status == "succeeded":
            raise RegistrationStateError(f"job {job_id} already succeeded; nothing to abort")
        reason = f"aborted by {actor}"
        if job.status == "running":
            self.service.uploads.request_abort(job_id)
        else:
            if job.status == "queued":
                session.execute(
                    update(jobs.Job)
                    .where(jobs.Job.id == job_id, jobs.Job.status == "queued")
                    .values(status="failed", error=reason, stage="failed")
                )
                session.commit()
            if job.kind == "register":
                self.service.uploads.shred(job_id, reason=reason, actor=actor)
        session.refresh(job)
        return job
