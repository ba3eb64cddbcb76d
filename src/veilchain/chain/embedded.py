"""The embedded chain: py-evm in this process, in memory or persisted in a SQLite file.

Persistence: py-evm's key-value store is backed by one SQLite table. Writes are buffered in
memory and committed in one SQLite transaction (``synchronous=FULL``) each time a block is
mined; eth-tester auto-mines every transaction before its hash is returned, so a returned
transaction hash is on disk, and a process killed at any moment reopens at its last mined
block. On reopen the chain is rebuilt on the stored canonical head instead of genesis.
Transaction and receipt lookups are answered from py-evm's transaction index, and logs are
read block by block with the header bloom filter, instead of eth-tester's linear scans.
The prefunded dev accounts are eth-tester's deterministic keys (1..10); they live outside
the database. One process at a time may open a chain directory (an exclusive file lock).
"""

from __future__ import annotations

import ast
import contextlib
import os
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eth_utils import keccak, to_canonical_address, to_checksum_address
from hexbytes import HexBytes

from veilchain.chain.backends import DEFAULT_LOG_BLOCK_RANGE, ChainBackend, _revert_data_from
from veilchain.errors import ChainError, ChainUnavailableError

__all__ = ["EthTesterBackend"]

TESTER_CHAIN_ID = 131277322940537  # eth-tester's chain id, kept for tool compatibility
_DB_FILE = "chain.sqlite3"
_LOCK_FILE = "LOCK"


def _missing_extra(exc: ImportError) -> ChainError:
    return ChainError(
        f"the embedded chain needs py-evm ({exc.name} is missing): pip install 'eth-tester[py-evm]'"
    )


class _SqliteKV:
    """A py-evm key-value database over one SQLite table; writes buffer until commit()."""

    def __init__(self, path: Path):
        self.path = path
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL)")
        self._pending: dict[bytes, bytes | None] = {}

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._pending:
            value = self._pending[key]
            if value is None:
                raise KeyError(key)
            return value
        row = self._conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return bytes(row[0])

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[bytes(key)] = bytes(value)

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._pending[bytes(key)] = None

    def _exists(self, key: bytes) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def commit(self) -> None:
        if not self._pending:
            return
        puts = [(k, v) for k, v in self._pending.items() if v is not None]
        dels = [(k,) for k, v in self._pending.items() if v is None]
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", puts)
            self._conn.executemany("DELETE FROM kv WHERE k = ?", dels)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._pending.clear()

    def close(self) -> None:
        self._conn.close()


def _make_kv_class():
    """py-evm's BaseDB mixin is applied lazily so importing this module needs no py-evm."""
    from eth.db.backends.base import BaseDB

    return type("SqliteDB", (_SqliteKV, BaseDB), {})


def _chain_class():
    from eth.chains.base import MiningChain
    from eth.vm.forks import PragueVM
    from eth_typing import BlockNumber
    from eth_utils.toolz import assoc

    class VeilTesterChain(MiningChain):
        """eth-tester's tester chain, rebuilt here so it can be reopened on a stored head."""

        chain_id = TESTER_CHAIN_ID
        vm_configuration = ((BlockNumber(0), PragueVM),)

        def create_header_from_parent(self, parent_header, **header_params):
            return super().create_header_from_parent(
                parent_header, **assoc(header_params, "gas_limit", parent_header.gas_limit)
            )

        def get_transaction_builder(self):
            return super().get_vm().get_transaction_builder()

    return VeilTesterChain


