"""The per-image ciphertext format and the pure AES-256-GCM functions around it.

A ciphertext is ``header || AES-256-GCM(data_key, nonce, plaintext, AD) || tag``::

    header = MAGIC "VEIL" (4) | format version 0x01 (1) | algorithm 0x01 AES-256-GCM (1)
             | nonce (12)                                            = 18 bytes
    AD     = header || u32be(len(dataset)) || dataset || u32be(len(image)) || image

dataset and image are UTF-8. The header names no master key version, so re-wrapping data keys
never touches pinned ciphertexts. These functions are what a grantee needs after a sealed
release; they hold no state and touch no database.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from veilchain.errors import DecryptionError, InputError

MAGIC = b"VEIL"
FORMAT_VERSION = 1
ALG_AES_256_GCM = 1
NONCE_LEN = 12
TAG_LEN = 16
DATA_KEY_LEN = 32
HEADER_LEN = len(MAGIC) + 2 + NONCE_LEN
_PREFIX = MAGIC + bytes([FORMAT_VERSION, ALG_AES_256_GCM])
_MAX_ID_BYTES = 1024


def _id_bytes(value: str, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise InputError(f"{what} must be a non-empty string")
    raw = value.encode("utf-8")
    if len(raw) > _MAX_ID_BYTES:
        raise InputError(f"{what} is longer than {_MAX_ID_BYTES} bytes")
    return raw


def context_bytes(dataset: str, image: str) -> bytes:
    """The length-prefixed encryption context: u32be len | dataset | u32be len | image."""
    ds, img = _id_bytes(dataset, "dataset id"), _id_bytes(image, "image id")
    return struct.pack(">I", len(ds)) + ds + struct.pack(">I", len(img)) + img


def associated_data(header: bytes, dataset: str, image: str) -> bytes:
    """AD bound into every image ciphertext: the header followed by the context."""
    return header + context_bytes(dataset, image)


def encrypt_with_data_key(
    plaintext: bytes, data_key: bytes, *, dataset: str, image: str, nonce: bytes | None = None
) -> bytes:
    """Encrypt one image under its data key; ``nonce`` is random unless given (tests only)."""
    if len(data_key) != DATA_KEY_LEN:
        raise InputError("a data key must be 32 bytes")
    header = _PREFIX + (nonce if nonce is not None else os.urandom(NONCE_LEN))
    if len(header) != HEADER_LEN:
        raise InputError("a nonce must be 12 bytes")
    return header + AESGCM(data_key).encrypt(
        header[-NONCE_LEN:], plaintext, associated_data(header, dataset, image)
    )


def parse_header(ciphertext: bytes) -> tuple[int, int, bytes]:
    """``(format_version, algorithm, nonce)`` of a ciphertext, or DecryptionError."""
    if len(ciphertext) < HEADER_LEN + TAG_LEN:
        raise DecryptionError("not a Veilchain ciphertext: too short")
    if bytes(ciphertext[:4]) != MAGIC:
        raise DecryptionError("not a Veilchain ciphertext: bad magic bytes")
    version, alg = ciphertext[4], ciphertext[5]
    if version != FORMAT_VERSION:
        raise DecryptionError(f"unsupported ciphertext format version {version}; upgrade Veilchain")
    if alg != ALG_AES_256_GCM:
        raise DecryptionError(f"unsupported ciphertext algorithm {alg}")
    return version, alg, bytes(ciphertext[6:HEADER_LEN])


def decrypt_with_data_key(ciphertext: bytes, data_key: bytes, *, dataset: str, image: str) -> bytes:
    """Decrypt and authenticate one image ciphertext (header, body, tag and context)."""
    _, _, nonce = parse_header(ciphertext)
    if len(data_key) != DATA_KEY_LEN:
        raise DecryptionError("a data key must be 32 bytes")
    view = memoryview(ciphertext)
    ad = associated_data(bytes(view[:HEADER_LEN]), dataset, image)
    try:
        return AESGCM(bytes(data_key)).decrypt(nonce, view[HEADER_LEN:], ad)
    except InvalidTag as exc:
        raise DecryptionError(
            f"ciphertext of image {image!r} in dataset {dataset!r} does not authenticate: "
            "wrong key, wrong dataset/image, or tampered bytes"
        ) from exc
