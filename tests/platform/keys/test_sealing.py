"""Sealed release: libsodium sealed boxes opened only by the grantee's private key."""

from __future__ import annotations

import os

import pytest
from nacl.public import PrivateKey, SealedBox

from veilchain.errors import DecryptionError, InputError
from veilchain.platform.keys import generate_keypair, open_sealed_key, seal_data_key


def test_sealed_key_opens_with_right_private_key_only():
    key = os.urandom(32)
    sk, pk = generate_keypair()
    other_sk, _ = generate_keypair()
    sealed = seal_data_key(key, pk)
    assert len(sealed) == 32 + 48 and key not in sealed
    assert open_sealed_key(sealed, sk) == key
    with pytest.raises(DecryptionError):
        open_sealed_key(sealed, other_sk)


def test_interoperates_with_plain_libsodium():
    """A grantee using libsodium directly (crypto_box_seal_open) gets the raw data key."""
    key = os.urandom(32)
    private = PrivateKey.generate()
    sealed = seal_data_key(key, bytes(private.public_key))
    assert SealedBox(private).decrypt(sealed) == key


def test_tampered_sealed_key_and_bad_keys():
    key = os.urandom(32)
    sk, pk = generate_keypair()
    sealed = bytearray(seal_data_key(key, pk))
    sealed[-1] ^= 1
    with pytest.raises(DecryptionError):
        open_sealed_key(bytes(sealed), sk)
    with pytest.raises(InputError):
        seal_data_key(key, b"\x01" * 31)
    with pytest.raises(InputError):
        open_sealed_key(bytes(sealed), b"\x01" * 16)
