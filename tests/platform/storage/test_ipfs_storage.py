"""One contract suite for every storage backend: the block store and a real js-ipfs daemon."""

from __future__ import annotations

import random
from unittest import mock

import pytest

from veilchain.errors import (
    CidMismatchError,
    ContentNotFoundError,
    InvalidCidError,
)
from veilchain.platform.storage import (
    BlockStoreBackend,
    DaemonBackend,
    IpfsStorage,
    compute_cid,
)
from veilchain.platform.storage.cid import CHUNK_SIZE, _b58encode, decode_cid

# ipfshttpclient 0.7 passes urllib3 a deprecated argument on every request.
pytestmark = pytest.mark.filterwarnings("ignore:The 'strict' parameter:FutureWarning")

SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 1_000_000]


def payload(n: int, seed: int = 0) -> bytes:
    return random.Random(n * 7919 + seed).randbytes(n)


@pytest.fixture(params=["blockstore", pytest.param("jsipfs", marks=pytest.mark.integration)])
def storage(request, tmp_path) -> IpfsStorage:
    if request.param == "blockstore":
        return IpfsStorage(BlockStoreBackend(tmp_path / "ipfs"))
    api = request.getfixturevalue("ipfs_api_addr")
    return IpfsStorage(DaemonBackend(api, lookup_timeout_s=1.0))


@pytest.mark.parametrize("size", SIZES)
def test_add_returns_the_local_cid_and_cat_returns_the_bytes(storage, size: int) -> None:
    data = payload(size)
    cid = storage.add(data)
    assert cid == compute_cid(data)
    assert storage.cat(cid) == data
    assert storage.has(cid)
    assert cid in storage.pins()


def test_add_is_idempotent(storage) -> None:
    data = payload(5000)
    assert storage.add(data) == storage.add(data) == compute_cid(data)


def test_add_many_keeps_order(storage) -> None:
    blobs = [payload(n, seed=3) for n in (10, 20_000, 300_000)]
    assert storage.add_many(blobs) == [compute_cid(b) for b in blobs]


def test_add_file_matches_add(storage, tmp_path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(payload(700_000))
    assert storage.add_file(path) == compute_cid(payload(700_000))


def test_cat_accepts_any_form_of_the_cid(storage) -> None:
    data = payload(CHUNK_SIZE + 1, seed=4)
    cid = storage.add(data)
    version, codec, _, digest = decode_cid(cid)
    base58 = "z" + _b58encode(b"\x01" + bytes([codec, 0x12, 0x20]) + digest)
    assert storage.cat(base58) == data
    assert storage.cat(cid.upper()) == data  # base32 upper case, multibase "B"


def test_pin_unpin_and_list(storage) -> None:
    cid = storage.add(payload(1234, seed=5))
    storage.unpin(cid)
    assert cid not in storage.pins()
    with pytest.raises(ContentNotFoundError, match="not pinned"):
        storage.unpin(cid)
    storage.pin(cid)
    assert cid in storage.pins()
    assert storage.cat(cid) == payload(1234, seed=5)


def test_missing_content_is_content_not_found(storage) -> None:
    missing = compute_cid(b"never stored " + random.randbytes(16))
    with pytest.raises(ContentNotFoundError, match=missing) as info:
        storage.cat(missing)
    assert "\n" not in str(info.value)
    with pytest.raises(ContentNotFoundError):
        storage.pin(missing)
    assert not storage.has(missing)


def test_malformed_cid_is_refused_before_the_backend(storage) -> None:
    for op in (storage.cat, storage.pin, storage.unpin, storage.has):
        with pytest.raises(InvalidCidError):
            op("bafy-not-a-cid")


# The one failure a real daemon cannot be made to produce: it reports another CID.
def test_add_refuses_a_backend_cid_that_differs_from_the_local_one(storage) -> None:
    other = compute_cid(b"something else")
    with (
        mock.patch.object(storage.backend, "add", return_value=other),
        pytest.raises(CidMismatchError, match="refusing to record") as info,
    ):
        storage.add(b"what we stored")
    assert other in str(info.value) and compute_cid(b"what we stored") in str(info.value)
    assert "\n" not in str(info.value)
