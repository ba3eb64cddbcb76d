"""Access grants: who may grant, when a grant expires, who sees which grants, live or not.

Every rule about grants lives here, for the CLI and the API alike:
- **ownership**: the data set's on-chain owner may grant and revoke; so may an institution
  that uploaded it through this instance's API;
- **expiry**: an absolute time or a lifetime counted from the later of this host's and the
  chain's clock (``limits.py`` holds the bounds);
- **visibility**: owners, auditors and the admin see every grant; anyone else their own;
- **liveness**: a grant is live only while both the chain's clock and this host's say so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

from eth_utils import is_address, to_checksum_address

from veilchain.chain.client import ChainClient, Grant
from veilchain.errors import AccessDeniedError, GrantNotFoundError, InputError
from veilchain.platform.audit import AuditLog
from veilchain.platform.audit_entries import AuditEvent
from veilchain.platform.limits import check_grant_expiry, grant_expiry_from_ttl

__all__ = ["Actor", "GrantBook", "GrantChange", "live_grant_until"]


@dataclass(frozen=True)
class GrantChange:
    """A grant as the chain holds it after the transaction that changed it."""

    grant: Grant
    tx_hash: str

    def to_dict(self) -> dict:
        return {**asdict(self.grant), "tx_hash": self.tx_hash}


class Actor(Protocol):
    """Who asks: an address and its on-chain roles (the API's ``Principal`` is one)."""

    address: str

    def has(self, *roles: str) -> bool: ...


def live_grant_until(chain: ChainClient, dataset_id: int, address: str) -> int | None:
    """The grant's ``expires_at`` if both the chain and this host's clock say it is live.

    The contract judges expiry on the block a call reads; a node mining on its own schedule
    can have a head block seconds or minutes old, so this host's clock is checked too
    (docs/api.md, "Expiry")."""
    until = chain.access_until(dataset_id, address)
    if until is None or time.time() >= until:
        return None
    return until


class GrantBook:
    def __init__(
        self,
        *,
        chain: ChainClient,
        institution: Callable[[], Any],
        audit: AuditLog,
        uploader: Callable[[int], str | None],
    ) -> None:
        self.chain = chain
        self._institution = institution  # this instance's institution account (lazily decrypted)
        self.audit = audit
        self._uploader = uploader

    def owners(self, dataset_id: int) -> set[str]:
        """Who may grant: the on-chain owner, and the institution that uploaded it here."""
        owners = {self.chain.get_dataset(dataset_id).owner}
        uploader = self._uploader(dataset_id)
        if uploader:
            owners.add(uploader)
        return owners

    def require_owner(self, dataset_id: int, actor: Actor | None) -> None:
        """Refuse unless ``actor`` (None: this instance's institution) may change the grants."""
        chain_owner = self.chain.get_dataset(dataset_id).owner
        if actor is None:
            if self._institution().address == chain_owner:
                return
            who = self._institution().address
        else:
            if actor.address == chain_owner:
                return
            if actor.address in self.owners(dataset_id) and actor.has("institution"):
                return
            who = actor.address
        raise AccessDeniedError(
            f"{who} does not own data set {dataset_id} (its owner is {chain_owner}),"
            " so it may not change its grants"
        )

    def expiry(self, *, expires_at: datetime | int | None = None, ttl_s: int | None = None) -> int:
        """``expires_at`` as epoch seconds, checked; or now + ``ttl_s``."""
        if (expires_at is None) == (ttl_s is None):
            raise InputError("give the grant either an expiry time or a lifetime, not both")
        if ttl_s is not None or expires_at is None:
            return grant_expiry_from_ttl(ttl_s or 0, chain_now=self.chain.block_timestamp())
        seconds = int(expires_at.timestamp()) if isinstance(expires_at, datetime) else expires_at
        return check_grant_expiry(seconds, chain_now=self.chain.block_timestamp())

    def grant(
        self,
        dataset_id: int,
        grantee: str,
        *,
        expires_at: datetime | int | None = None,
        ttl_s: int | None = None,
        actor: Actor | None = None,
    ) -> GrantChange:
        """Grant ``grantee`` access (one transaction by this instance's institution)."""
        grantee = _address(grantee)
        self.require_owner(dataset_id, actor)
        until = self.expiry(expires_at=expires_at, ttl_s=ttl_s)
        ref = self.chain.with_account(self._institution()).grant_access(dataset_id, grantee, until)
        self.audit.append(
            AuditEvent.GRANT,
            actor=actor.address if actor else self._institution().address,
            subject=f"dataset:{dataset_id}",
            details={"grantee": grantee, "expires_at": until, "tx_hash": ref.tx_hash},
        )
        return self._with_tx(dataset_id, grantee, ref.tx_hash)

    def revoke(self, dataset_id: int, grantee: str, *, actor: Actor | None = None) -> GrantChange:
        """Revoke a grant: future key releases are refused (re-encrypt for true revocation)."""
        grantee = _address(grantee)
        self.require_owner(dataset_id, actor)
        if self.chain.get_grant(dataset_id, grantee) is None:
            raise GrantNotFoundError(f"{grantee} holds no grant on data set {dataset_id}")
        ref = self.chain.with_account(self._institution()).revoke_access(dataset_id, grantee)
        self.audit.append(
            AuditEvent.REVOKE,
            actor=actor.address if actor else self._institution().address,
            subject=f"dataset:{dataset_id}",
            details={"grantee": grantee, "tx_hash": ref.tx_hash},
        )
        return self._with_tx(dataset_id, grantee, ref.tx_hash)

    def list(self, dataset_id: int, viewer: Actor | None = None) -> list[Grant]:
        """The grants ``viewer`` may see (None: all, for this instance's own CLI)."""
        grants = self.chain.list_grants(dataset_id)
        if viewer is None or viewer.address in self.owners(dataset_id):
            return grants
        if viewer.has("admin", "auditor"):
            return grants
        return [g for g in grants if g.grantee == viewer.address]

    def _with_tx(self, dataset_id: int, grantee: str, tx_hash: str) -> GrantChange:
        g = self.chain.get_grant(dataset_id, grantee)
        if g is None:  # the transaction was mined, so this cannot happen but on a reorg
            raise GrantNotFoundError(f"{grantee} holds no grant on data set {dataset_id}")
        return GrantChange(g, tx_hash)


def _address(value: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise InputError(f"{value!r} is not an Ethereum address (0x + 40 hex digits)")
    return to_checksum_address(value)
