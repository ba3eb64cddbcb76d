"""The embedded IPFS backend: a content-addressed store in a local directory.

Layout under ``root`` (see docs/storage.md)::

    objects/<xy>/<cid>   the whole content, named by its base32 CIDv1 (xy: the CID's two
                         characters before the last one, as Kubo's flatfs shards)
    pins/<cid>           an empty file per pinned CID
    tmp/                 files being written; renamed into place once fsynced

Every read recomputes the CID, so a corrupt object is reported, never served.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

from veilchain.errors import CidMismatchError, ContentNotFoundError, StorageError
from veilchain.platform.storage.cid import (
    ReadsInto,
    compute_cid,
    compute_cid_stream,
    normalize_cid,
)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _TeeReader:
    """Wraps a binary file: everything read through ``readinto`` is also written to ``sink``."""

    def __init__(self, source: ReadsInto, sink: BinaryIO) -> None:
        self.source, self.sink = source, sink

    def readinto(self, buf: memoryview) -> int | None:
        got = self.source.readinto(buf)
        if got:
            self.sink.write(memoryview(buf)[:got])
        return got


class BlockStoreBackend:
    """Whole-object store keyed by CID, with atomic writes and pins; no daemon needed."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._objects = self.root / "objects"
        self._pins = self.root / "pins"
        self._tmp = self.root / "tmp"
        try:
            for folder in (self._objects, self._pins, self._tmp):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the block store in {self.root}: {exc}") from exc

    def __repr__(self) -> str:
        return f"BlockStoreBackend({str(self.root)!r})"

    # --- paths -------------------------------------------------------------------------------
    def object_path(self, cid: str) -> Path:
        return self._objects / cid[-3:-1] / cid

    # --- writing -----------------------------------------------------------------------------
    def _publish(self, tmp_path: Path, cid: str) -> None:
        """Rename a fully written, fsynced temp file into place and fsync the directory."""
        target = self.object_path(cid)
        target.parent.mkdir(exist_ok=True)
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)

    def _intact(self, cid: str, data: bytes | memoryview | None = None) -> bool:
        path = self.object_path(cid)
        try:
            if data is not None:
                return path.stat().st_size == len(data) and path.read_bytes() == data
            with path.open("rb") as fh:
                return compute_cid_stream(fh) == cid
        except FileNotFoundError:
            return False

    def add(self, data: bytes | bytearray | memoryview) -> str:
        """Store ``data`` (idempotent; a corrupt copy is replaced), pin it, return its CID."""
        cid = compute_cid(data)
        if not self._intact(cid, memoryview(data).cast("B")):
            tmp = None
            try:
                fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix="add-")
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                self._publish(Path(tmp), cid)
            except OSError as exc:
                self._discard(tmp)
                raise StorageError(f"cannot write to the block store {self.root}: {exc}") from exc
        self.pin(cid)
        return cid

    def add_file(self, path: str | os.PathLike[str]) -> str:
        """Copy the file at ``path`` into the store in one streaming pass; pin it."""
        tmp = None
        try:
            with Path(path).open("rb") as src:
                fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix="add-")
                with os.fdopen(fd, "wb") as dst:
                    cid = compute_cid_stream(_TeeReader(src, dst))
                    dst.flush()
                    os.fsync(dst.fileno())
            if self._intact(cid):
                self._discard(tmp)
            else:
                self._publish(Path(tmp), cid)
        except FileNotFoundError as exc:
            self._discard(tmp)
            raise StorageError(f"no such file to add: {path}") from exc
        except OSError as exc:
            self._discard(tmp)
            raise StorageError(f"cannot add {path} to the block store {self.root}: {exc}") from exc
        self.pin(cid)
        return cid

    @staticmethod
    def _discard(tmp: str | None) -> None:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    # --- reading -----------------------------------------------------------------------------
    def cat(self, cid: str) -> bytes:
        """The content of ``cid``, verified against it; CidMismatchError if the copy is corrupt."""
        cid = normalize_cid(cid)
        try:
            data = self.object_path(cid).read_bytes()
        except FileNotFoundError as exc:
            raise ContentNotFoundError(
                f"{cid} is not in the block store {self.root}; add it first"
            ) from exc
        except OSError as exc:
            raise StorageError(f"cannot read {cid} from {self.root}: {exc}") from exc
        actual = compute_cid(data)
        if actual != cid:
            raise CidMismatchError(
                f"block store object {cid} is corrupt (its content hashes to {actual});"
                " add the original content again"
            )
        return data

    def has(self, cid: str) -> bool:
        return self.object_path(normalize_cid(cid)).is_file()

    def size(self, cid: str) -> int:
        try:
            return self.object_path(normalize_cid(cid)).stat().st_size
        except FileNotFoundError as exc:
            raise ContentNotFoundError(f"{cid} is not in the block store {self.root}") from exc

    # --- pins --------------------------------------------------------------------------------
    def pin(self, cid: str) -> None:
        cid = normalize_cid(cid)
        if not self.has(cid):
            raise ContentNotFoundError(f"cannot pin {cid}: not in the block store {self.root}")
        marker = self._pins / cid
        if not marker.exists():
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT, 0o644))
            _fsync_dir(self._pins)  # an empty file: the directory entry is all there is

    def unpin(self, cid: str) -> None:
        cid = normalize_cid(cid)
        try:
            (self._pins / cid).unlink()
        except FileNotFoundError as exc:
            raise ContentNotFoundError(f"{cid} is not pinned") from exc
        _fsync_dir(self._pins)

    def pins(self) -> list[str]:
        return sorted(p.name for p in self._pins.iterdir())

    def gc(self) -> list[str]:
        """Delete unpinned objects and temp files older than an hour; return the CIDs removed."""
        pinned = set(self.pins())
        removed = []
        for path in self._objects.glob("*/*"):
            if path.name not in pinned:
                path.unlink(missing_ok=True)
                removed.append(path.name)
        stale = time.time() - 3600
        for path in self._tmp.iterdir():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < stale:
                    path.unlink()
        return sorted(removed)


__all__ = ["BlockStoreBackend"]
