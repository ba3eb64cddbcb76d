"""Chain backends: the small surface ChainClient needs from a node, with errors translated.

``ChainBackend`` holds a web3 instance and turns every web3 / eth-tester / transport exception
into a ``veilchain.errors.ChainError``. Reverts are decoded from the raw revert data against
the custom errors of every ABI registered with :meth:`ChainBackend.register_errors`, so the
same ``ContractRevertedError(name=...)`` and message come out of every backend.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from hexbytes import HexBytes

from veilchain.errors import (
    ChainError,
    ChainUnavailableError,
    ContractRevertedError,
    TransactionFailedError,
)

__all__ = ["ChainBackend", "JsonRpcBackend", "DEFAULT_LOG_BLOCK_RANGE"]

DEFAULT_LOG_BLOCK_RANGE = 2_000
DEFAULT_RECEIPT_TIMEOUT_S = 120.0
_ERROR_STRING = function_signature_to_4byte_selector("Error(string)")
_PANIC = function_signature_to_4byte_selector("Panic(uint256)")


# Plain sentences for the refusals a user meets (appended to the decoded error).
_SENTENCES = {
    "NotAdmin": "{account} is not the contract's admin",
    "NotPendingAdmin": "{account} was not proposed as admin (pending: {pendingAdmin}); "
    "the admin must propose it first",
    "NotInstitution": "{account} does not hold the institution role; ask the admin to add it",
    "NotAuditor": "{account} does not hold the auditor role; ask the admin to add it",
    "NotKeyService": "{account} is not the key service",
    "NotDatasetOwner": "{account} does not own data set {datasetId} (its owner is {owner})",
    "OwnerNotInstitution": "data set {datasetId} is frozen: its owner {owner} no longer holds "
    "the institution role (reads and verification still work)",
    "UnknownDataset": "there is no data set {datasetId} on the contract",
    "UnknownVersion": "data set {datasetId} has no version {version}",
    "ExpiryInPast": "the grant expiry {expiresAt} is not after the chain's time {nowTs}",
    "ZeroAddress": "the zero address cannot hold a role or a grant",
    "EmptyDataset": "a data set version needs at least one image",
    "ZeroMerkleRoot": "the Merkle root is zero",
    "RecordCountTooLarge": "{recordCount} records are more than one version may hold",
    "AlreadyInRole": "{account} already holds the {role} role",
    "NotInRole": "{account} does not hold the {role} role",
    "NoGrant": "{grantee} holds no grant on data set {datasetId}",
    "StaleAuditAnchor": "audit anchor for {entryCount} entries is not newer than the last "
    "({previousEntryCount})",
}


def _abi_type(param: dict) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][5:]}"
    return param["type"]


def _fmt_arg(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


def _revert_data_from(exc: BaseException) -> bytes | None:
    """Raw revert bytes from any backend's exception shape, or None if it carries none."""
    for candidate in (getattr(exc, "data", None), *getattr(exc, "args", ())):
        if isinstance(candidate, dict):
            candidate = candidate.get("data") or candidate.get("result")
            if isinstance(candidate, dict):  # ganache nests {"data": {"result": "0x.."}}
                candidate = candidate.get("result") or candidate.get("data")
        if isinstance(candidate, (bytes, bytearray)) and len(candidate) >= 4:
            return bytes(candidate)
        if isinstance(candidate, str) and candidate.startswith("0x") and len(candidate) >= 10:
            try:
                return bytes(HexBytes(candidate))
            except ValueError:
                continue
    return None


