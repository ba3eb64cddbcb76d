"""Sealed release of a data key to a grantee's X25519 public key (libsodium sealed box).

``crypto_box_seal``: an ephemeral X25519 key pair, XSalsa20-Poly1305, 48 bytes of overhead.
The sealed payload is the raw 32-byte data key, so any libsodium binding can open it.
"""

from __future__ import annotations

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from veilchain.errors import DecryptionError, InputError

X25519_KEY_LEN = 32
SEALED_KEY_LEN = 32 + 48


def generate_keypair() -> tuple[bytes, bytes]:
    """A fresh X25519 key pair ``(private_key, public_key)``, 32 raw bytes each."""
    private = PrivateKey.generate()
    return bytes(private), bytes(private.public_key)


def seal_data_key(data_key: bytes, recipient_public_key: bytes) -> bytes:
    """Seal ``data_key`` so that only the holder of the matching private key can open it."""
    if len(recipient_public_key) != X25519_KEY_LEN:
        raise InputError("a recipient public key must be 32 raw X25519 bytes")
    try:
        return SealedBox(PublicKey(bytes(recipient_public_key))).encrypt(bytes(data_key))
    except CryptoError as exc:
        raise InputError("the recipient public key is not a usable X25519 key") from exc


def open_sealed_key(sealed: bytes, private_key: bytes) -> bytes:
    """Open a sealed data key with the grantee's X25519 private key (32 raw bytes)."""
    if len(private_key) != X25519_KEY_LEN:
        raise InputError("a private key must be 32 raw X25519 bytes")
    try:
        return SealedBox(PrivateKey(bytes(private_key))).decrypt(bytes(sealed))
    except CryptoError as exc:
        raise DecryptionError("the sealed key does not open with this private key") from exc
