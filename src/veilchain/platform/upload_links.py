"""Signed, short-lived links to a running job's decrypted uploads, for Ray workers elsewhere.

An API upload is decrypted into the API host's ``/dev/shm`` (``uploads.py``), which the
workers of a remote Ray cluster cannot read. With ``VEILCHAIN_EXECUTOR__UPLOAD_URL`` set (the
API's own address as the workers reach it), the Ray executor hands the workers links instead
of paths, and they fetch them like any ``http(s)://`` source (``anonymizer/sources.py``):

    {upload_url}/uploads/{job id}/{NNNNNN}.img?expires={unix s}&sig={HMAC-SHA256, hex}

- **Per registration:** each job gets a random 32-byte key, held in this process's memory
  only, when its Ray run starts; a link is signed with its job's key over the job id, the
  file name and the expiry, so it names one file of one job and cannot be altered.
- **Only while it runs:** :meth:`UploadLinks.close` (called when the job's files leave
  ``/dev/shm``, on success, failure or abort) drops the key: every link of the job is dead
  at once, before its expiry; a restarted API has no keys at all.
- **Short-lived:** a link is signed when its batch is sent to a worker (a batch sent again
  gets fresh links) and expires ``LINK_TTL_S`` later.
- **No listing, no traversal:** the job id and the name must match fixed patterns before
  any file is touched; the file is opened without following links; every refusal is the
  same 404, whichever check failed; signatures are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from veilchain.anonymizer.image_io import MAX_IMAGE_BYTES
from veilchain.errors import ConfigError, ContentNotFoundError, InputError

if TYPE_CHECKING:
    from veilchain.platform.executors import ExecutorChoice

__all__ = ["LINK_TTL_S", "UploadLinks"]

LINK_TTL_S = 900
_JOB = re.compile(r"[0-9a-f]{32}")
_NAME = re.compile(r"[0-9]{6}\.img")
_EXPIRES = re.compile(r"[0-9]{1,12}")  # ASCII digits only: int() of anything else may raise
_clock = time.time  # the expiry's clock (a test moves it)
_REFUSED = "no such upload: the link is wrong or expired, or its job is not running"


def upload_locator(
    job_id: str | None, executor: ExecutorChoice, links: UploadLinks | None
) -> Callable[[str], str] | None:
    """For an API job's upload with ``executor.upload_url`` set: signed links to its files in
    the API's memory (the job's Ray workers may be elsewhere); else None (they read paths)."""
    from veilchain.anonymizer.ray_batch import is_loopback

    if job_id is None:
        return None  # the CLI's inputs: shared paths or URIs, read as they are
    if executor.upload_url is not None and links is not None:
        return links.open(job_id, executor.upload_url)
    if not is_loopback(executor.address):
        raise ConfigError(
            f"an API upload cannot be read by the Ray cluster at {executor.address} (it is in"
            " this host's memory): set VEILCHAIN_EXECUTOR__UPLOAD_URL to this API's URL"
        )
    return None


class UploadLinks:
    """The link keys of the jobs whose uploads are being read by remote workers."""

    def __init__(self, root: Callable[[str], Path], *, ttl_s: float = LINK_TTL_S) -> None:
        self._root = root  # job id -> the folder of its decrypted uploads
        self._ttl_s = ttl_s
        self._keys: dict[str, bytes] = {}
        self._served: dict[str, int] = {}  # job id -> files served (audited at close)
        self._lock = threading.Lock()

    def open(self, job_id: str, base_url: str) -> Callable[[str], str]:
        """Start serving ``job_id``'s uploads: a function mapping one of its upload paths to
        a fresh signed link under ``base_url`` (the API as the workers reach it)."""
        if not _JOB.fullmatch(job_id):
            raise InputError(f"not a job id: {job_id!r}")
        with self._lock:
            key = self._keys.setdefault(job_id, secrets.token_bytes(32))
            self._served.setdefault(job_id, 0)
        root, base = self._root(job_id), base_url.rstrip("/")

        def link(source: str) -> str:
            path = Path(source)
            if path.parent != root or not _NAME.fullmatch(path.name):
                raise InputError(f"{path.name}: not an upload of job {job_id}")
            expires = int(_clock() + self._ttl_s)
            query = urlencode({"expires": expires, "sig": _sign(key, job_id, path.name, expires)})
            return f"{base}/uploads/{job_id}/{path.name}?{query}"

        return link

    def close(self, job_id: str) -> int | None:
        """Stop serving ``job_id``'s uploads: its key is dropped, every link of it is dead.
        The number of files it served, or None if it was not open."""
        with self._lock:
            self._keys.pop(job_id, None)
            return self._served.pop(job_id, None)

    def is_open(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._keys

    def read(self, job_id: str, name: str, expires: str, sig: str) -> bytes:
        """The bytes a link names, or ContentNotFoundError (one message for every refusal)."""
        with self._lock:
            key = self._keys.get(job_id) if _JOB.fullmatch(job_id) else None
        if key is None or not _NAME.fullmatch(name) or not _EXPIRES.fullmatch(expires):
            raise ContentNotFoundError(_REFUSED)
        wanted = _sign(key, job_id, name, int(expires)).encode()
        if not hmac.compare_digest(wanted, sig.encode("utf-8", "replace")):
            raise ContentNotFoundError(_REFUSED)
        if int(expires) < _clock():
            raise ContentNotFoundError(_REFUSED)
        try:
            fd = os.open(self._root(job_id) / name, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            raise ContentNotFoundError(_REFUSED) from None
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ContentNotFoundError(_REFUSED)
            data = fh.read(MAX_IMAGE_BYTES + 1)
        with self._lock:
            if job_id in self._served:
                self._served[job_id] += 1
        return data


def _sign(key: bytes, job_id: str, name: str, expires: int) -> str:
    message = f"{job_id}/{name}/{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()
