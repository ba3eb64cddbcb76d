"""The grantee's side: derive the X25519 key, sign a release request, decrypt, check.

A grantee holds one secret, their Ethereum key; their X25519 key pair is derived from it.
:class:`Grantee` talks to a Veilchain service in the same process (the CLI's ``fetch``); over
HTTP the same steps are ``POST .../key`` with the X25519 public key, then a sealed-box open
(docs/api.md).
"""

from __future__ import annotations

import hashlib
from typing import Any

from veilchain.platform.release import ReleaseRequest, open_image

__all__ = ["Grantee", "x25519_keypair_for"]

_X25519_INFO = b"veilchain x25519 v1"


def x25519_keypair_for(account: Any) -> tuple[bytes, bytes]:
    """The grantee's X25519 key pair, derived from their Ethereum key (one secret to keep)."""
    from nacl.public import PrivateKey

    seed = hashlib.sha256(_X25519_INFO + bytes(account.key)).digest()
    sk = PrivateKey(seed)
    return bytes(sk), bytes(sk.public_key)


class Grantee:
    """A grantee's local account, fetching through ``service``."""

    def __init__(self, service: Any, account: Any) -> None:
        self.service = service
        self.account = account

    def fetch(self, dataset_id: int, index: int, *, version: int | None = None) -> bytes:
        """Sign a release request, get the sealed key, fetch, decrypt and check one image."""
        rec = self.service.image_record(dataset_id, index, version)
        sk, pk = x25519_keypair_for(self.account)
        request = ReleaseRequest.create(
            self.account,
            chain_id=self.service.chain_id,
            contract=self.service.chain.address,
            dataset_id=dataset_id,
            version=rec["version"],
            image_id=rec["image_id"],
            recipient_public_key=pk,
        )
        return open_image(self.service.storage, rec, self.service.release_key(request), sk)
