"""``build_service(settings)``: open (or create) everything under a data directory and wire
the service. The one place that reads Settings for the platform.

The instance's role accounts (institution, auditor, key service) live in the keystore; on a
fresh contract the admin appoints them, and on a development chain they are funded.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address

from veilchain.anonymizer.batch import AnonymizerFactory
from veilchain.chain.client import ChainClient
from veilchain.config import Settings
from veilchain.platform.executors import ExecutorChoice
from veilchain.platform.service import VeilchainService

if TYPE_CHECKING:
    from veilchain.chain import Keystore

__all__ = ["ROLES", "RoleAccounts", "build_service", "open_keystore"]

ROLES = ("institution", "auditor", "keyservice")


class RoleAccounts(Mapping[str, Any]):
    """The local accounts of each role, decrypted from the keystore only when first used."""

    def __init__(self, keystore: Any, admin: Any) -> None:
        self._keystore = keystore
        self._loaded = {"admin": admin}

    def __getitem__(self, role: str) -> Any:
        if role not in self._loaded:
            if role not in ROLES:
                raise KeyError(role)
            self._loaded[role] = self._keystore.get_or_create(role)
        return self._loaded[role]

    def __iter__(self) -> Iterator[str]:
        return iter(("admin", *ROLES))

    def __len__(self) -> int:
        return 1 + len(ROLES)

    def address(self, role: str) -> str:
        """The role's address without decrypting its key (read from the keystore file)."""
        if role in self._loaded or not self._keystore.exists(role):
            return self[role].address
        stored = json.loads(self._keystore.path_of(role).read_text())["address"]
        return to_checksum_address("0x" + stored.removeprefix("0x"))


def _appoint_roles(chain: ChainClient, accounts: RoleAccounts) -> None:
    """Appoint this instance's institution, auditor and key service on a fresh contract."""
    admin = chain.with_account(accounts["admin"])
    wanted = {"institution": admin.add_institution, "auditor": admin.add_auditor,
              "keyservice": admin.set_key_service}  # fmt: skip
    for role, appoint in wanted.items():
        address = accounts.address(role)
        if role not in chain.roles_of(address):
            appoint(address)
        if chain.backend.is_dev_chain and chain.backend.get_balance(address) < 10**18:
            chain.backend.fund(address, 100 * 10**18)


def open_keystore(settings: Settings) -> Keystore:
    """The keystore of the data directory's accounts (roles and grantees), secrets resolved."""
    from veilchain.platform.local_secrets import resolve_local_secrets

    return _keystore(resolve_local_secrets(settings))


def _keystore(resolved: Settings) -> Keystore:
    from veilchain.chain import Keystore

    return Keystore(Path(resolved.data_dir) / "keystore", _keystore_passphrase(resolved))


def _keystore_passphrase(resolved: Settings) -> str:
    from veilchain.platform.local_secrets import required_secret

    return required_secret(
        resolved.chain.keystore_passphrase, "VEILCHAIN_CHAIN__KEYSTORE_PASSPHRASE"
    )


class LazyCredentials:
    """The institution's C2PA signer, loaded on first call (the signing identity's files
    and the C2PA library are needed only by registration and the trust document)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._signer: Any = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            if self._signer is None:
                from veilchain.platform.provenance import CredentialsSigner, load_signing_identity

                self._signer = CredentialsSigner(load_signing_identity(self._settings))
            return self._signer


def build_service(settings: Settings) -> VeilchainService:
    """Open (or create) everything under the settings' data directory and wire the service."""
    from veilchain.chain import build_chain_client
    from veilchain.platform.audit import AuditLog
    from veilchain.platform.db import make_engine, make_session_factory
    from veilchain.platform.keys import build_key_manager
    from veilchain.platform.local_secrets import anonymizer_secret, resolve_local_secrets
    from veilchain.platform.migrations import migrate
    from veilchain.platform.storage import build_storage

    settings = resolve_local_secrets(settings)  # unset secrets: generated per data dir
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    migrate(engine)  # the one schema path: Alembic, for a fresh file too
    sessions = make_session_factory(engine)
    audit = AuditLog(sessions)
    keys = build_key_manager(
        session_factory=sessions,
        passphrase=settings.kms.passphrase,
        master_key_hex=settings.kms.master_key_hex,
        audit=audit,
    )
    storage = build_storage(api_url=settings.ipfs.api_url, data_dir=data_dir)
    chain = build_chain_client(
        rpc_url=settings.chain.rpc_url,
        data_dir=data_dir,
        private_key=settings.chain.private_key,
        keystore_passphrase=_keystore_passphrase(settings),
        contract_address=settings.chain.contract_address,
        log_block_range=settings.chain.log_block_range,
        confirmations=settings.chain.confirmations,
    )
    keystore = _keystore(settings)
    accounts = RoleAccounts(keystore, chain.account)
    _appoint_roles(chain, accounts)
    a = settings.anonymizer
    factory = AnonymizerFactory({**a.builder_options(), "secret": anonymizer_secret(data_dir)})
    return VeilchainService(
        chain=chain,
        accounts=accounts,
        storage=storage,
        keys=keys,
        audit=audit,
        session_factory=sessions,
        anonymizer_factory=factory,
        data_dir=data_dir,
        seed=a.seed,
        keystore=keystore,
        workers=a.workers or (os.cpu_count() or 1),
        credentials=LazyCredentials(settings),
        executor=ExecutorChoice(
            kind=settings.executor.kind,
            address=settings.executor.address,
            actors=settings.executor.actors,
            batch=settings.executor.batch,
            local_cpus=a.workers or None,
            fetch_timeout_s=settings.executor.fetch_timeout_s,
            upload_url=settings.executor.upload_url,
        ),
    )
