"""The ciphertext format: round trip, header layout, every flipped byte, wrong context/key."""

from __future__ import annotations

import os
import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from veilchain.errors import DecryptionError, InputError
from veilchain.platform.keys import HEADER_LEN, MAGIC, decrypt_with_data_key, encrypt_with_data_key
from veilchain.platform.keys.envelope import FORMAT_VERSION, TAG_LEN

CTX = {"dataset": "ds-1", "image": "img/0001.png"}


@pytest.mark.parametrize("size", [0, 1, 50_000, 1_000_003])
def test_round_trip(size):
    key, data = os.urandom(32), os.urandom(size)
    ct = encrypt_with_data_key(data, key, **CTX)
    assert len(ct) == HEADER_LEN + size + TAG_LEN
    assert decrypt_with_data_key(ct, key, **CTX) == data


def test_header_layout_matches_docs():
    key, nonce = os.urandom(32), os.urandom(12)
    ct = encrypt_with_data_key(b"face", key, nonce=nonce, **CTX)
    assert ct[:4] == MAGIC == b"VEIL"
    assert ct[4] == FORMAT_VERSION == 1 and ct[5] == 1 and ct[6:18] == nonce
    # An independent AES-GCM decryption with the documented AD layout.
    ds, img = CTX["dataset"].encode(), CTX["image"].encode()
    ad = ct[:18] + struct.pack(">I", len(ds)) + ds + struct.pack(">I", len(img)) + img
    assert AESGCM(key).decrypt(nonce, ct[18:], ad) == b"face"


def test_fresh_nonce_per_encryption():
    key = os.urandom(32)
    nonces = {encrypt_with_data_key(b"x", key, **CTX)[6:18] for _ in range(100)}
    assert len(nonces) == 100


def test_every_flipped_byte_is_caught():
    key = os.urandom(32)
    ct = encrypt_with_data_key(os.urandom(64), key, **CTX)
    for i in range(len(ct)):  # header, body and tag
        for bit in (0x01, 0x80):
            bad = bytearray(ct)
            bad[i] ^= bit
            with pytest.raises(DecryptionError):
                decrypt_with_data_key(bytes(bad), key, **CTX)


def test_truncated_and_extended_ciphertexts_are_caught():
    key = os.urandom(32)
    ct = encrypt_with_data_key(b"abc" * 10, key, **CTX)
    for bad in (ct[:-1], ct[: HEADER_LEN + TAG_LEN - 1], ct + b"\x00", b"", ct[1:]):
        with pytest.raises(DecryptionError):
            decrypt_with_data_key(bad, key, **CTX)


@pytest.mark.parametrize(
    "ctx",
    [
        {"dataset": "ds-1", "image": "img/0002.png"},
        {"dataset": "ds-2", "image": "img/0001.png"},
        # Length prefixes keep the boundary between dataset and image unambiguous.
        {"dataset": "ds-1i", "image": "mg/0001.png"},
    ],
)
def test_wrong_context_is_caught(ctx):
    key = os.urandom(32)
    ct = encrypt_with_data_key(b"payload", key, **CTX)
    with pytest.raises(DecryptionError, match="does not authenticate"):
        decrypt_with_data_key(ct, key, **ctx)


def test_wrong_key_is_caught_with_one_line_message():
    ct = encrypt_with_data_key(b"payload", os.urandom(32), **CTX)
    with pytest.raises(DecryptionError) as err:
        decrypt_with_data_key(ct, os.urandom(32), **CTX)
    assert "\n" not in str(err.value)


def test_bad_inputs():
    with pytest.raises(InputError):
        encrypt_with_data_key(b"x", b"short", **CTX)
    with pytest.raises(InputError):
        encrypt_with_data_key(b"x", os.urandom(32), dataset="", image="a")
    ct = encrypt_with_data_key(b"x", os.urandom(32), **CTX)
    with pytest.raises(DecryptionError, match="format version"):
        decrypt_with_data_key(ct[:4] + b"\x02" + ct[5:], os.urandom(32), **CTX)