# Over 80 lines because it is a class statement (eth-tester's backend subclassed once its
# optional imports succeed), not one long procedure: each method is short.
def _make_pyevm_backend_class():
    from eth.exceptions import TransactionNotFound as EVMTransactionNotFound
    from eth.vm.forks import PragueVM
    from eth.vm.forks.cancun import get_total_blob_gas
    from eth_tester import PyEVMBackend
    from eth_tester.backends.pyevm.main import (
        generate_genesis_state_for_keys,
        get_default_account_keys,
        get_default_genesis_params,
    )
    from eth_tester.backends.pyevm.serializers import (
        serialize_transaction,
        serialize_transaction_receipt,
    )
    from eth_tester.exceptions import TransactionNotFound

    class PersistentPyEVMBackend(PyEVMBackend):
        """eth-tester's PyEVMBackend over a given database, committing once per block."""

        def __init__(self, kv=None):
            from eth.db.atomic import AtomicDB

            self.kv = kv
            base_db = AtomicDB(kv) if kv is not None else AtomicDB()
            chain_class = _chain_class()
            self.account_keys = get_default_account_keys(quantity=10)
            head_known = False
            if kv is not None:
                from eth.db.chain import ChainDB

                try:
                    ChainDB(base_db).get_canonical_head()
                    head_known = True
                except Exception:  # HeaderNotFound / CanonicalHeadNotFound: a new database
                    head_known = False
            if head_known:
                self.chain = chain_class(base_db)
            else:
                self.chain = chain_class.from_genesis(
                    base_db,
                    get_default_genesis_params(),
                    generate_genesis_state_for_keys(self.account_keys),
                )
                self._commit()

        def reset_to_genesis(self, *args, **kwargs):
            raise ChainError("the embedded chain cannot be reset; delete its directory instead")

        def _commit(self) -> None:
            if self.kv is not None:
                self.kv.commit()

        def mine_blocks(self, num_blocks=1, coinbase=b"\x00" * 20):
            hashes = []
            for _ in range(num_blocks):
                parent = self.chain.get_canonical_head()
                # Deterministic prevrandao (eth-tester draws a random one per block).
                kwargs = {"coinbase": coinbase, "mix_hash": keccak(b"veilchain" + parent.hash)}
                if isinstance(self.chain.get_vm(), PragueVM):
                    kwargs["blob_gas_used"] = sum(
                        get_total_blob_gas(tx) for tx in self.chain.get_block().transactions
                    )
                block = self.chain.mine_block(**kwargs)
                self._commit()
                hashes.append(block.hash)
            return tuple(hashes)

        def _locate(self, tx_hash):
            pending = self.chain.get_block()
            for index, tx in enumerate(pending.transactions):
                if tx.hash == tx_hash:
                    return pending, tx, index
            try:
                number, index = self.chain.chaindb.get_transaction_index(tx_hash)
            except EVMTransactionNotFound as exc:
                raise TransactionNotFound(
                    f"No transaction found for hash: {tx_hash.hex()}"
                ) from exc
            block = self.chain.get_canonical_block_by_number(number)
            return block, block.transactions[index], index

        def get_transaction_by_hash(self, transaction_hash):
            block, tx, index = self._locate(transaction_hash)
            is_pending = block.number == self.chain.get_block().number
            return serialize_transaction(block, tx, index, is_pending)

        def get_transaction_receipt(self, transaction_hash):
            block, tx, index = self._locate(transaction_hash)
            is_pending = block.number == self.chain.get_block().number
            receipts = block.get_receipts(self.chain.chaindb)
            return serialize_transaction_receipt(
                block, receipts, tx, index, is_pending, self.chain.get_vm()
            )

    return PersistentPyEVMBackend


