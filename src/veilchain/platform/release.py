"""Key release: a data key leaves the key service only sealed to a grantee with a live grant.

Two ways in, one rule:
- a **signed request** (:class:`ReleaseRequest`, EIP-191 over canonical JSON naming the chain,
  contract, image, recipient key, time and a nonce): checked, replay-protected, then released;
- an **already authenticated address** (the API's signed-in user).
Every release and every refusal is written to the audit log.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from veilchain.chain.client import ChainClient
from veilchain.errors import (
    AccessDeniedError,
    AuthenticationError,
    InputError,
    StorageError,
    VeilchainError,
)
from veilchain.platform.audit import AuditLog
from veilchain.platform.audit_entries import AuditEvent, canonical_json
from veilchain.platform.grants import live_grant_until
from veilchain.platform.keys import KeyManager, decrypt_with_data_key, open_sealed_key
from veilchain.platform.registrations import UsedNonceRow
from veilchain.platform.storage import IpfsStorage

RELEASE_ACTION = "veilchain-key-release"
RELEASE_MAX_AGE_S = 300
SEAL_SCHEME = "x25519-xsalsa20-poly1305 (libsodium sealed box)"
_FIELDS = frozenset(
    {"action", "chain_id", "contract", "dataset_id", "version", "image_id", "recipient",
     "issued_at", "nonce"}
)  # fmt: skip


@dataclass(frozen=True)
class ReleaseRequest:
    """What a grantee signs (EIP-191 personal message over ``message``) to get a data key."""

    message: str
    signature: str

    @classmethod
    def create(
        cls,
        account: Any,
        *,
        chain_id: int,
        contract: str,
        dataset_id: int,
        version: int,
        image_id: str,
        recipient_public_key: bytes,
        issued_at: int | None = None,
        nonce: str | None = None,
    ) -> ReleaseRequest:
        body = {
            "action": RELEASE_ACTION,
            "chain_id": chain_id,
            "contract": contract,
            "dataset_id": dataset_id,
            "version": version,
            "image_id": image_id,
            "recipient": recipient_public_key.hex(),
            "issued_at": int(time.time()) if issued_at is None else issued_at,
            "nonce": nonce or secrets.token_hex(16),
        }
        message = canonical_json(body).decode()
        signed = Account.sign_message(encode_defunct(text=message), account.key)
        return cls(message=message, signature="0x" + bytes(signed.signature).hex())


class KeyRelease:
    def __init__(
        self,
        *,
        chain: ChainClient,
        keys: KeyManager,
        audit: AuditLog,
        session_factory: sessionmaker[Session],
        uid_of: Callable[[int, int], str],
    ) -> None:
        self.chain = chain
        self.keys = keys
        self.audit = audit
        self.session_factory = session_factory
        self._uid_of = uid_of  # (dataset id, version) -> the registration's key set

    def release_key(self, request: ReleaseRequest) -> bytes:
        """Check a grantee's signed request against the chain; return the sealed data key."""
        try:
            body = json.loads(request.message)
            address = Account.recover_message(
                encode_defunct(text=request.message), signature=request.signature
            )
        except Exception as exc:  # malformed JSON or signature bytes
            raise AuthenticationError("release request is not a signed JSON message") from exc
        if not isinstance(body, dict) or not body.keys() >= _FIELDS:
            raise AuthenticationError(f"release request must carry {', '.join(sorted(_FIELDS))}")
        subject = f"dataset:{body['dataset_id']}/v{body['version']}/{body['image_id']}"

        def refuse(err: VeilchainError) -> VeilchainError:
            self.audit.append(
                AuditEvent.REFUSAL, actor=address, subject=subject, details={"reason": str(err)}
            )
            return err

        if body["action"] != RELEASE_ACTION:
            raise refuse(AuthenticationError(f"action must be {RELEASE_ACTION!r}"))
        if body["chain_id"] != int(self.chain.backend.chain_id) or (
            str(body["contract"]).lower() != self.chain.address.lower()
        ):
            raise refuse(AuthenticationError("request is for another chain or contract"))
        now = int(time.time())
        if not (now - RELEASE_MAX_AGE_S <= int(body["issued_at"]) <= now + 60):
            raise refuse(AuthenticationError("release request expired; sign a fresh one"))
        try:
            recipient = bytes.fromhex(str(body["recipient"]))
            if len(recipient) != 32:
                raise ValueError
        except ValueError:
            raise refuse(
                InputError("recipient must be a 32-byte X25519 public key in hex")
            ) from None
        try:
            with self.session_factory() as s, s.begin():
                s.add(UsedNonceRow(nonce=str(body["nonce"])[:64], address=address,
                                   issued_at=int(body["issued_at"])))  # fmt: skip
        except IntegrityError:
            raise refuse(AuthenticationError("release request was already used (replay)")) from None
        return self.release_key_to(
            address, int(body["dataset_id"]), int(body["version"]), str(body["image_id"]),
            recipient,
        )  # fmt: skip

    def release_key_to(
        self, address: str, dataset_id: int, version: int, image_id: str, recipient: bytes
    ) -> bytes:
        """Release to an address the caller has already authenticated (the API's user)."""
        subject = f"dataset:{dataset_id}/v{version}/{image_id}"
        if live_grant_until(self.chain, dataset_id, address) is None:  # chain AND host clock
            err = AccessDeniedError(
                f"{address} holds no live grant on data set {dataset_id} (none, expired or revoked)"
            )
            self.audit.append(AuditEvent.REFUSAL, actor=address, subject=subject,
                              details={"reason": str(err)})  # fmt: skip
            raise err
        uid = self._uid_of(dataset_id, version)
        sealed = self.keys.release_sealed(
            dataset=uid, image=image_id, recipient_public_key=recipient
        )
        self.audit.append(
            AuditEvent.RELEASE,
            actor=address,
            subject=subject,
            details={"recipient": recipient.hex(), "uid": uid},
        )
        return sealed


def open_image(storage: IpfsStorage, record: dict, sealed: bytes, private_key: bytes) -> bytes:
    """Open a sealed data key, decrypt the record's ciphertext, check it is the output on
    record (its sha256 in the manifest)."""
    plain = decrypt_with_data_key(
        storage.cat(record["cid"]),
        open_sealed_key(sealed, private_key),
        dataset=record["dataset_uid"],
        image=record["image_id"],
    )
    if hashlib.sha256(plain).hexdigest() != record["anonymized_sha256"]:
        raise StorageError(
            f"decrypted image {record['image_id']} differs from the anonymized output on record"
        )
    return plain