class ChainBackend:
    """A web3 connection plus nonce bookkeeping and exception translation."""

    description = "chain"
    is_dev_chain = False

    def __init__(self, w3, *, log_block_range: int = DEFAULT_LOG_BLOCK_RANGE):
        self.w3 = w3
        self.log_block_range = max(1, int(log_block_range))
        self._errors: dict[bytes, tuple[str, list[str], list[str]]] = {}
        self._nonces: dict[str, int] = {}
        self.lock = threading.RLock()
        self._chain_id: int | None = None

    # -- errors ---------------------------------------------------------------------------
    def register_errors(self, abi: list[dict]) -> None:
        """Learn the custom errors of a contract so reverts decode to their names."""
        for item in abi:
            if item.get("type") != "error":
                continue
            types = [_abi_type(p) for p in item["inputs"]]
            selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
            self._errors[selector] = (item["name"], types, [p["name"] for p in item["inputs"]])

    def decode_revert(self, data: bytes | None, *, action: str) -> ContractRevertedError:
        """Build the one ContractRevertedError every backend raises for ``data``."""
        if not data:
            return ContractRevertedError(f"{action} reverted without a reason")
        selector, body = bytes(data[:4]), bytes(data[4:])
        if selector == _ERROR_STRING:
            (reason,) = abi_decode(["string"], body)
            return ContractRevertedError(
                f"{action} reverted: {reason}", name="Error", args=(reason,)
            )
        if selector == _PANIC:
            (code,) = abi_decode(["uint256"], body)
            return ContractRevertedError(
                f"{action} reverted: Panic(0x{code:02x})", name="Panic", args=(code,)
            )
        known = self._errors.get(selector)
        if known is None:
            return ContractRevertedError(
                f"{action} reverted with unknown error 0x{bytes(data).hex()[:8]}"
            )
        name, types, names = known
        values = tuple(
            to_checksum_address(v) if t == "address" else v
            for t, v in zip(types, abi_decode(types, body) if types else (), strict=True)
        )
        shown = ", ".join(f"{n}={_fmt_arg(v)}" for n, v in zip(names, values, strict=True))
        sentence = _SENTENCES.get(name)
        reason = sentence.format(**dict(zip(names, values, strict=True))) if sentence else None
        said = f": {reason}" if reason else ""
        return ContractRevertedError(
            f"{action} reverted: {name}({shown}){said}", name=name, args=values, reason=reason
        )

    def _translate(self, exc: BaseException, action: str) -> ChainError:
        """Map one third-party exception to a ChainError (override to add backend shapes)."""
        from web3.exceptions import ContractLogicError, TimeExhausted

        if isinstance(exc, ChainError):
            return exc
        if isinstance(exc, ContractLogicError):
            return self.decode_revert(_revert_data_from(exc), action=action)
        if isinstance(exc, TimeExhausted):
            return TransactionFailedError(f"{action}: {exc}")
        if _is_connection_error(exc):
            return ChainUnavailableError(
                f"chain node at {self.description} is unreachable; start it or check the URL"
            )
        error = _rpc_error(exc)
        if error is not None:
            message = str(error.get("message", "")).splitlines()[0] if error else ""
            data = _revert_data_from(exc) or _revert_data_from(ValueError(error))
            if "revert" in message or data:
                return self.decode_revert(data, action=action)
            return ChainError(f"{action} failed: {message or 'the node returned an error'}")
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return ChainError(f"{action} failed: {first}")

    @contextlib.contextmanager
    def translating(self, action: str) -> Iterator[None]:
        """Run a block and re-raise anything it throws as a ChainError for ``action``."""
        try:
            yield
        except ChainError:
            raise
        except Exception as exc:
            raise self._translate(exc, action) from exc

    # -- reads ----------------------------------------------------------------------------
    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            with self.translating("reading the chain id"):
                self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    def block_number(self) -> int:
        with self.translating("reading the block number"):
            return int(self.w3.eth.block_number)

    def get_block(self, block: int | str = "latest") -> dict:
        with self.translating(f"reading block {block}"):
            return dict(self.w3.eth.get_block(block))

    def block_timestamp(self, block: int | str = "latest") -> int:
        return int(self.get_block(block)["timestamp"])

    def genesis_hash(self) -> str:
        return "0x" + bytes(self.get_block(0)["hash"]).hex()

    def get_code(self, address: str) -> bytes:
        with self.translating(f"reading code at {address}"):
            return bytes(self.w3.eth.get_code(to_checksum_address(address)))

    def get_balance(self, address: str) -> int:
        with self.translating(f"reading the balance of {address}"):
            return int(self.w3.eth.get_balance(to_checksum_address(address)))

    def call(self, tx: dict, *, action: str, block: int | str = "latest") -> bytes:
        with self.translating(action):
            return bytes(self.w3.eth.call(tx, block))

    def estimate_gas(self, tx: dict, *, action: str) -> int:
        with self.translating(action):
            return int(self.w3.eth.estimate_gas(tx))

    def fee_fields(self) -> dict[str, int]:
        """EIP-1559 fee fields: twice the latest base fee plus the priority fee."""
        block = self.get_block("latest")
        base = int(block.get("baseFeePerGas") or 0)
        tip = self._priority_fee()
        return {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}

    def _priority_fee(self) -> int:
        return 1_000_000_000

    def get_logs(
        self, *, address: str, topics: list, from_block: int, to_block: int
    ) -> list[Mapping[str, Any]]:
        """Logs of ``address`` matching ``topics`` in [from_block, to_block], in bounded ranges."""
        out: list[Mapping[str, Any]] = []
        start = from_block
        while start <= to_block:
            end = min(to_block, start + self.log_block_range - 1)
            out.extend(self._get_logs_range(address, topics, start, end))
            start = end + 1
        return out

    def _get_logs_range(
        self, address: str, topics: list, start: int, end: int
    ) -> list[Mapping[str, Any]]:
        params = {
            "address": to_checksum_address(address),
            "fromBlock": start,
            "toBlock": end,
            "topics": topics,
        }
        with self.translating(f"reading logs of blocks {start}-{end}"):
            return list(self.w3.eth.get_logs(params))

    # -- writes ---------------------------------------------------------------------------
    def next_nonce(self, address: str) -> int:
        """The next nonce for ``address``: read from the chain once, then counted locally."""
        with self.lock:
            if address not in self._nonces:
                with self.translating(f"reading the nonce of {address}"):
                    self._nonces[address] = int(
                        self.w3.eth.get_transaction_count(to_checksum_address(address), "pending")
                    )
            nonce = self._nonces[address]
            self._nonces[address] = nonce + 1
            return nonce

    def forget_nonce(self, address: str) -> None:
        """Drop the local nonce counter (after a failed send) so the next read is fresh."""
        with self.lock:
            self._nonces.pop(address, None)

    def send_raw_transaction(self, raw: bytes, *, action: str) -> bytes:
        with self.translating(action):
            return bytes(self.w3.eth.send_raw_transaction(raw))

    def wait_for_receipt(
        self, tx_hash: bytes, *, action: str, timeout: float = DEFAULT_RECEIPT_TIMEOUT_S
    ) -> dict:
        with self.translating(action):
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=timeout, poll_latency=0.05
            )
            return dict(receipt)

    def transaction_known(self, tx_hash: bytes) -> bool:
        """Whether the node knows the transaction (pending or mined); False once dropped."""
        from web3.exceptions import TransactionNotFound

        try:
            with self.translating("looking up a transaction"):
                self.w3.eth.get_transaction(tx_hash)
        except ChainError as exc:
            if isinstance(exc.__cause__, TransactionNotFound) or "not found" in str(exc).lower():
                return False
            raise
        return True

    # -- clock ----------------------------------------------------------------------------
    def sync_clock(self, max_lag_s: float) -> bool:
        """Bring the head block's timestamp within ``max_lag_s`` of wall time, where this
        backend can (the embedded chain mines an empty block); True if a block was mined.
        A node of its own (ganache, anvil, a testnet) mines on its own clock: nothing here."""
        return False

    # -- dev chains -----------------------------------------------------------------------
    def advance_time(self, seconds: int) -> int:
        """Move the chain clock forward and mine a block; returns the new block timestamp."""
        raise ChainError(f"{self.description} is not a dev chain; its clock cannot be moved")

    def fund(self, address: str, wei: int) -> None:
        """Send ``wei`` to ``address`` from the node's first unlocked (prefunded) account."""
        if not self.is_dev_chain:
            raise ChainError(
                f"{self.description} is not a dev chain; fund {address} from a wallet yourself"
            )
        with self.translating(f"funding {address}"):
            accounts = self.w3.eth.accounts
            if not accounts:
                raise ChainError(
                    f"{self.description} has no unlocked account to fund {address} from"
                )
            tx_hash = self.w3.eth.send_transaction(
                {"from": accounts[0], "to": to_checksum_address(address), "value": int(wei)}
            )
            self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.05)

    def close(self) -> None:
        """Release resources (files, locks); the backend is unusable afterwards."""


