"""The embedded block store: layout, persistence, corruption detection, atomic writes, gc."""

from __future__ import annotations

import random
import threading

import pytest

from veilchain.errors import CidMismatchError, ContentNotFoundError, StorageError
from veilchain.platform.storage import BlockStoreBackend, IpfsStorage, build_storage, compute_cid


def payload(n: int, seed: int = 0) -> bytes:
    return random.Random(n * 31 + seed).randbytes(n)


@pytest.fixture
def store(tmp_path) -> BlockStoreBackend:
    return BlockStoreBackend(tmp_path / "ipfs")


def _object(store: BlockStoreBackend, cid: str):
    return store.root / "objects" / cid[-3:-1] / cid


def test_layout_one_object_per_cid_and_a_pin_marker(store) -> None:
    cid = store.add(payload(1000))
    assert _object(store, cid).read_bytes() == payload(1000)
    assert (store.root / "pins" / cid).is_file()
    assert list((store.root / "tmp").iterdir()) == []


def test_content_and_pins_persist_across_instances(store) -> None:
    kept = store.add(payload(300_000))
    dropped = store.add(payload(10))
    store.unpin(dropped)
    again = BlockStoreBackend(store.root)
    assert again.cat(kept) == payload(300_000)
    assert again.pins() == [kept]
    assert again.has(dropped)


@pytest.mark.parametrize("size", [1, 5000, 262_145])
def test_flipped_byte_is_detected_not_served(store, size: int) -> None:
    cid = store.add(payload(size))
    path = _object(store, cid)
    raw = bytearray(path.read_bytes())
    raw[size // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(CidMismatchError, match=f"{cid} is corrupt") as info:
        store.cat(cid)
    assert "\n" not in str(info.value)
    with pytest.raises(CidMismatchError):
        IpfsStorage(store).cat(cid)


def test_truncated_and_swapped_objects_are_detected(store) -> None:
    a = store.add(payload(2000, seed=1))
    b = store.add(payload(2000, seed=2))
    _object(store, a).write_bytes(payload(2000, seed=1)[:-1])
    with pytest.raises(CidMismatchError):
        store.cat(a)
    _object(store, b).write_bytes(payload(2000, seed=1))  # another object's valid content
    with pytest.raises(CidMismatchError):
        store.cat(b)


def test_adding_again_repairs_a_corrupt_object(store) -> None:
    data = payload(4096)
    cid = store.add(data)
    _object(store, cid).write_bytes(b"garbage")
    assert store.add(data) == cid
    assert store.cat(cid) == data


def test_add_file_streams_into_place(store, tmp_path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(payload(1_000_000))
    cid = store.add_file(src)
    assert cid == compute_cid(payload(1_000_000))
    assert store.cat(cid) == payload(1_000_000)
    assert cid in store.pins()
    assert store.add_file(src) == cid  # idempotent
    assert list((store.root / "tmp").iterdir()) == []


def test_add_file_missing_is_storage_error(store, tmp_path) -> None:
    with pytest.raises(StorageError, match="no such file"):
        store.add_file(tmp_path / "absent")


def test_gc_removes_only_unpinned(store) -> None:
    kept = store.add(payload(100, seed=1))
    gone = store.add(payload(100, seed=2))
    store.unpin(gone)
    assert store.gc() == [gone]
    assert store.has(kept) and not store.has(gone)
    with pytest.raises(ContentNotFoundError):
        store.cat(gone)


def test_concurrent_adds_of_the_same_content(store) -> None:
    data = payload(600_000)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(store.add(data))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(results) == {compute_cid(data)}
    assert store.cat(results[0]) == data
    assert list((store.root / "tmp").iterdir()) == []


def test_build_storage_embedded_lives_in_data_dir_ipfs(tmp_path) -> None:
    storage = build_storage(api_url=None, data_dir=tmp_path)
    assert isinstance(storage.backend, BlockStoreBackend)
    assert storage.backend.root == tmp_path / "ipfs"
    cid = storage.add(b"hello")
    assert (tmp_path / "ipfs" / "pins" / cid).exists()


def test_unwritable_root_is_one_line_storage_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="cannot create the block store"):
        BlockStoreBackend(blocker / "ipfs")
