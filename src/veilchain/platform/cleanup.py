"""Clean failure: what a failed or aborted registration leaves behind is shredded.

An API upload is spooled encrypted under a per-job key set (``upload-<job id>``) in
``<data dir>/uploads/<job id>/`` and decrypted into ``/dev/shm/veilchain-<job id>/`` while it
runs. Those are the original faces. When the job fails or is aborted, :func:`shred_job`
deletes the key set first (crypto-shredding: the spool no longer decrypts even if a file
survives), then the files, aborts the job's registration if it has not reached the chain
(its data keys deleted, its pins removed), and records all of it in the audit log.

The CLI's ``--resume``/``--abort`` act on the CLI's own interrupted registrations only:
:func:`local_pending` leaves out the API jobs' registrations (their images live in the
jobs' /dev/shm directories, which the API server resumes or shreds itself).
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from veilchain.errors import RegistrationStateError

__all__ = [
    "SHM_DIR",
    "JobAbortedError",
    "abort_requested",
    "job_tmp_dir",
    "local_pending",
    "request_abort",
    "shred_job",
    "spool_dir",
    "upload_keyset",
]

SHM_DIR = Path("/dev/shm")
_TMP_PREFIX = "veilchain-"
SHRED_EVENT = "job_shred"
_aborting: set[str] = set()
_lock = threading.Lock()


class JobAbortedError(RegistrationStateError):
    pass


def spool_dir(data_dir: Path, job_id: str) -> Path:
    return Path(data_dir).resolve() / "uploads" / job_id


def job_tmp_dir(job_id: str) -> Path:
    return SHM_DIR / f"{_TMP_PREFIX}{job_id}"


def upload_keyset(job_id: str) -> str:
    return f"upload-{job_id}"


def request_abort(job_id: str) -> None:
    """Ask a running job to stop at its next progress step (it then fails and is shredded)."""
    with _lock:
        _aborting.add(job_id)


def abort_requested(job_id: str) -> bool:
    with _lock:
        return job_id in _aborting


def registration_of_job(service, job_id: str) -> tuple[str, str] | None:
    """(uid, status) of the registration whose images came from this job's /dev/shm dir."""
    from sqlalchemy import select

    from veilchain.platform.registrations import RegistrationImageRow, RegistrationRow

    with service.session_factory() as s:
        row = s.execute(
            select(RegistrationRow.uid, RegistrationRow.status)
            .join(RegistrationImageRow, RegistrationImageRow.uid == RegistrationRow.uid)
            .where(RegistrationImageRow.source.like(f"{job_tmp_dir(job_id)}/%"))
            .limit(1)
        ).first()
    return (row.uid, row.status) if row else None


def shred_job(service, data_dir: Path, job_id: str, *, reason: str, actor: str) -> dict:
    """Delete a registration job's spooled originals, their keys and its unsubmitted
    registration; audited. Safe to call again (what is gone is skipped)."""
    from veilchain.platform.registrations import PROCESSING, SUBMITTING

    spool = spool_dir(data_dir, job_id)
    spooled = len(list(spool.glob("*.bin"))) if spool.is_dir() else 0
    keys = service.keys.delete_keys(upload_keyset(job_id), actor=actor)  # shred first
    shutil.rmtree(spool, ignore_errors=True)
    shutil.rmtree(job_tmp_dir(job_id), ignore_errors=True)
    aborted = None
    found = registration_of_job(service, job_id)
    if found and found[1] in (PROCESSING, SUBMITTING):
        try:
            service.abort(found[0])
            aborted = found[0]
        except RegistrationStateError:
            pass  # it reached the chain: a registered data set is not shredded
    details = {"reason": reason, "spooled_files": spooled, "upload_keys_deleted": keys,
               "registration_aborted": aborted}  # fmt: skip
    service.audit.append(SHRED_EVENT, actor=actor, subject=f"job:{job_id}", details=details)
    with _lock:
        _aborting.discard(job_id)
    return details


def local_pending(service) -> list:
    """Interrupted registrations the CLI owns (not an API job's)."""
    from sqlalchemy import select

    from veilchain.platform.registrations import RegistrationImageRow

    prefix = f"{SHM_DIR / _TMP_PREFIX}%"
    with service.session_factory() as s:
        api_uids = set(
            s.scalars(
                select(RegistrationImageRow.uid).where(RegistrationImageRow.source.like(prefix))
            )
        )
    return [r for r in service.pending_registrations() if r.uid not in api_uids]
