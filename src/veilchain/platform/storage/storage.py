"""IpfsStorage: the one storage class the platform uses, over either backend."""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, runtime_checkable

from veilchain.errors import CidMismatchError
from veilchain.platform.storage.cid import (
    cid_matches,
    compute_cid,
    compute_cid_file,
    normalize_cid,
)

DEFAULT_WORKERS = 8


@runtime_checkable
class StorageBackend(Protocol):
    """What IpfsStorage needs from a backend. CIDs go in any form and come out base32 v1."""

    def add(self, data: bytes | bytearray | memoryview) -> str: ...

    def add_file(self, path: str | os.PathLike[str]) -> str: ...

    def cat(self, cid: str) -> bytes: ...

    def has(self, cid: str) -> bool: ...

    def pin(self, cid: str) -> None: ...

    def unpin(self, cid: str) -> None: ...

    def pins(self) -> list[str]: ...


class IpfsStorage:
    """Content-addressed storage whose every CID is computed and checked locally.

    ``add`` computes the Kubo CIDv1 (raw leaves) itself and refuses with CidMismatchError
    when the backend reports another; ``cat`` recomputes the CID of what the backend returns
    before handing it out. Added content is pinned.
    """

    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend

    def __repr__(self) -> str:
        return f"IpfsStorage({self.backend!r})"

    def _check(self, expected: str, got: str, what: str) -> str:
        got = normalize_cid(got)
        if got != expected:
            raise CidMismatchError(
                f"{self.backend!r} stored {what} as {got}, but its CID is {expected};"
                " refusing to record it (check the node's chunker and CID settings)"
            )
        return got

    def add(self, data: bytes | bytearray | memoryview) -> str:
        """Store and pin ``data``; return its CID, verified against the backend's answer."""
        expected = compute_cid(data)
        return self._check(expected, self.backend.add(data), f"{len(data)} bytes")

    def add_many(
        self, blobs: Iterable[bytes | bytearray | memoryview], *, workers: int = DEFAULT_WORKERS
    ) -> list[str]:
        """``add`` for each blob, ``workers`` at a time (fsyncs and HTTP round trips overlap).

        Returns the CIDs in input order. On the first error the adds not yet started are
        cancelled and the error is raised once the running ones finish.
        """
        blobs = list(blobs)
        if workers <= 1 or len(blobs) <= 1:
            return [self.add(blob) for blob in blobs]
        with ThreadPoolExecutor(max_workers=min(workers, len(blobs))) as pool:
            futures = [pool.submit(self.add, blob) for blob in blobs]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def add_file(self, path: str | os.PathLike[str]) -> str:
        """Store and pin a file without loading it into memory; return its verified CID."""
        expected = compute_cid_file(path)
        return self._check(expected, self.backend.add_file(path), str(path))

    def cat(self, cid: str) -> bytes:
        """The content of ``cid``; CidMismatchError if what the backend returns does not match."""
        cid = normalize_cid(cid)
        data = self.backend.cat(cid)
        if not cid_matches(data, cid):
            raise CidMismatchError(
                f"{self.backend!r} returned {len(data)} bytes for {cid} that hash to"
                f" {compute_cid(data)}; the stored content is corrupt or was substituted"
            )
        return data

    def has(self, cid: str) -> bool:
        return self.backend.has(cid)

    def pin(self, cid: str) -> None:
        self.backend.pin(cid)

    def unpin(self, cid: str) -> None:
        self.backend.unpin(cid)

    def pins(self) -> list[str]:
        return self.backend.pins()


def build_storage(*, api_url: str | None, data_dir: Path, timeout_s: float = 30.0) -> IpfsStorage:
    """IpfsStorage over a daemon at ``api_url``, or the embedded block store in data_dir/ipfs."""
    if api_url is None:
        from veilchain.platform.storage.blockstore import BlockStoreBackend

        return IpfsStorage(BlockStoreBackend(Path(data_dir) / "ipfs"))
    from veilchain.platform.storage.daemon import DaemonBackend

    return IpfsStorage(DaemonBackend(api_url, timeout_s=timeout_s))