class EthTesterBackend(ChainBackend):
    """py-evm in this process. ``db_path`` None: in memory; a directory: persisted there."""

    description = "the embedded chain"
    is_dev_chain = True

    def __init__(
        self,
        db_path: Path | None = None,
        *,
        log_block_range: int = DEFAULT_LOG_BLOCK_RANGE,
        lock_timeout_s: float = 10.0,
    ):
        try:
            from eth_tester import EthereumTester
            from web3 import Web3
            from web3.providers.eth_tester import EthereumTesterProvider

            backend_class = _make_pyevm_backend_class()
            kv_class = _make_kv_class()
        except ImportError as exc:
            raise _missing_extra(exc) from exc
        self.db_path = Path(db_path) if db_path is not None else None
        self._lock_fd: int | None = None
        kv = None
        if self.db_path is not None:
            self.description = f"the embedded chain in {self.db_path}"
            self.db_path.mkdir(parents=True, exist_ok=True)
            self._acquire_lock(self.db_path, lock_timeout_s)
            try:
                kv = kv_class(self.db_path / _DB_FILE)
            except sqlite3.Error as exc:
                self._release_lock()
                raise ChainUnavailableError(
                    f"cannot open {self.description}: {exc}; check the data directory"
                ) from exc
        self._kv = kv
        try:
            self._pyevm = backend_class(kv)
        except Exception as exc:
            self.close()
            raise ChainUnavailableError(
                f"cannot open {self.description}: {exc}; move the chain directory aside"
            ) from exc
        self.tester = EthereumTester(backend=self._pyevm, auto_mine_transactions=True)
        super().__init__(Web3(EthereumTesterProvider(self.tester)), log_block_range=log_block_range)

    # -- lifecycle ------------------------------------------------------------------------
    def _acquire_lock(self, directory: Path, timeout_s: float) -> None:
        import fcntl

        path = directory / _LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise ChainUnavailableError(
                        f"{self.description} is in use by another process; stop it or use --rpc"
                    ) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def close(self) -> None:
        if self._kv is not None:
            with contextlib.suppress(sqlite3.Error):
                self._kv.commit()
                self._kv.close()
            self._kv = None
        self._release_lock()

    # -- errors ---------------------------------------------------------------------------
    def _translate(self, exc: BaseException, action: str) -> ChainError:
        from eth_tester.exceptions import TransactionFailed

        if isinstance(exc, TransactionFailed):
            return self.decode_revert(_tester_revert_data(exc), action=action)
        return super()._translate(exc, action)

    # -- fast paths -----------------------------------------------------------------------
    def _get_logs_range(
        self, address: str, topics: list, start: int, end: int
    ) -> list[Mapping[str, Any]]:
        from eth_bloom import BloomFilter
        from web3.datastructures import AttributeDict

        chain = self._pyevm.chain
        want_address = to_canonical_address(address)
        wanted = [_topic_set(t) for t in topics]
        out: list[Mapping[str, Any]] = []
        with self.translating(f"reading logs of blocks {start}-{end}"):
            head = chain.get_canonical_head().block_number
            for number in range(max(0, start), min(end, head) + 1):
                header = chain.get_canonical_block_header_by_number(number)
                bloom = BloomFilter(header.bloom)
                if want_address not in bloom:
                    continue
                if not all(w is None or any(t in bloom for t in w) for w in wanted):
                    continue
                block = chain.get_canonical_block_by_number(number)
                receipts = block.get_receipts(chain.chaindb)
                log_index = 0
                for tx_index, (tx, receipt) in enumerate(
                    zip(block.transactions, receipts, strict=True)
                ):
                    for log in receipt.logs:
                        here = log_index
                        log_index += 1
                        if log.address != want_address:
                            continue
                        log_topics = [t.to_bytes(32, "big") for t in log.topics]
                        if not _topics_match(wanted, log_topics):
                            continue
                        out.append(
                            AttributeDict(
                                {
                                    "address": to_checksum_address(log.address),
                                    "topics": [HexBytes(t) for t in log_topics],
                                    "data": HexBytes(log.data),
                                    "blockNumber": number,
                                    "blockHash": HexBytes(block.hash),
                                    "transactionHash": HexBytes(tx.hash),
                                    "transactionIndex": tx_index,
                                    "logIndex": here,
                                    "removed": False,
                                }
                            )
                        )
        return out

    # -- reads ---------------------------------------------------------------------------
    def block_number(self) -> int:
        """py-evm's canonical head, which is what ``eth_blockNumber`` reports here; read
        directly it costs ~20 us instead of ~1 ms through web3's request middleware (the
        key service reads it on every release)."""
        with self.translating("reading the block number"):
            return int(self._pyevm.chain.get_canonical_head().block_number)

    # -- serialization ------------------------------------------------------------------
    @contextlib.contextmanager
    def translating(self, action: str):
        """As in ChainBackend, holding the lock: py-evm is single-threaded."""
        with self.lock, super().translating(action):
            yield

    # -- clock ----------------------------------------------------------------------------
    def _stamp_pending(self) -> None:
        """Give the pending block the wall-clock time (never less than its parent's + 1):
        py-evm stamps a pending block when the previous one is mined, so on an idle chain a
        transaction or call would otherwise run at a stale ``block.timestamp``."""
        chain = self._pyevm.chain
        parent = int(chain.get_canonical_head().timestamp)
        now = max(int(time.time()), parent + 1, int(chain.header.timestamp))
        if now != chain.header.timestamp:
            chain.header = chain.header.copy(timestamp=now)

    def sync_clock(self, max_lag_s: float) -> bool:
        with self.lock:
            head = int(self._pyevm.chain.get_canonical_head().timestamp)
            if time.time() - head <= max_lag_s:
                return False
            with self.translating("mining a block to bring the chain clock to now"):
                self._stamp_pending()
                self.tester.mine_blocks(1)
            return True

    def send_raw_transaction(self, raw: bytes, *, action: str) -> bytes:
        with self.lock:
            with self.translating(action):
                self._stamp_pending()
            return super().send_raw_transaction(raw, action=action)

    # -- dev chains -----------------------------------------------------------------------
    def advance_time(self, seconds: int) -> int:
        if seconds < 0:
            raise ChainError("the chain clock only moves forward; seconds must be >= 0")
        with self.translating("advancing the embedded chain's clock"):
            chain = self._pyevm.chain
            target = int(chain.get_canonical_head().timestamp) + int(seconds)
            chain.header = chain.header.copy(timestamp=max(target, chain.header.timestamp))
            self.tester.mine_blocks(1)
        return self.block_timestamp("latest")


def _tester_revert_data(exc: BaseException) -> bytes | None:
    """eth-tester reports revert bytes as ``"execution reverted: b'...'"`` (their repr)."""
    data = _revert_data_from(exc)
    if data is not None:
        return data
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause.args and isinstance(cause.args[0], (bytes, bytearray)):
        return bytes(cause.args[0])
    text = str(exc.args[0]) if exc.args else ""
    _, sep, literal = text.partition("execution reverted: ")
    if sep and literal.startswith(("b'", 'b"')):
        try:
            value = ast.literal_eval(literal)
        except (ValueError, SyntaxError):
            return None
        return bytes(value) if isinstance(value, bytes) else None
    return None


def _topic_set(topic) -> list[bytes] | None:
    if topic is None:
        return None
    items = topic if isinstance(topic, (list, tuple)) else [topic]
    return [bytes(HexBytes(t)) for t in items]


def _topics_match(wanted: list, log_topics: list[bytes]) -> bool:
    if len(wanted) > len(log_topics):
        return False
    return all(w is None or log_topics[i] in w for i, w in enumerate(wanted))
