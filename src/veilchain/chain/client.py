"""ChainClient: the one class the platform uses to talk to VeilRegistry, on any backend.

Over 500 lines on purpose: one short method per contract function, so one ABI stays in one file.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import event_abi_to_log_topic, is_address, to_checksum_address

from veilchain.chain.backends import DEFAULT_RECEIPT_TIMEOUT_S, ChainBackend
from veilchain.chain.blockcache import BlockCache
from veilchain.errors import (
    ChainError,
    ContractNotDeployedError,
    ContractRevertedError,
    InputError,
    TransactionFailedError,
)

__all__ = [
    "AddressBook",
    "Attestation",
    "AuditAnchor",
    "ChainClient",
    "DatasetInfo",
    "DatasetVersion",
    "Deployment",
    "Grant",
    "TxRef",
    "VersionRef",
    "load_artifact",
    "send_transaction",
]

ROLES = ("admin", "institution", "auditor", "keyservice")
_GAS_MARGIN = 1.2
_GAS_EXTRA = 10_000


# How stale the head block's timestamp may be when an access check reads it (seconds).
CLOCK_MAX_LAG_S = 1.0


@cache
def load_artifact(name: str = "VeilRegistry") -> dict:
    """The compiled contract (abi, bytecode, compiler) shipped with the package."""
    text = resources.files("veilchain.chain").joinpath(f"{name}.json").read_text()
    return json.loads(text)


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True)
class TxRef:
    tx_hash: str
    block_number: int
    gas_used: int


@dataclass(frozen=True)
class VersionRef:
    dataset_id: int
    version: int
    tx_hash: str
    block_number: int
    gas_used: int


@dataclass(frozen=True)
class DatasetInfo:
    dataset_id: int
    owner: str
    version_count: int


@dataclass(frozen=True)
class DatasetVersion:
    dataset_id: int
    version: int
    merkle_root: bytes
    record_count: int
    manifest_cid: str
    model_hash: bytes
    method: str
    params: str
    epsilon_milli: int
    registrant: str
    registered_at: int
    block_number: int
    tx_hash: str

    @property
    def epsilon(self) -> float | None:
        """Epsilon as a float, None when the method is not differentially private."""
        return self.epsilon_milli / 1000 if self.epsilon_milli else None


@dataclass(frozen=True)
class Grant:
    dataset_id: int
    grantee: str
    expires_at: int
    granted_at: int
    revoked: bool
    active: bool  # not revoked and the chain clock is before expires_at


@dataclass(frozen=True)
class Attestation:
    dataset_id: int
    version: int
    auditor: str
    passed: bool
    report_cid: str
    block_number: int
    tx_hash: str


@dataclass(frozen=True)
class AuditAnchor:
    root: bytes
    entry_count: int
    anchored_at: int
    block_number: int


@dataclass(frozen=True)
class Deployment:
    address: str
    deploy_block: int
    tx_hash: str
    genesis_hash: str


# ---------------------------------------------------------------------------- address book
class AddressBook:
    """A JSON file mapping chain id -> the VeilRegistry deployment on that chain."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as exc:
            raise ChainError(f"address book {self.path} is corrupt; delete it to redeploy") from exc

    def get(self, chain_id: int) -> Deployment | None:
        entry = self._read().get("chains", {}).get(str(chain_id))
        return Deployment(**entry) if entry else None

    def record(self, chain_id: int, deployment: Deployment) -> None:
        data = self._read()
        data.setdefault("chains", {})[str(chain_id)] = asdict(deployment)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


# ---------------------------------------------------------------------------- helpers
def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _bytes32(value: bytes | str, what: str) -> bytes:
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value.removeprefix("0x"))
        except ValueError as exc:
            raise InputError(f"{what} is not hex: {value!r}") from exc
    value = bytes(value)
    if len(value) != 32:
        raise InputError(f"{what} must be 32 bytes, got {len(value)}")
    return value


