"""IPFS storage: Kubo-identical CIDs, the embedded block store and the daemon backend.

The platform uses :class:`IpfsStorage` (built by :func:`build_storage`); it checks every
CID a backend reports or serves against the CID computed locally.
"""

from veilchain.platform.storage.blockstore import BlockStoreBackend
from veilchain.platform.storage.cid import (
    cid_matches,
    compute_cid,
    compute_cid_file,
    compute_cid_stream,
    decode_cid,
    normalize_cid,
)
from veilchain.platform.storage.daemon import DaemonBackend
from veilchain.platform.storage.storage import IpfsStorage, StorageBackend, build_storage

__all__ = [
    "BlockStoreBackend",
    "DaemonBackend",
    "IpfsStorage",
    "StorageBackend",
    "build_storage",
    "cid_matches",
    "compute_cid",
    "compute_cid_file",
    "compute_cid_stream",
    "decode_cid",
    "normalize_cid",
]
