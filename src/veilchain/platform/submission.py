"""Submission: the one transaction of a registration, sent once.

A registration whose images are pinned and whose manifest is built is submitted here. Before
sending, :meth:`Submitter.find_submitted` looks on chain for a version this registration
already created (a run that crashed after its transaction was mined), and a transaction
sent before a crash is looked up by its hash; only when neither exists is one sent. The
transaction hash is stored before waiting for it to be mined.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from veilchain.chain.client import ChainClient, VersionRef
from veilchain.platform.audit import AuditLog
from veilchain.platform.audit_entries import AuditEvent
from veilchain.platform.manifest import chain_params_text, epsilon_milli_of
from veilchain.platform.registrations import (
    REGISTERED,
    RegistrationRow,
    count_images,
    registration_row,
)

__all__ = ["Submitter"]


class Submitter:
    """Sends a pinned registration's transaction as the institution account, exactly once."""

    def __init__(
        self,
        *,
        chain: ChainClient,
        accounts: Any,
        session_factory: sessionmaker[Session],
        audit: AuditLog,
    ) -> None:
        self.chain = chain
        self.accounts = accounts  # role -> LocalAccount, decrypted from the keystore on use
        self.session_factory = session_factory
        self.audit = audit

    def _signer(self) -> ChainClient:
        return self.chain.with_account(self.accounts["institution"])

    def _record_count(self, uid: str) -> int:
        with self.session_factory() as s:
            return count_images(s, uid)

    def find_submitted(self, reg: RegistrationRow) -> tuple[int, int] | None:
        """The (dataset_id, version) this registration already created, if its tx landed."""
        assert reg.merkle_root and reg.chain_count_before is not None  # set when pinned
        root = bytes.fromhex(reg.merkle_root[2:])
        if reg.dataset_id is None:
            candidates = [
                (i, 1) for i in range(reg.chain_count_before + 1, self.chain.dataset_count() + 1)
            ]
        else:
            n = self.chain.get_dataset(reg.dataset_id).version_count
            assert reg.versions_before is not None
            candidates = [(reg.dataset_id, v) for v in range(reg.versions_before + 1, n + 1)]
        for ds, v in candidates:
            ver = self.chain.get_version(ds, v)
            if ver.merkle_root == root and ver.manifest_cid == reg.manifest_cid:
                return ds, v
        return None

    def submit(self, reg: RegistrationRow) -> RegistrationRow:
        found = self.find_submitted(reg)
        tx_hash = reg.tx_hash
        if found is None and tx_hash:  # sent before a crash: pending or dropped, not mined
            ref = self._signer().version_of_tx(tx_hash)
            found = None if ref is None else (ref.dataset_id, ref.version)
        if found is None:
            ref = self._send(reg)
            found, tx_hash = (ref.dataset_id, ref.version), ref.tx_hash
        with self.session_factory() as s, s.begin():
            row = registration_row(s, reg.uid)
            row.dataset_id, row.version = found
            row.tx_hash = tx_hash if isinstance(tx_hash, str) or tx_hash is None else tx_hash.hex()
            row.status = REGISTERED
            self.audit.append(
                AuditEvent.REGISTER,
                actor=self.accounts["institution"].address,
                subject=f"dataset:{found[0]}/v{found[1]}",
                details={
                    "uid": row.uid,
                    "manifest_cid": row.manifest_cid,
                    "merkle_root": row.merkle_root,
                    "tx_hash": row.tx_hash,
                },
                session=s,
            )
        return row

    def _send(self, reg: RegistrationRow) -> VersionRef:
        """The one transaction: a new data set, or a version of an existing one."""
        assert reg.merkle_root and reg.manifest_cid  # set when pinned
        params = json.loads(reg.params_json)
        inst = self._signer()
        fields: dict[str, Any] = dict(
            merkle_root=bytes.fromhex(reg.merkle_root[2:]),
            record_count=self._record_count(reg.uid),
            manifest_cid=reg.manifest_cid,
            model_hash=bytes.fromhex(reg.model_hash[2:]),
            method=reg.method,
            params=chain_params_text(params),
            epsilon_milli=epsilon_milli_of(params),
            on_sent=partial(self._record_tx, reg.uid),  # recorded before the wait to be mined
        )
        if reg.dataset_id is None:
            return inst.register_dataset(**fields)
        return inst.add_version(reg.dataset_id, **fields)

    def _record_tx(self, uid: str, tx_hash: str) -> None:
        with self.session_factory() as s, s.begin():
            registration_row(s, uid).tx_hash = tx_hash

    def tx_cost(self, reg: RegistrationRow) -> tuple[str, int]:
        """The registering transaction's hash and gas used, read back from its receipt."""
        assert reg.dataset_id and reg.version
        tx_hash = reg.tx_hash or self.chain.get_version(reg.dataset_id, reg.version).tx_hash
        backend = self.chain.backend
        with backend.translating(f"reading the receipt of {tx_hash}"):
            receipt = backend.w3.eth.get_transaction_receipt(tx_hash)
        return tx_hash, int(receipt["gasUsed"])
