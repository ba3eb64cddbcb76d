"""The daemon backend: any IPFS node with the ``/api/v0`` RPC API (Kubo, js-ipfs).

Every ipfshttpclient exception is translated here into a StorageError subclass.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from veilchain.errors import (
    ConfigError,
    ContentNotFoundError,
    StorageError,
    StorageUnavailableError,
)
from veilchain.platform.storage.cid import CHUNK_SIZE, normalize_cid

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_LOOKUP_TIMEOUT_S = 5.0

T = TypeVar("T")

# ipfshttpclient 0.7 passes urllib3 a 'strict' argument, which warns on every request.
warnings.filterwarnings("ignore", message=".*'strict' parameter", category=FutureWarning)

# Kubo's `ipfs add --cid-version=1 --raw-leaves`, spelled out so a node with other defaults
# still produces the CID compute_cid gives.
_ADD_OPTIONS: dict[str, Any] = {
    "cid_version": 1,
    "raw_leaves": True,
    "chunker": f"size-{CHUNK_SIZE}",
    "trickle": False,
    "pin": True,
}


def to_multiaddr(api: str) -> str:
    """``/ip4/127.0.0.1/tcp/5001`` as is; ``http://host:port`` as the equivalent multiaddr."""
    api = api.strip()
    if api.startswith("/"):
        return api
    parts = urlsplit(api if "://" in api else f"http://{api}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"IPFS API address {api!r} is neither a multiaddr like /ip4/127.0.0.1/tcp/5001"
            " nor a URL like http://127.0.0.1:5001"
        )
    host = parts.hostname
    proto = "ip6" if ":" in host else "ip4" if host.replace(".", "").isdigit() else "dns"
    port = parts.port or (443 if parts.scheme == "https" else 5001)
    return f"/{proto}/{host}/tcp/{port}/{parts.scheme}"


class DaemonBackend:
    """IPFS storage on a running daemon via ``ipfshttpclient.Client(addr)``.

    The client's ``connect()`` is not used: its version check rejects every current daemon.
    A CID that the node cannot find within ``lookup_timeout_s`` raises ContentNotFoundError
    instead of hanging; other calls give up after ``timeout_s``.
    """

    def __init__(
        self,
        api_addr: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        lookup_timeout_s: float = DEFAULT_LOOKUP_TIMEOUT_S,
    ) -> None:
        import ipfshttpclient  # imported here: only the daemon backend needs it

        self._ipfs = ipfshttpclient
        self.api_addr = to_multiaddr(api_addr)
        self.timeout_s = timeout_s
        self.lookup_timeout_s = lookup_timeout_s
        self._local = threading.local()
        self._client()  # validate the address now

    def __repr__(self) -> str:
        return f"DaemonBackend({self.api_addr!r})"

    def _client(self):
        client = getattr(self._local, "client", None)
        if client is None:
            try:
                client = self._ipfs.Client(self.api_addr, session=True, timeout=self.timeout_s)
            except self._ipfs.exceptions.AddressError as exc:
                raise ConfigError(
                    f"bad IPFS API address {self.api_addr!r}; use e.g. /ip4/127.0.0.1/tcp/5001"
                ) from exc
            self._local.client = client
        return client

    # --- error translation ---------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[Any], T], *, cid: str | None = None) -> T:
        """Run ``fn(client)``, translating ipfshttpclient errors into StorageError subclasses."""
        exc_mod = self._ipfs.exceptions
        try:
            return fn(self._client())
        except exc_mod.ConnectionError as exc:
            raise StorageUnavailableError(
                f"IPFS daemon at {self.api_addr} is unreachable ({what}); start it, or leave"
                " the IPFS API address unset to use the embedded block store"
            ) from exc
        except exc_mod.TimeoutError as exc:
            if cid is not None:
                raise ContentNotFoundError(
                    f"{cid} not found by the IPFS daemon at {self.api_addr} within"
                    f" {self.lookup_timeout_s:g} s"
                ) from exc
            raise StorageUnavailableError(
                f"IPFS daemon at {self.api_addr} did not answer {what} within {self.timeout_s:g} s"
            ) from exc
        except exc_mod.ErrorResponse as exc:
            message = " ".join(str(exc).split())
            lowered = message.lower()
            if cid is not None and "not pinned" in lowered:
                raise ContentNotFoundError(
                    f"{cid} is not pinned on the IPFS daemon at {self.api_addr}"
                ) from exc
            if cid is not None and any(s in lowered for s in ("timed out", "not found")):
                raise ContentNotFoundError(
                    f"{cid} not found by the IPFS daemon at {self.api_addr} within"
                    f" {self.lookup_timeout_s:g} s"
                ) from exc
            raise StorageError(f"IPFS daemon at {self.api_addr} refused {what}: {message}") from exc
        except exc_mod.Error as exc:
            message = " ".join(str(exc).split())
            raise StorageError(f"IPFS daemon at {self.api_addr} failed {what}: {message}") from exc

    def _lookup_opts(self) -> dict[str, Any]:
        return {
            "opts": {"timeout": f"{int(self.lookup_timeout_s * 1000)}ms"},
            "timeout": self.lookup_timeout_s + 5,
        }

    def _require(self, cid: str) -> None:
        """ContentNotFoundError unless the node finds the root block within the lookup timeout."""
        self._call("block stat", lambda c: c.block.stat(cid, **self._lookup_opts()), cid=cid)

    # --- StorageBackend --------------------------------------------------------------------------
    def add(self, data: bytes | bytearray | memoryview) -> str:
        if not isinstance(data, bytes):
            data = bytes(data)  # BytesIO shares a bytes object's buffer, copies anything else
        reply = self._call(
            f"add ({len(data)} bytes)",
            lambda c: c.add(io.BytesIO(data), **_ADD_OPTIONS),
        )
        return normalize_cid(reply["Hash"])

    def add_file(self, path: str | os.PathLike[str]) -> str:
        path = Path(path)
        if not path.is_file():
            raise StorageError(f"no such file to add: {path}")
        with path.open("rb") as fh:
            reply = self._call(f"add {path}", lambda c: c.add(fh, **_ADD_OPTIONS))
        return normalize_cid(reply["Hash"])

    def cat(self, cid: str) -> bytes:
        cid = normalize_cid(cid)
        self._require(cid)
        return self._call(
            f"cat {cid}",
            lambda c: c.cat(cid, opts={"timeout": f"{int(self.timeout_s)}s"}),
            cid=cid,
        )

    def has(self, cid: str) -> bool:
        cid = normalize_cid(cid)
        try:
            self._call(
                "block stat",
                lambda c: c.block.stat(cid, offline=True, **self._lookup_opts()),
                cid=cid,
            )
        except ContentNotFoundError:
            return False
        return True

    def pin(self, cid: str) -> None:
        cid = normalize_cid(cid)
        self._require(cid)
        self._call(f"pin add {cid}", lambda c: c.pin.add(cid), cid=cid)

    def unpin(self, cid: str) -> None:
        cid = normalize_cid(cid)
        self._call(f"pin rm {cid}", lambda c: c.pin.rm(cid), cid=cid)

    def pins(self) -> list[str]:
        reply = self._call("pin ls", lambda c: c.pin.ls(type="recursive"))
        return sorted(normalize_cid(key) for key in reply["Keys"])

    def close(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
            self._local.client = None


__all__ = ["DEFAULT_LOOKUP_TIMEOUT_S", "DEFAULT_TIMEOUT_S", "DaemonBackend", "to_multiaddr"]
