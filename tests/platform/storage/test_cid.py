"""CIDs: Kubo's golden vectors, DAG boundaries, streaming, parsing and normalization."""

from __future__ import annotations

import base64
import hashlib
import io
import random

import pytest

from veilchain.errors import InputError, InvalidCidError, StorageError
from veilchain.platform.storage import (
    cid_matches,
    compute_cid,
    compute_cid_file,
    compute_cid_stream,
    decode_cid,
    normalize_cid,
)
from veilchain.platform.storage.cid import (
    CHUNK_SIZE,
    MAX_LINKS,
    _b58encode,
    _cid_bytes,
    _DagBuilder,
    _pb_node,
    _read_varint,
    _unixfs_file,
)

# ENVIRONMENT.md: what Kubo prints for payload = random.Random(n).randbytes(n).
GOLDEN = {
    0: (
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH",
    ),
    1024: (
        "bafkreih6vqr7rbur3e4fis43f4uxhul2vuqevbeibfyb4msmw76no52iua",
        "QmancsyHa5dAzVvsVmkzK1C7soJzRkXrAAz6MCoZK27Q7c",
    ),
    262144: (
        "bafkreih2bk74eu5axngebs6vftmmkcaqboysjjy726xzy5hksnqmfgw5fy",
        "Qmbd9VNLTfpBW2arj1AkAJnVRYBq1WEY6Uu6wLEiemGipi",
    ),
    262145: (
        "bafybeidbbs6ocod3v27jtr4uhvc6n55y3gbrtur3bvjsnraudtbxkozi2y",
        "QmdkAszdeWKht9nXSzPKGUYvUqpMfm325GuCn1pZnTa9ja",
    ),
    1000000: (
        "bafybeib7ib7ug3wvblnvhfxfpagy5wqhpsswkb6kpfozceke5quor46rmy",
        "QmaWSx1C3FvEi724J17oydDayeARgv8ZKB4VtqZjYQg1a6",
    ),
    10485760: (
        "bafybeib74xcwycrnh4c5oujzjjgudttc4y2nk6worz7gyw6dkus4f66rmy",
        "QmSZsKipkWN16qbdjLEo5EHECCtLEGj8TNNaJ17SfuF6SH",
    ),
    45613057: (  # 174 * 262144 + 1: the first size with a two-level DAG
        "bafybeidsyc3rx6lmbjml2fg4ucagkjh3kse6tbphoyyhms46fqhmu6ujbi",
        "QmWvAUzQsaCFMPzTTFKwGmTmijHZ5aVRwJqGwrSHF89cuy",
    ),
}

LEVEL1_FULL = MAX_LINKS * CHUNK_SIZE
BOUNDARY_SIZES = [
    0,
    1,
    CHUNK_SIZE - 1,
    CHUNK_SIZE,
    CHUNK_SIZE + 1,
    2 * CHUNK_SIZE,
    LEVEL1_FULL - 1,
    LEVEL1_FULL,
    LEVEL1_FULL + 1,
    LEVEL1_FULL + CHUNK_SIZE + 1,
]


def payload(n: int) -> bytes:
    return random.Random(n).randbytes(n)


