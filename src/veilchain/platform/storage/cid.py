"""Kubo-identical IPFS CIDs, computed offline.

``compute_cid`` gives exactly the CID that ``ipfs add --cid-version=1 --raw-leaves`` prints
with Kubo's defaults: fixed 256 KiB chunks, balanced DAG layout, at most 174 links per node,
sha2-256, raw leaves, dag-pb UnixFS ``File`` nodes above them, base32 lower case. With
``version=0`` it gives the CIDv0 of plain ``ipfs add`` (dag-pb UnixFS leaves, base58btc).
docs/storage.md describes the encoding byte by byte.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from veilchain.errors import InputError, InvalidCidError

CHUNK_SIZE = 262_144
MAX_LINKS = 174

CODEC_RAW = 0x55
CODEC_DAG_PB = 0x70
MH_SHA2_256 = 0x12
_SHA256_LEN = 32

_UNIXFS_FILE = 2
_RAW_LEAF_PREFIX = bytes((1, CODEC_RAW, MH_SHA2_256, _SHA256_LEN))
_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}


# --- encodings ----------------------------------------------------------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(buf):
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            break
    raise ValueError("bad varint")


def _b58encode(raw: bytes) -> str:
    n = int.from_bytes(raw, "big")
    out = []
    while n:
        n, rem = divmod(n, 58)
        out.append(_B58_ALPHABET[rem])
    pad = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def _b58decode(text: str) -> bytes:
    n = 0
    for ch in text:
        n = n * 58 + _B58_INDEX[ch]  # KeyError on a bad character
    pad = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * pad + body


def _b32encode(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def _b32decode(text: str) -> bytes:
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


def _multihash(digest: bytes) -> bytes:
    return bytes((MH_SHA2_256, _SHA256_LEN)) + digest


def _cid_bytes(version: int, codec: int, digest: bytes) -> bytes:
    if version == 0:
        return _multihash(digest)
    return b"\x01" + _varint(codec) + _multihash(digest)


def _format_cid(cid_bytes: bytes) -> str:
    if cid_bytes[0] == MH_SHA2_256:  # CIDv0: a bare sha2-256 multihash
        return _b58encode(cid_bytes)
    return "b" + _b32encode(cid_bytes)


# --- dag-pb / UnixFS nodes ------------------------------------------------------------------
def _unixfs_file(data: bytes, filesize: int, blocksizes: Iterable[int]) -> bytes:
    """UnixFS ``Data`` message (proto2): Type, Data (only when non-empty), filesize, blocksizes."""
    out = bytearray(b"\x08" + _varint(_UNIXFS_FILE))
    if data:
        out += b"\x12" + _varint(len(data)) + data
    out += b"\x18" + _varint(filesize)
    for size in blocksizes:
        out += b"\x20" + _varint(size)
    return bytes(out)


def _pb_node(links: Iterable[tuple[bytes, int]], data: bytes) -> bytes:
    """dag-pb ``PBNode``: links first (Hash, empty Name, Tsize), then Data, as Kubo writes them."""
    out = bytearray()
    for cid, tsize in links:
        link = b"\x0a" + _varint(len(cid)) + cid + b"\x12\x00\x18" + _varint(tsize)
        out += b"\x12" + _varint(len(link)) + link
    out += b"\x0a" + _varint(len(data)) + data
    return bytes(out)


class _DagBuilder:
    """Streaming balanced-DAG builder: feed 256 KiB chunks in order, then ``finish()``.

    A child is ``(cid_bytes, tsize, filesize)``. ``levels[k]`` holds the children of the open
    node at height ``k + 1``; a node is closed as soon as it has 174 children (its bytes do
    not depend on its parent), and the right edge is closed in ``finish()``.
    """

    def __init__(self, version: int, blocks: list[tuple[bytes, bytes]] | None = None) -> None:
        self.version = version
        self.leaves = 0
        self.levels: list[list[tuple[bytes, int, int]]] = [[]]
        self.blocks = blocks  # when a list: (cid_bytes, block) of every internal node, appended

    def add_chunk(self, chunk: bytes | memoryview) -> None:
        self.leaves += 1
        self._push(0, self._leaf(chunk))

    def _leaf(self, chunk: bytes | memoryview) -> tuple[bytes, int, int]:
        size = len(chunk)
        if self.version == 1:
            return _cid_bytes(1, CODEC_RAW, hashlib.sha256(chunk).digest()), size, size
        block = _pb_node((), _unixfs_file(bytes(chunk), size, ()))
        return _cid_bytes(0, CODEC_DAG_PB, hashlib.sha256(block).digest()), len(block), size

    def _push(self, level: int, child: tuple[bytes, int, int]) -> None:
        while True:
            if level == len(self.levels):
                self.levels.append([])
            self.levels[level].append(child)
            if len(self.levels[level]) < MAX_LINKS:
                return
            child = self._close(level)
            level += 1

    def _close(self, level: int) -> tuple[bytes, int, int]:
        children = self.levels[level]
        self.levels[level] = []
        filesize = sum(c[2] for c in children)
        block = _pb_node(
            ((c[0], c[1]) for c in children),
            _unixfs_file(b"", filesize, (c[2] for c in children)),
        )
        cid = _cid_bytes(self.version, CODEC_DAG_PB, hashlib.sha256(block).digest())
        if self.blocks is not None:
            self.blocks.append((cid, block))
        return cid, len(block) + sum(c[1] for c in children), filesize

    def finish(self) -> bytes:
        """Close the right edge of the tree and return the root CID's bytes."""
        if self.leaves == 0:
            self.add_chunk(b"")
        if self.leaves == 1:
            return self.levels[0][0][0]
        height, capacity = 1, MAX_LINKS
        while capacity < self.leaves:
            height, capacity = height + 1, capacity * MAX_LINKS
        for level in range(height):
            if level >= len(self.levels):
                self.levels.append([])
            if self.levels[level]:
                child = self._close(level)
                if level + 1 == len(self.levels):
                    self.levels.append([])
                self.levels[level + 1].append(child)
        (root,) = self.levels[height]
        return root[0]