def _rpc_error(exc: BaseException) -> dict | None:
    """The JSON-RPC ``error`` object carried by a web3 exception, if any."""
    response = getattr(exc, "rpc_response", None)
    if isinstance(response, dict) and isinstance(response.get("error"), dict):
        return response["error"]
    if exc.args and isinstance(exc.args[0], dict):
        return exc.args[0]
    return None


def _is_connection_error(exc: BaseException) -> bool:
    import requests
    from web3.exceptions import ProviderConnectionError

    return isinstance(exc, (ProviderConnectionError, requests.ConnectionError, ConnectionError))


class JsonRpcBackend(ChainBackend):
    """Any Ethereum JSON-RPC node over HTTP (ganache, anvil, a testnet endpoint)."""

    def __init__(
        self,
        url: str,
        *,
        log_block_range: int = DEFAULT_LOG_BLOCK_RANGE,
        confirmations: int = 0,
        request_timeout_s: float = 30.0,
    ):
        from web3 import HTTPProvider, Web3

        provider = HTTPProvider(url, request_kwargs={"timeout": request_timeout_s})
        super().__init__(Web3(provider), log_block_range=log_block_range)
        self.url = url
        self.description = url
        self.confirmations = max(0, int(confirmations))
        try:
            client_version = str(self.w3.client_version)
        except Exception as exc:
            raise self._translate(exc, f"connecting to {url}") from exc
        lowered = client_version.lower()
        self.client_version = client_version
        self.is_dev_chain = any(n in lowered for n in ("ganache", "anvil", "hardhat", "ethereumjs"))

    def _priority_fee(self) -> int:
        try:
            return int(self.w3.eth.max_priority_fee)
        except Exception:  # older nodes lack eth_maxPriorityFeePerGas
            return 1_000_000_000

    def wait_for_receipt(
        self, tx_hash: bytes, *, action: str, timeout: float = DEFAULT_RECEIPT_TIMEOUT_S
    ) -> dict:
        receipt = super().wait_for_receipt(tx_hash, action=action, timeout=timeout)
        if self.confirmations:
            deadline = time.monotonic() + timeout
            target = int(receipt["blockNumber"]) + self.confirmations
            while self.block_number() < target:
                if time.monotonic() > deadline:
                    raise TransactionFailedError(
                        f"{action}: {self.confirmations} confirmations not reached in {timeout}s"
                    )
                time.sleep(0.5)
        return receipt

    def advance_time(self, seconds: int) -> int:
        if not self.is_dev_chain:
            return super().advance_time(seconds)
        with self.translating(f"advancing the clock of {self.url}"):
            self.w3.provider.make_request("evm_increaseTime", [int(seconds)])
            self.w3.provider.make_request("evm_mine", [])
        return self.block_timestamp("latest")
