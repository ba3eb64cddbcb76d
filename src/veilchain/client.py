"""The grantee's side: derive the X25519 key, sign a release request, decrypt, check.

A grantee holds one secret, their Ethereum key; their X25519 key pair is derived from it.
:class:`Grantee` talks to a Veilchain service in the same process (the CLI's ``fetch``); over
HTTP the same steps are ``POST .../key`` with the X25519 public key, then a sealed-box open
(docs/api.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from veilchain.platform.release import ReleaseRequest, open_image

__all__ = ["CheckedImage", "Grantee", "x25519_keypair_for"]

_X25519_INFO = b"veilchain x25519 v1"


def x25519_keypair_for(account: Any) -> tuple[bytes, bytes]:
    """The grantee's X25519 key pair, derived from their Ethereum key (one secret to keep)."""
    from nacl.public import PrivateKey

    seed = hashlib.sha256(_X25519_INFO + bytes(account.key)).digest()
    sk = PrivateKey(seed)
    return bytes(sk), bytes(sk.public_key)


@dataclass
class CheckedImage:
    """A decrypted image and what its Content Credentials say (``problems`` empty: signed by
    the data set's certificate, trusted under its CA, anchored to this record)."""

    index: int
    image_id: str
    data: bytes
    credentials: dict
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


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

    def fetch_checked(
        self, dataset_id: int, index: int, *, version: int | None = None
    ) -> CheckedImage:
        """:meth:`fetch`, then check the image's Content Credentials against its record."""
        rec = self.service.image_record(dataset_id, index, version)
        data = self.fetch(dataset_id, index, version=rec["version"])
        creds, problems = self.service.check_credentials(dataset_id, rec["version"], index, data)
        return CheckedImage(
            index, rec["image_id"], data, creds.to_dict(dataset_id, rec["version"]), problems
        )

    def check_images(
        self,
        dataset_id: int,
        version: int,
        count: int,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> list[CheckedImage]:
        """Fetch every image of a version under this grantee's grant and check each one's
        Content Credentials (``verify --images``); the decrypted bytes are not kept."""
        out = []
        for index in range(count):
            checked = self.fetch_checked(dataset_id, index, version=version)
            checked.data = b""
            out.append(checked)
            if progress is not None:
                progress(index + 1, count, "credentials")
        return out