def _check_version(version: int) -> None:
    if version not in (0, 1):
        raise InputError(f"CID version must be 0 or 1, not {version!r}")


def compute_cid(data: bytes | bytearray | memoryview, *, version: int = 1) -> str:
    """The CID Kubo gives for ``data`` (``--cid-version=1 --raw-leaves``; ``version=0``: plain)."""
    _check_version(version)
    view = memoryview(data).cast("B")
    if version == 1 and len(view) <= CHUNK_SIZE:  # one raw leaf: the common 50 KB image
        return "b" + _b32encode(_RAW_LEAF_PREFIX + hashlib.sha256(view).digest())
    builder = _DagBuilder(version)
    for start in range(0, len(view), CHUNK_SIZE):
        builder.add_chunk(view[start : start + CHUNK_SIZE])
    return _format_cid(builder.finish())


class ReadsInto(Protocol):
    """A binary stream read with ``readinto`` (an open file, or a wrapper around one)."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...


def compute_cid_stream(stream: ReadsInto, *, version: int = 1) -> str:
    """Like :func:`compute_cid`, reading ``stream`` in 256 KiB chunks (constant memory)."""
    _check_version(version)
    builder = _DagBuilder(version)
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    while True:
        filled = 0
        while filled < CHUNK_SIZE:
            got = stream.readinto(view[filled:])
            if not got:
                break
            filled += got
        if filled:
            builder.add_chunk(view[:filled])
        if filled < CHUNK_SIZE:
            return _format_cid(builder.finish())


def compute_cid_file(path: str | os.PathLike[str], *, version: int = 1) -> str:
    """The Kubo CID of the file at ``path``, streamed: memory stays at one chunk."""
    try:
        with Path(path).open("rb", buffering=0) as fh:
            return compute_cid_stream(fh, version=version)
    except FileNotFoundError as exc:
        raise InputError(f"no such file: {path}") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path} is a directory; give a file") from exc


# --- parsing ----------------------------------------------------------------------------------
_MULTIBASE = {
    "b": _b32decode,
    "B": _b32decode,
    "z": _b58decode,
    "f": bytes.fromhex,
    "F": bytes.fromhex,
}


def decode_cid(cid: str) -> tuple[int, int, int, bytes]:
    """Parse a CID string into ``(version, codec, multihash code, digest)``.

    Accepts CIDv0 (``Qm...``) and CIDv1 in base32, base58btc or base16 multibase.
    Raises InvalidCidError (one line) for anything else.
    """
    if not isinstance(cid, str):
        raise InvalidCidError(f"a CID must be a string, not {type(cid).__name__}")
    text = cid.strip()
    shown = text if len(text) <= 80 else text[:77] + "..."
    bad = f"malformed CID {shown!r}; expected a CIDv1 like bafy.../bafk... or a CIDv0 Qm..."
    try:
        if len(text) == 46 and text.startswith("Qm"):
            raw = _b58decode(text)
            if raw[:2] != bytes((MH_SHA2_256, _SHA256_LEN)) or len(raw) != 34:
                raise ValueError
            return 0, CODEC_DAG_PB, MH_SHA2_256, raw[2:]
        if not text or text[0] not in _MULTIBASE:
            raise ValueError
        raw = _MULTIBASE[text[0]](text[1:])
        version, pos = _read_varint(raw, 0)
        if version != 1:
            raise ValueError
        codec, pos = _read_varint(raw, pos)
        mh_code, pos = _read_varint(raw, pos)
        mh_len, pos = _read_varint(raw, pos)
        digest = raw[pos:]
        if len(digest) != mh_len or mh_len == 0:
            raise ValueError
    except (ValueError, KeyError, TypeError) as exc:  # binascii.Error is a ValueError
        raise InvalidCidError(bad) from exc
    return 1, codec, mh_code, digest


def normalize_cid(cid: str) -> str:
    """Any valid CID (v0, or v1 in any supported multibase) as canonical base32 CIDv1."""
    _, codec, mh_code, digest = decode_cid(cid)
    raw = b"\x01" + _varint(codec) + _varint(mh_code) + _varint(len(digest)) + digest
    return "b" + _b32encode(raw)


def cid_matches(data: bytes | bytearray | memoryview, cid: str) -> bool:
    """Whether ``data`` hashes to ``cid`` as Kubo would add it (raw-leaves v1, or plain v0)."""
    _, codec, mh_code, digest = decode_cid(cid)
    if mh_code != MH_SHA2_256:
        raise InvalidCidError(f"CID {cid} uses multihash 0x{mh_code:x}; only sha2-256 is supported")
    wanted = normalize_cid(cid)
    if compute_cid(data) == wanted:
        return True
    # A dag-pb root may also come from a plain (CIDv0-style) add; compare its multihash.
    return codec == CODEC_DAG_PB and normalize_cid(compute_cid(data, version=0)) == wanted
