"""Encryption on a remote worker, with the data key sent home sealed (the Ray executor).

The driver of a registration makes an X25519 *transport* key pair per run and keeps the
private half in memory. A worker that anonymized an image encrypts it exactly as
``KeyManager.encrypt`` does (a fresh 32-byte data key, the format-1 envelope, the AD bound
to (dataset uid, image id)) and returns the ciphertext with the data key sealed to the
transport public key (libsodium sealed box). The driver opens the box and hands the data
key to ``KeyManager.store_data_keys``, which wraps it under the current master key. Neither
the anonymized image nor its data key crosses the network in clear, and no master key
leaves the key service. docs/keys.md, "Encryption on Ray workers".
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

from veilchain.platform.keys.envelope import DATA_KEY_LEN, encrypt_with_data_key
from veilchain.platform.keys.sealing import open_sealed_key, seal_data_key

__all__ = ["EncryptedImage", "WorkerEncryptor", "open_data_key"]


@dataclass(frozen=True)
class EncryptedImage:
    """What a worker returns for one image: nothing in it is plaintext image or key."""

    image_id: str
    ciphertext: bytes
    sealed_key: bytes  # the data key, sealed to the driver's transport public key
    anonymized_sha256: str
    report: dict
    width: int
    height: int


@dataclass(frozen=True)
class WorkerEncryptor:
    """Picklable: ``(anonymized_file, image_id) -> EncryptedImage``, run on the worker."""

    dataset: str
    transport_public_key: bytes

    def __call__(self, out: Any, image_id: str) -> EncryptedImage:
        data_key = os.urandom(DATA_KEY_LEN)
        ciphertext = encrypt_with_data_key(out.png, data_key, dataset=self.dataset, image=image_id)
        return EncryptedImage(
            image_id=image_id,
            ciphertext=ciphertext,
            sealed_key=seal_data_key(data_key, self.transport_public_key),
            anonymized_sha256=hashlib.sha256(out.png).hexdigest(),
            report=out.report,
            width=out.width,
            height=out.height,
        )


def open_data_key(item: EncryptedImage, transport_private_key: bytes) -> bytes:
    """The driver's side: the data key a worker sealed (DecryptionError if not ours)."""
    return open_sealed_key(item.sealed_key, transport_private_key)