def _address(value: str, what: str = "address") -> str:
    if not isinstance(value, str) or not is_address(value):
        raise InputError(f"{what} {value!r} is not an Ethereum address")
    return to_checksum_address(value)


def _uint(value: int, bits: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**bits:
        raise InputError(f"{what} must be an integer in [0, 2**{bits}), got {value!r}")
    return value


# ---------------------------------------------------------------------------- client
class ChainClient:
    """VeilRegistry at ``address`` on ``backend``, transacting as ``account``."""

    def __init__(
        self,
        backend: ChainBackend,
        address: str,
        account: LocalAccount,
        *,
        deploy_block: int = 0,
        receipt_timeout_s: float = DEFAULT_RECEIPT_TIMEOUT_S,
        deploy_tx_hash: str | None = None,
    ):
        self.backend = backend
        self.deploy_tx_hash = deploy_tx_hash
        self.address = _address(address, "contract address")
        self.account = account
        self.deploy_block = int(deploy_block)
        self.receipt_timeout_s = receipt_timeout_s
        self._abi = load_artifact()["abi"]
        backend.register_errors(self._abi)
        self._contract = backend.w3.eth.contract(address=self.address, abi=self._abi)
        self._events = {e["name"]: e for e in self._abi if e["type"] == "event"}
        self._access: BlockCache[int | None] = BlockCache(backend.block_number)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def deploy(cls, backend: ChainBackend, account: LocalAccount, **kwargs: Any) -> ChainClient:
        """Deploy a fresh VeilRegistry with ``account`` as admin."""
        artifact = load_artifact()
        backend.register_errors(artifact["abi"])
        tx = {"from": account.address, "data": artifact["bytecode"], "value": 0}
        receipt = send_transaction(backend, account, tx, action="deploying VeilRegistry")
        return cls(
            backend,
            receipt["contractAddress"],
            account,
            deploy_block=int(receipt["blockNumber"]),
            deploy_tx_hash=_hex(receipt["transactionHash"]),
            **kwargs,
        )

    @classmethod
    def at(
        cls, backend: ChainBackend, address: str, account: LocalAccount, **kwargs: Any
    ) -> ChainClient:
        """Attach to a deployed VeilRegistry; no code at ``address`` -> ContractNotDeployedError."""
        address = _address(address, "contract address")
        expected = load_artifact()["deployedBytecode"]
        code = backend.get_code(address)
        if not code:
            raise ContractNotDeployedError(
                f"no contract at {address} on {backend.description}; deploy it first"
            )
        if _hex(code) != expected:
            raise ContractNotDeployedError(
                f"the contract at {address} on {backend.description} is not this build of "
                "VeilRegistry; deploy a new one (veilchain chain deploy) or set its address"
            )
        return cls(backend, address, account, **kwargs)

    def with_account(self, account: LocalAccount) -> ChainClient:
        """The same contract and backend, transacting as ``account`` (no network calls)."""
        return ChainClient(
            self.backend,
            self.address,
            account,
            deploy_block=self.deploy_block,
            receipt_timeout_s=self.receipt_timeout_s,
        )

    @property
    def sender(self) -> str:
        return self.account.address

    # -- plumbing -------------------------------------------------------------------------
    def _call(self, fn: str, *args: Any, block: int | str = "latest") -> Any:
        # No "from": py-evm charges the caller's balance even for eth_call, and every view
        # here is independent of msg.sender, so unfunded readers (auditors) can call.
        with self.backend.translating(f"calling {fn}"):
            return self._contract.functions[fn](*args).call(block_identifier=block)

    def _transact(self, fn: str, *args: Any, gas: int | None = None, on_sent=None) -> dict:
        action = f"{fn} from {self.sender}"
        data = self._contract.encode_abi(fn, args=list(args))
        tx = {"from": self.sender, "to": self.address, "data": data, "value": 0}
        return send_transaction(
            self.backend, self.account, tx, action=action, gas=gas,
            timeout=self.receipt_timeout_s, on_sent=on_sent,
        )  # fmt: skip

    def _logs(
        self, event: str, *indexed: Any, from_block: int | None = None, to_block: int | None = None
    ) -> list[dict]:
        abi = self._events[event]
        topics: list = [_hex(event_abi_to_log_topic(abi))]
        indexed_inputs = [i for i in abi["inputs"] if i["indexed"]]
        for inp, value in zip(indexed_inputs, indexed, strict=False):
            topics.append(None if value is None else _hex(abi_encode([inp["type"]], [value])))
        start = self.deploy_block if from_block is None else from_block
        end = self.backend.block_number() if to_block is None else to_block
        raw = self.backend.get_logs(
            address=self.address, topics=topics, from_block=start, to_block=end
        )
        handler = self._contract.events[event]()
        with self.backend.translating(f"decoding {event} events"):
            return [handler.process_log(log) for log in raw]

    # -- roles ----------------------------------------------------------------------------
    def add_institution(self, address: str) -> TxRef:
        return _txref(self._transact("addInstitution", _address(address)))

    def remove_institution(self, address: str) -> TxRef:
        return _txref(self._transact("removeInstitution", _address(address)))

    def add_auditor(self, address: str) -> TxRef:
        return _txref(self._transact("addAuditor", _address(address)))

    def remove_auditor(self, address: str) -> TxRef:
        return _txref(self._transact("removeAuditor", _address(address)))

    def set_key_service(self, address: str) -> TxRef:
        return _txref(self._transact("setKeyService", _address(address)))

    def propose_admin(self, address: str) -> TxRef:
        """Step 1 of an admin hand-over (admin only); address(0) cancels a proposal."""
        return _txref(self._transact("proposeAdmin", _address(address)))

    def accept_admin(self) -> TxRef:
        """Step 2: the proposed account (this client's sender) takes the admin role."""
        return _txref(self._transact("acceptAdmin"))

    def admin(self) -> str:
        return self._call("admin")

    def pending_admin(self) -> str | None:
        pending = self._call("pendingAdmin")
        return None if int(pending, 16) == 0 else pending

    def key_service(self) -> str:
        return self._call("keyService")

    def roles_of(self, address: str, *, block: int | str = "latest") -> set[str]:
        """Roles of ``address``: a subset of {"admin", "institution", "auditor", "keyservice"},
        as the contract holds them at ``block``."""
        address = _address(address)
        roles = set()
        if self._call("admin", block=block) == address:
            roles.add("admin")
        if self._call("isInstitution", address, block=block):
            roles.add("institution")
        if self._call("isAuditor", address, block=block):
            roles.add("auditor")
        if self._call("keyService", block=block) == address:
            roles.add("keyservice")
        return roles

    # -- data sets ------------------------------------------------------------------------
    def _version_args(
        self, merkle_root, record_count, manifest_cid, model_hash, method, params, epsilon_milli
    ) -> tuple:
        for name, value in (("manifest_cid", manifest_cid), ("method", method), ("params", params)):
            if not isinstance(value, str):
                raise InputError(f"{name} must be a string")
        if not manifest_cid:
            raise InputError("manifest_cid is empty")
        return (
            _bytes32(merkle_root, "merkle_root"),
            _uint(record_count, 64, "record_count"),
            manifest_cid,
            _bytes32(model_hash, "model_hash"),
            method,
            params,
            _uint(epsilon_milli, 32, "epsilon_milli"),
        )

    def _version_ref(self, receipt: dict) -> VersionRef:
        event = self._find_event(receipt, "VersionAdded")
        return VersionRef(
            dataset_id=int(event["args"]["datasetId"]),
            version=int(event["args"]["version"]),
            tx_hash=_hex(receipt["transactionHash"]),
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
        )

    def _find_event(self, receipt: dict, name: str) -> Any:
        topic = event_abi_to_log_topic(self._events[name])
        handler = self._contract.events[name]()
        for log in receipt["logs"]:
            if log["topics"] and bytes(log["topics"][0]) == topic:
                with self.backend.translating(f"decoding {name}"):
                    return handler.process_log(log)
        raise ChainError(f"transaction {_hex(receipt['transactionHash'])} emitted no {name}")

    def register_dataset(
        self,
        *,
        merkle_root: bytes,
        record_count: int,
        manifest_cid: str,
        model_hash: bytes,
        method: str,
        params: str,
        epsilon_milli: int,
        on_sent: Callable[[str], None] | None = None,
    ) -> VersionRef:
        """Create a data set owned by this account with version 1 (institutions only).
        ``on_sent(tx_hash)`` runs once the transaction is signed, before the node sees it
        (record it to find the registration again after a crash: :meth:`version_of_tx`)."""
        args = self._version_args(
            merkle_root, record_count, manifest_cid, model_hash, method, params, epsilon_milli
        )
        return self._version_ref(self._transact("registerDataset", *args, on_sent=on_sent))

    def version_of_tx(self, tx_hash: str) -> VersionRef | None:
        """The version a registerDataset/addVersion transaction created, waiting for it to be
        mined; None if the node does not know it (dropped) or it failed. A transaction still
        pending after the receipt timeout is a ChainError: resume again later."""
        raw = bytes.fromhex(tx_hash.removeprefix("0x"))
        if not self.backend.transaction_known(raw):
            return None
        receipt = self.backend.wait_for_receipt(
            raw, action=f"waiting for registration transaction {tx_hash}",
            timeout=self.receipt_timeout_s,
        )  # fmt: skip
        if int(receipt["status"]) != 1:
            return None
        return self._version_ref(receipt)

    def add_version(
        self,
        dataset_id: int,
        *,
        merkle_root: bytes,
        record_count: int,
        manifest_cid: str,
        model_hash: bytes,
        method: str,
        params: str,
        epsilon_milli: int,
        on_sent: Callable[[str], None] | None = None,
    ) -> VersionRef:
        """Append a version to a data set this account owns; earlier versions stay.
        ``on_sent`` as in :meth:`register_dataset`."""
        args = self._version_args(
            merkle_root, record_count, manifest_cid, model_hash, method, params, epsilon_milli
        )
        receipt = self._transact(
            "addVersion", _uint(dataset_id, 256, "dataset_id"), *args, on_sent=on_sent
        )
        return self._version_ref(receipt)

    def dataset_count(self) -> int:
        return int(self._call("datasetCount"))

    def get_dataset(self, dataset_id: int) -> DatasetInfo:
        owner, count = self._call("getDataset", _uint(dataset_id, 256, "dataset_id"))
        return DatasetInfo(dataset_id=dataset_id, owner=owner, version_count=int(count))

    def get_version(self, dataset_id: int, version: int) -> DatasetVersion:
        """All fields of a version: stored ones plus its VersionAdded event (one block read)."""
        root, count, registrant, block = self._call(
            "getVersion", _uint(dataset_id, 256, "dataset_id"), _uint(version, 256, "version")
        )
        logs = self._logs("VersionAdded", dataset_id, version, from_block=block, to_block=block)
        if not logs:
            raise ChainError(
                f"VersionAdded event of data set {dataset_id} v{version} is missing from block "
                f"{block}; the node may have pruned its logs"
            )
        args = logs[-1]["args"]
        if bytes(args["merkleRoot"]) != bytes(root):
            raise ChainError(f"event and storage disagree on data set {dataset_id} v{version}")
        return DatasetVersion(
            dataset_id=dataset_id,
            version=version,
            merkle_root=bytes(root),
            record_count=int(count),
            manifest_cid=args["manifestCid"],
            model_hash=bytes(args["modelHash"]),
            method=args["method"],
            params=args["params"],
            epsilon_milli=int(args["epsilonMilli"]),
            registrant=registrant,
            registered_at=self.backend.block_timestamp(int(block)),
            block_number=int(block),
            tx_hash=_hex(logs[-1]["transactionHash"]),
        )

    def list_versions(self, dataset_id: int) -> list[DatasetVersion]:
        count = self.get_dataset(dataset_id).version_count
        return [self.get_version(dataset_id, v) for v in range(1, count + 1)]

    def verify_record(self, dataset_id: int, version: int, leaf: bytes, proof: list[bytes]) -> bool:
        """The contract's verdict on a sorted-pair Merkle proof of an already-hashed leaf."""
        return bool(
            self._call(
                "verifyRecord",
                _uint(dataset_id, 256, "dataset_id"),
                _uint(version, 256, "version"),
                _bytes32(leaf, "leaf"),
                [_bytes32(p, "proof node") for p in proof],
            )
        )

    # -- grants ---------------------------------------------------------------------------
    def grant_access(self, dataset_id: int, grantee: str, expires_at: int) -> TxRef:
        return _txref(
            self._transact(
                "grantAccess",
                _uint(dataset_id, 256, "dataset_id"),
                _address(grantee, "grantee"),
                _uint(expires_at, 64, "expires_at"),
            )
        )

    def revoke_access(self, dataset_id: int, grantee: str) -> TxRef:
        return _txref(
            self._transact(
                "revokeAccess", _uint(dataset_id, 256, "dataset_id"), _address(grantee, "grantee")
            )
        )

    def has_access(self, dataset_id: int, address: str) -> bool:
        """``hasAccess`` at the latest block (see :meth:`access_until`)."""
        return self.access_until(dataset_id, address) is not None

    def access_until(self, dataset_id: int, address: str) -> int | None:
        """The grant's ``expires_at`` if ``hasAccess`` holds at the latest block, else None.

        Answers are cached for that block only: a grant changes only in a new block, and the
        calls are pinned to the block they are keyed on, so a cached answer is the chain's
        answer at that block. Expiry is judged on that block's timestamp, which goes stale on
        an idle chain: when the answer is "live" but the grant ends within ``CLOCK_MAX_LAG_S``
        of wall time, the head is first brought within that bound where the backend can (the
        embedded chain mines one empty block) and the answer read again, so an idle chain
        grows by a block per expiring grant, not per second. A node of its own mines on its
        own clock: callers must also compare the returned expiry with their own clock."""
        dataset_id, address = _uint(dataset_id, 256, "dataset_id"), _address(address)

        def read(block: int) -> int | None:
            if not self._call("hasAccess", dataset_id, address, block=block):
                return None
            return int(self._call("getGrant", dataset_id, address, block=block)[0])

        until = self._access.get((dataset_id, address), read)
        near_expiry = until is not None and until <= time.time() + CLOCK_MAX_LAG_S
        if near_expiry and self.backend.sync_clock(CLOCK_MAX_LAG_S):
            until = self._access.get((dataset_id, address), read)
        return until

    def get_grant(self, dataset_id: int, grantee: str) -> Grant | None:
        """The grant to ``grantee``, or None if there never was one."""
        grantee = _address(grantee, "grantee")
        expires, granted, revoked = self._call(
            "getGrant", _uint(dataset_id, 256, "dataset_id"), grantee
        )
        if not expires:
            return None
        now = max(self.block_timestamp(), int(time.time()))  # expired if either clock says so
        return Grant(
            dataset_id,
            grantee,
            int(expires),
            int(granted),
            bool(revoked),
            active=not revoked and now < int(expires),
        )

    def list_grants(self, dataset_id: int) -> list[Grant]:
        """Every grantee of a data set with the grant's current state (from events)."""
        self.get_dataset(dataset_id)  # UnknownDataset for a bad id
        grantees: list[str] = []
        for log in self._logs("AccessGranted", dataset_id):
            if log["args"]["grantee"] not in grantees:
                grantees.append(log["args"]["grantee"])
        return [g for g in (self.get_grant(dataset_id, a) for a in grantees) if g is not None]

    # -- audits ---------------------------------------------------------------------------
    def attest(self, dataset_id: int, version: int, passed: bool, report_cid: str) -> TxRef:
        if not isinstance(report_cid, str):
            raise InputError("report_cid must be a string")
        return _txref(
            self._transact(
                "attest",
                _uint(dataset_id, 256, "dataset_id"),
                _uint(version, 256, "version"),
                bool(passed),
                report_cid,
            )
        )

    def list_attestations(self, dataset_id: int) -> list[Attestation]:
        return [
            Attestation(
                dataset_id=int(log["args"]["datasetId"]),
                version=int(log["args"]["version"]),
                auditor=log["args"]["auditor"],
                passed=bool(log["args"]["passed"]),
                report_cid=log["args"]["reportCid"],
                block_number=int(log["blockNumber"]),
                tx_hash=_hex(log["transactionHash"]),
            )
            for log in self._logs("Attested", _uint(dataset_id, 256, "dataset_id"))
        ]

    def anchor_audit(self, root: bytes, entry_count: int) -> TxRef:
        return _txref(
            self._transact(
                "anchorAudit", _bytes32(root, "audit root"), _uint(entry_count, 64, "entry_count")
            )
        )

    def latest_audit_anchor(self) -> AuditAnchor | None:
        root, count, at, block = self._call("latestAuditAnchor")
        if not block:
            return None
        return AuditAnchor(bytes(root), int(count), int(at), int(block))

    # -- chain ----------------------------------------------------------------------------
    def block_timestamp(self) -> int:
        return self.backend.block_timestamp("latest")

    def block_number(self) -> int:
        return self.backend.block_number()


def _txref(receipt: dict) -> TxRef:
    return TxRef(
        tx_hash=_hex(receipt["transactionHash"]),
        block_number=int(receipt["blockNumber"]),
        gas_used=int(receipt["gasUsed"]),
    )


def send_transaction(
    backend: ChainBackend,
    account: LocalAccount,
    tx: dict,
    *,
    action: str,
    gas: int | None = None,
    timeout: float = DEFAULT_RECEIPT_TIMEOUT_S,
    on_sent: Callable[[str], None] | None = None,
) -> dict:
    """Sign ``tx`` locally, send it, wait for the receipt; reverts and status 0 raise.

    Without ``gas`` the gas is estimated first (which is where most reverts are caught and
    decoded). A mined transaction with status 0 is replayed as a call to recover its revert
    reason (ContractRevertedError); without one it is a TransactionFailedError. A nonce
    rejected by the node (another process used the account) is re-read once and retried.
    """
    if gas is None:
        gas = int(backend.estimate_gas(tx, action=action) * _GAS_MARGIN) + _GAS_EXTRA
    gas_limit = int(backend.get_block("latest")["gasLimit"])
    full = dict(tx)
    full.update(gas=min(gas_limit, gas), chainId=backend.chain_id, type=2, **backend.fee_fields())
    for attempt in (1, 2):
        with backend.lock:
            full["nonce"] = backend.next_nonce(account.address)
            signed = account.sign_transaction(full)
            if on_sent is not None:  # recorded before the node sees it: no crash window
                on_sent(_hex(signed.hash))
            try:
                tx_hash = backend.send_raw_transaction(signed.raw_transaction, action=action)
                break
            except ChainError as exc:
                backend.forget_nonce(account.address)
                if attempt == 2 or "nonce" not in str(exc).lower():
                    raise
    receipt = backend.wait_for_receipt(tx_hash, action=action, timeout=timeout)
    if int(receipt["status"]) != 1:
        block = int(receipt["blockNumber"])
        replay = {k: full[k] for k in ("from", "to", "data", "value") if k in full}
        try:
            backend.call(replay, action=action, block=max(0, block - 1))
        except ContractRevertedError:
            raise
        except ChainError:
            pass
        raise TransactionFailedError(
            f"{action}: transaction {_hex(tx_hash)} failed in block {block} "
            f"(status 0, gas used {receipt['gasUsed']} of {full['gas']})"
        )
    return receipt