def reference_cid(data: bytes, version: int = 1) -> str:
    """Kubo's balanced layout written the way go-unixfs writes it (recursive fillNodeRec)."""
    chunks = [data[i : i + CHUNK_SIZE] for i in range(0, len(data), CHUNK_SIZE)] or [b""]
    position = 0

    def leaf() -> tuple[bytes, int, int]:
        nonlocal position
        chunk = chunks[position]
        position += 1
        if version == 1:
            return _cid_bytes(1, 0x55, hashlib.sha256(chunk).digest()), len(chunk), len(chunk)
        block = _pb_node((), _unixfs_file(chunk, len(chunk), ()))
        return _cid_bytes(0, 0x70, hashlib.sha256(block).digest()), len(block), len(chunk)

    def node(children: list[tuple[bytes, int, int]]) -> tuple[bytes, int, int]:
        filesize = sum(c[2] for c in children)
        block = _pb_node(
            [(c[0], c[1]) for c in children], _unixfs_file(b"", filesize, [c[2] for c in children])
        )
        digest = hashlib.sha256(block).digest()
        return _cid_bytes(version, 0x70, digest), len(block) + sum(c[1] for c in children), filesize

    def fill(depth: int, first: tuple[bytes, int, int] | None) -> tuple[bytes, int, int]:
        children = [first] if first else []
        while len(children) < MAX_LINKS and position < len(chunks):
            children.append(leaf() if depth == 1 else fill(depth - 1, None))
        return node(children)

    root = leaf()
    depth = 1
    while position < len(chunks):
        root = fill(depth, root)
        depth += 1
    if root[0][0] == 0x12:
        return _b58encode(root[0])
    return "b" + base64.b32encode(root[0]).decode().rstrip("=").lower()


@pytest.mark.parametrize("size", sorted(GOLDEN))
def test_golden_vectors_cidv1_raw_leaves(size: int) -> None:
    assert compute_cid(payload(size)) == GOLDEN[size][0]


@pytest.mark.parametrize("size", sorted(GOLDEN))
def test_golden_vectors_cidv0(size: int) -> None:
    assert compute_cid(payload(size), version=0) == GOLDEN[size][1]


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_boundary_sizes_match_the_recursive_reference_layout(size: int) -> None:
    data = payload(size)
    cid = compute_cid(data)
    assert cid == reference_cid(data)
    assert cid.startswith("bafk" if size <= CHUNK_SIZE else "bafy")


