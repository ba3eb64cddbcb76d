"""Persisted jobs and the worker thread that runs them outside HTTP requests.

A job row holds its kind, parameters, owner, status, progress, result and failure reason.
:class:`JobWorker` claims queued jobs one at a time with a conditional UPDATE, runs the
handler registered for the kind and records the outcome. At start-up it puts jobs left
``running`` by a dead process back in the queue with ``resumed=True`` so their handler can
resume (registration resumes through the service) instead of starting over.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, Integer, String, Text, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from veilchain.errors import JobNotFoundError, VeilchainError
from veilchain.platform.db import Base, affected_rows

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "succeeded", "failed")
DEFAULT_POLL_S = 0.5


def _now() -> datetime:
    return datetime.now(UTC)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    owner: Mapped[str] = mapped_column(String(42), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    stage: Mapped[str] = mapped_column(String(64), default="")
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# --- repository functions ---------------------------------------------------
def create_job(
    *, session: Session, kind: str, owner: str, params: dict, job_id: str | None = None
) -> Job:
    """Queue a job (committed: the worker may start it at once)."""
    now = _now()
    job = Job(
        id=job_id or uuid.uuid4().hex,
        kind=kind,
        owner=owner,
        status="queued",
        params=params,
        progress_done=0,
        progress_total=0,
        stage="queued",
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    session.commit()
    return job


def get_job(*, session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise JobNotFoundError(f"no job {job_id!r}; list jobs with GET /jobs")
    return job


def list_jobs(
    *, session: Session, owner: str | None = None, status: str | None = None, limit: int = 50,
    offset: int = 0,
) -> tuple[list[Job], int]:  # fmt: skip
    stmt = select(Job)
    if owner is not None:
        stmt = stmt.where(Job.owner == owner)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    rows = session.scalars(stmt.order_by(Job.created_at.desc()).limit(limit).offset(offset))
    count = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    return list(rows), count


def requeue_interrupted(*, session: Session) -> list[str]:
    """Put jobs a dead process left ``running`` back in the queue, marked for resume."""
    jobs = list(session.scalars(select(Job).where(Job.status == "running")))
    ids = [job.id for job in jobs]
    for job in jobs:
        job.params = {**job.params, "resume": True}
        job.status, job.stage, job.updated_at = "queued", "resuming", _now()
    session.commit()
    return ids


def _claim_next(session: Session) -> Job | None:
    stmt = select(Job.id).where(Job.status == "queued").order_by(Job.created_at).limit(1)
    for job_id in session.scalars(stmt):
        claimed = affected_rows(
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "queued")
                .values(status="running", attempts=Job.attempts + 1, updated_at=_now())
            )
        )
        session.commit()
        if claimed == 1:
            return session.get(Job, job_id)
    return None


# --- the worker ---------------------------------------------------------------
@dataclass
class Progress:
    """Handed to handlers: ``progress(done, total, stage)`` persists how far a job got."""

    session_factory: sessionmaker
    job_id: str

    def __call__(self, done: int, total: int, stage: str = "") -> None:
        with self.session_factory() as s:
            s.execute(
                update(Job)
                .where(Job.id == self.job_id)
                .values(progress_done=done, progress_total=total, stage=stage, updated_at=_now())
            )
            s.commit()


Handler = Callable[[Job, Progress], dict]


class JobWorker:
    """One background thread that runs queued jobs with the handler for their kind."""

    def __init__(
        self, session_factory: sessionmaker, handlers: dict[str, Handler], poll_s=DEFAULT_POLL_S
    ):
        self._sf = session_factory
        self._handlers = handlers
        self._poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> list[str]:
        """Requeue interrupted jobs and start the thread; returns the ids being resumed."""
        with self._sf() as s:
            resumed = requeue_interrupted(session=s)
        if resumed:
            log.info("resuming %d interrupted job(s)", len(resumed))
        self._thread = threading.Thread(target=self._loop, name="veilchain-jobs", daemon=True)
        self._thread.start()
        return resumed

    def notify(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def run_once(self) -> bool:
        """Run one queued job if there is one; True when a job ran."""
        with self._sf() as s:
            job = _claim_next(s)
            if job is None:
                return False
            s.expunge(job)
        self._run(job)
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self.run_once()
            except Exception:  # keep the worker alive; the job row records the failure
                log.exception("job worker iteration failed")
                ran = False
            if not ran:
                self._wake.wait(self._poll_s)
                self._wake.clear()

    def _run(self, job: Job) -> None:
        handler = self._handlers.get(job.kind)
        status, result, error = "failed", None, None
        try:
            if handler is None:
                raise VeilchainError(f"no handler for job kind {job.kind!r}")
            result = handler(job, Progress(self._sf, job.id))
            status = "succeeded"
        except VeilchainError as exc:
            error = str(exc)
        except Exception as exc:  # a bug: record the type, never the traceback or data
            log.exception("job %s (%s) crashed", job.id, job.kind)
            error = f"internal error ({type(exc).__name__}); see the server log"
        with self._sf() as s:
            s.execute(
                update(Job)
                .where(Job.id == job.id)
                .values(
                    status=status,
                    result=result,
                    error=error,
                    stage=status,
                    updated_at=_now(),
                    finished_at=_now(),
                )
            )
            s.commit()
