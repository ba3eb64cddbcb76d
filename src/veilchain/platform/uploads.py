"""An API upload's originals: spooled encrypted, decrypted into memory while their job runs,
shredded when it fails or is aborted.

An upload is spooled encrypted under a per-job key set (``upload-<job id>``) in
``<data dir>/uploads/<job id>/`` and decrypted into ``/dev/shm/veilchain-<job id>/`` only while
its job runs. Those are the original faces. When the job fails or is aborted,
:meth:`UploadSpool.shred` deletes the key set first (crypto-shredding: the spool no longer
decrypts even if a file survives), then the files, aborts the job's registration if it has not
reached the chain (its data keys deleted, its pins removed), and audits all of it.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veilchain.anonymizer.image_io import MAX_IMAGE_BYTES  # one cap: uploads and URIs
from veilchain.errors import ConfigError, InputError, RegistrationStateError

if TYPE_CHECKING:
    from veilchain.platform.upload_links import UploadLinks

__all__ = [
    "MAX_IMAGE_BYTES",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_FILES",
    "SHM_DIR",
    "SHRED_EVENT",
    "LINKS_EVENT",
    "JobAbortedError",
    "UploadSpool",
    "job_tmp_dir",
    "spool_dir",
    "upload_keyset",
]

MAX_UPLOAD_FILES = 5_000
MAX_UPLOAD_BYTES = 512 * 1024 * 1024
SHM_DIR = Path("/dev/shm")
SHRED_EVENT = "job_shred"
LINKS_EVENT = "upload_links_closed"  # a job's links to remote Ray workers are dead
_TMP_PREFIX = "veilchain-"


class JobAbortedError(RegistrationStateError):
    pass


def spool_dir(data_dir: Path, job_id: str) -> Path:
    return Path(data_dir).resolve() / "uploads" / job_id


def job_tmp_dir(job_id: str) -> Path:
    return SHM_DIR / f"{_TMP_PREFIX}{job_id}"


def upload_keyset(job_id: str) -> str:
    return f"upload-{job_id}"


class UploadSpool:
    """The originals of API registration jobs under one data directory."""

    def __init__(
        self, *, data_dir: Path, keys: Any, audit: Any, registrar: Any, links: UploadLinks
    ) -> None:
        self.data_dir = Path(data_dir)
        self.links = links  # signed links to a running job's files, for remote Ray workers
        self.keys = keys
        self.audit = audit
        self.registrar = registrar
        self._aborting: set[str] = set()
        self._lock = threading.Lock()

    def check_size(self, items: list[bytes]) -> None:
        """The upload limits (the API also refuses oversized bodies before reading them)."""
        if not items:
            raise InputError("no images uploaded: send files=… or archive=<zip>")
        if len(items) > MAX_UPLOAD_FILES or sum(map(len, items)) > MAX_UPLOAD_BYTES:
            raise InputError("upload too large; split it into several data sets")

    def spool(self, job_id: str, items: list[bytes]) -> None:
        """Write the uploads encrypted under the job's key set (never plaintext on disk)."""
        spool = spool_dir(self.data_dir, job_id)
        spool.mkdir(parents=True, exist_ok=True)
        keyset = upload_keyset(job_id)
        for i, data in enumerate(items):
            blob = self.keys.encrypt(data, dataset=keyset, image=f"{i:06d}")
            (spool / f"{i:06d}.bin").write_bytes(blob)

    def materialize(self, job_id: str) -> list[Path]:
        """Decrypt the job's uploads into memory-backed /dev/shm for the anonymizer."""
        if not SHM_DIR.is_dir():
            raise ConfigError("/dev/shm is missing: uploads are decrypted only into memory")
        tmp = job_tmp_dir(job_id)
        tmp.mkdir(mode=0o700, exist_ok=True)
        keyset, paths = upload_keyset(job_id), []
        for blob in sorted(spool_dir(self.data_dir, job_id).glob("*.bin")):
            path = tmp / f"{blob.stem}.img"
            if not path.exists():
                data = self.keys.decrypt(blob.read_bytes(), dataset=keyset, image=blob.stem)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
            paths.append(path)
        return paths

    def release_memory(self, job_id: str) -> None:
        """The job's originals leave memory; links to them die first (audited: how many
        files its links served, if it had any)."""
        served = self.links.close(job_id)
        shutil.rmtree(job_tmp_dir(job_id), ignore_errors=True)
        if served is not None:
            self.audit.append(LINKS_EVENT, actor="api", subject=f"job:{job_id}",
                              details={"served": served})  # fmt: skip

    def finish(self, job_id: str, *, actor: str) -> None:
        """The job succeeded: its originals and their keys are no longer needed."""
        self.release_memory(job_id)
        self.keys.delete_keys(upload_keyset(job_id), actor=actor)
        shutil.rmtree(spool_dir(self.data_dir, job_id), ignore_errors=True)

    # --- aborting and shredding ---------------------------------------------------
    def request_abort(self, job_id: str) -> None:
        """Ask a running job to stop at its next progress step (it then fails, is shredded)."""
        with self._lock:
            self._aborting.add(job_id)

    def abort_requested(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._aborting

    def shred(self, job_id: str, *, reason: str, actor: str) -> dict:
        """Delete a job's spooled originals, their keys and its unsubmitted registration;
        audited. Safe to call again (what is gone is skipped)."""
        from veilchain.platform.registrations import PROCESSING, SUBMITTING

        spool = spool_dir(self.data_dir, job_id)
        spooled = len(list(spool.glob("*.bin"))) if spool.is_dir() else 0
        keys = self.keys.delete_keys(upload_keyset(job_id), actor=actor)  # shred first
        shutil.rmtree(spool, ignore_errors=True)
        self.release_memory(job_id)
        aborted = None
        reg = self.registrar.registration_of_job(job_id)
        if reg is not None and reg.status in (PROCESSING, SUBMITTING):
            try:
                self.registrar.abort(reg.uid)
                aborted = reg.uid
            except RegistrationStateError:
                pass  # it reached the chain: a registered data set is not shredded
        details = {"reason": reason, "spooled_files": spooled, "upload_keys_deleted": keys,
                   "registration_aborted": aborted}  # fmt: skip
        self.audit.append(SHRED_EVENT, actor=actor, subject=f"job:{job_id}", details=details)
        with self._lock:
            self._aborting.discard(job_id)
        return details
