"""Against a real js-ipfs daemon: its CIDs equal compute_cid, corruption and outages surface."""

from __future__ import annotations

import base64
import io
import random
import time
import warnings

import pytest

from tests.servers import stop_process_group
from tests.servers.ipfs import start_jsipfs
from veilchain.errors import CidMismatchError, ContentNotFoundError, StorageUnavailableError
from veilchain.platform.storage import (
    DaemonBackend,
    IpfsStorage,
    build_storage,
    compute_cid,
    decode_cid,
    normalize_cid,
)
from veilchain.platform.storage.cid import CHUNK_SIZE, MAX_LINKS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:The 'strict' parameter:FutureWarning"),
]

LEVEL1_FULL = MAX_LINKS * CHUNK_SIZE
# Up to and across the second DAG level (a third level needs 174**2 chunks, 7.9 GB).
DAG_SIZES = [
    CHUNK_SIZE + 1,
    3 * CHUNK_SIZE,
    LEVEL1_FULL - 1,
    LEVEL1_FULL,
    LEVEL1_FULL + 1,
    LEVEL1_FULL + 2 * CHUNK_SIZE + 17,
]


def payload(n: int) -> bytes:
    return random.Random(n ^ 0x5EED).randbytes(n)


@pytest.fixture(scope="module")
def client(ipfs_api_addr):
    import ipfshttpclient

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield ipfshttpclient.Client(ipfs_api_addr)


@pytest.mark.parametrize("size", DAG_SIZES)
def test_daemon_cid_equals_compute_cid_across_dag_levels(ipfs_api_addr, size: int) -> None:
    data = payload(size)
    backend = DaemonBackend(ipfs_api_addr)
    cid = backend.add(data)  # js-ipfs answers base58; the backend normalizes
    assert cid == compute_cid(data)
    assert cid.startswith("bafy")


@pytest.mark.parametrize("size", [1024, CHUNK_SIZE + 1, LEVEL1_FULL + 1])
def test_plain_add_gives_compute_cid_v0(client, size: int) -> None:
    data = payload(size)
    reply = client.add(io.BytesIO(data), pin=False)
    assert reply["Hash"] == compute_cid(data, version=0)


def test_add_file_through_the_daemon(ipfs_api_addr, tmp_path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(payload(LEVEL1_FULL + 1))
    storage = build_storage(api_url=ipfs_api_addr, data_dir=tmp_path)
    cid = storage.add_file(path)
    assert cid == compute_cid(payload(LEVEL1_FULL + 1))
    assert storage.cat(cid) == payload(LEVEL1_FULL + 1)


def test_corrupt_block_in_the_daemon_repo_is_never_served(ipfs_daemon) -> None:
    data = payload(5000)
    storage = IpfsStorage(DaemonBackend(ipfs_daemon.api_addr))
    cid = storage.add(data)
    multihash = decode_cid(cid)[3]
    key = base64.b32encode(b"\x12\x20" + multihash).decode().rstrip("=")
    block = ipfs_daemon.repo / "blocks" / key[-3:-1] / f"{key}.data"
    raw = bytearray(block.read_bytes())
    raw[100] ^= 0xFF
    block.write_bytes(bytes(raw))
    with pytest.raises(CidMismatchError, match="corrupt or was substituted") as info:
        storage.cat(cid)  # js-ipfs serves the flipped byte without checking it
    assert cid in str(info.value) and "\n" not in str(info.value)
    storage.unpin(cid)


def test_missing_cid_fails_fast(ipfs_api_addr) -> None:
    storage = IpfsStorage(DaemonBackend(ipfs_api_addr, lookup_timeout_s=1.0))
    missing = compute_cid(random.randbytes(64))
    started = time.monotonic()
    with pytest.raises(ContentNotFoundError, match="not found"):
        storage.cat(missing)
    assert time.monotonic() - started < 10


def test_pins_are_listed_in_base32(ipfs_api_addr) -> None:
    storage = IpfsStorage(DaemonBackend(ipfs_api_addr))
    cid = storage.add(payload(77))
    pins = storage.pins()
    assert cid in pins
    assert all(p == normalize_cid(p) for p in pins)


def test_daemon_stopped_mid_session_is_unavailable_naming_the_address(tmp_path) -> None:
    proc, api, _ = start_jsipfs(tmp_path / "repo")
    try:
        storage = IpfsStorage(DaemonBackend(api, timeout_s=10))
        cid = storage.add(b"before the outage")
    finally:
        stop_process_group(proc)
    with pytest.raises(StorageUnavailableError) as info:
        storage.cat(cid)
    assert api in str(info.value) and "unreachable" in str(info.value)