@pytest.mark.parametrize("size", [0, CHUNK_SIZE + 1, LEVEL1_FULL + 1])
def test_cidv0_matches_reference_layout(size: int) -> None:
    data = payload(size)
    assert compute_cid(data, version=0) == reference_cid(data, version=0)


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """Decode one protobuf message into (field number, value) pairs."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        if key & 7 == 0:
            value, pos = _read_varint(buf, pos)
        else:
            length, pos = _read_varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        out.append((key >> 3, value))
    return out


def test_two_level_dag_root_links_a_full_node_and_a_one_leaf_node() -> None:
    data = payload(LEVEL1_FULL + 1)
    blocks: list[tuple[bytes, bytes]] = []
    builder = _DagBuilder(1, blocks)
    for start in range(0, len(data), CHUNK_SIZE):
        builder.add_chunk(data[start : start + CHUNK_SIZE])
    root_cid = builder.finish()
    by_cid = dict(blocks)
    root = _fields(by_cid[root_cid])
    links = [_fields(v) for f, v in root if f == 2]
    unixfs = _fields(next(v for f, v in root if f == 1))
    assert unixfs == [(1, 2), (3, LEVEL1_FULL + 1), (4, LEVEL1_FULL), (4, 1)]
    assert [dict(link)[2] for link in links] == [b"", b""]  # empty names, as Kubo writes
    full, single = (_fields(by_cid[dict(link)[1]]) for link in links)
    assert sum(1 for f, _ in full if f == 2) == MAX_LINKS
    single_links = [_fields(v) for f, v in single if f == 2]
    assert len(single_links) == 1 and dict(single_links[0])[3] == 1  # Tsize of the 1-byte leaf
    assert dict(single_links[0])[1][:2] == b"\x01\x55"  # a raw leaf
    tsize = len(by_cid[root_cid]) + sum(dict(link)[3] for link in links)
    assert tsize == 45621926  # the cumulative size js-ipfs reports for this file


@pytest.mark.parametrize("size", [0, 1024, CHUNK_SIZE, 1_000_000, LEVEL1_FULL + 1])
def test_compute_cid_file_streams_to_the_same_cid(tmp_path, size: int) -> None:
    path = tmp_path / "blob"
    path.write_bytes(payload(size))
    assert compute_cid_file(path) == GOLDEN.get(size, (compute_cid(payload(size)),))[0]


def test_stream_handles_short_reads() -> None:
    data = payload(1_000_000)

    class Trickle(io.RawIOBase):
        def __init__(self) -> None:
            self.inner = io.BytesIO(data)

        def readinto(self, buf) -> int:
            return self.inner.readinto(memoryview(buf)[:4099])

    assert compute_cid_stream(Trickle()) == GOLDEN[1_000_000][0]


def test_accepts_bytearray_and_memoryview() -> None:
    data = payload(262145)
    assert compute_cid(bytearray(data)) == compute_cid(memoryview(data)) == GOLDEN[262145][0]


def test_compute_cid_file_missing_is_input_error(tmp_path) -> None:
    with pytest.raises(InputError, match="no such file"):
        compute_cid_file(tmp_path / "absent")


def test_bad_version_is_input_error() -> None:
    with pytest.raises(InputError, match="version"):
        compute_cid(b"x", version=2)


# --- parsing and normalization -----------------------------------------------------------
def test_normalize_base58_cidv1_from_js_ipfs() -> None:
    # what js-ipfs answers for the 0-byte and 262145-byte payloads
    assert normalize_cid("zb2rhmy65F3REf8SZp7De11gxtECBGgUKaLdiDj7MCGCHxbDW") == GOLDEN[0][0]
    assert normalize_cid("zdj7Wbxjte1487f1JVk6cAmENEuVrekgv9EhMpntEZ87qti3f") == GOLDEN[262145][0]


def test_normalize_cidv0_upper_case_and_hex() -> None:
    v0 = GOLDEN[0][1]
    v1 = normalize_cid(v0)
    assert v1.startswith("bafybei")
    assert decode_cid(v1)[1:] == decode_cid(v0)[1:]
    cid = GOLDEN[1024][0]
    assert normalize_cid(cid.upper().replace("BAFK", "Bafk", 1)) == cid
    hex_form = "f" + base64.b32decode(cid[1:].upper() + "=" * (-len(cid[1:]) % 8)).hex()
    assert normalize_cid(hex_form) == cid
    assert normalize_cid(f"  {cid}\n") == cid
    assert normalize_cid(normalize_cid(cid)) == cid


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "hello",
        "Qm123",
        "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQ0",  # '0' is not base58
        "bafy",
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyk",  # truncated
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvykuaa",  # extra bytes
        "b" + base64.b32encode(b"\x02\x55\x12\x20" + bytes(32)).decode().rstrip("=").lower(),
        "x" * 10_000,
    ],
)
def test_malformed_cids_raise_one_line_invalid_cid_error(bad: str) -> None:
    with pytest.raises(InvalidCidError) as info:
        normalize_cid(bad)
    assert isinstance(info.value, StorageError) and isinstance(info.value, InputError)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


def test_non_string_cid_is_invalid() -> None:
    with pytest.raises(InvalidCidError):
        normalize_cid(b"bafy")  # type: ignore[arg-type]


def test_cid_matches_v1_and_v0() -> None:
    data = payload(1_000_000)
    assert cid_matches(data, GOLDEN[1_000_000][0])
    assert cid_matches(data, GOLDEN[1_000_000][1])
    assert cid_matches(data, normalize_cid(GOLDEN[1_000_000][1]))
    assert not cid_matches(data + b"x", GOLDEN[1_000_000][0])
    assert not cid_matches(data, GOLDEN[1024][0])


def test_cid_matches_refuses_unsupported_hash() -> None:
    blake3 = "b" + base64.b32encode(b"\x01\x55\x1e\x20" + bytes(32)).decode().rstrip("=").lower()
    with pytest.raises(InvalidCidError, match="sha2-256"):
        cid_matches(b"", blake3)
