"""The embedded chain persisted on disk: across processes, under SIGKILL, one process at a time."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.factories import named_account
from veilchain.chain import ChainClient, EthTesterBackend
from veilchain.errors import ChainUnavailableError

ROOT = Path(__file__).resolve().parents[2]

# Opens the chain in argv[1], deploys (once; address kept in argv[1]/registry.txt), appoints
# the institution, then registers data sets and grants forever, printing each returned tx.
_WORKER = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from eth_account import Account
    from eth_utils import keccak
    from veilchain.chain import ChainClient, EthTesterBackend

    path = Path(sys.argv[1])
    limit = int(sys.argv[2])
    admin = Account.from_key(keccak(text="veilchain-test-admin"))
    inst = Account.from_key(keccak(text="veilchain-test-institution"))
    backend = EthTesterBackend(path)
    marker = path / "registry.txt"
    if marker.exists():
        client = ChainClient.at(backend, marker.read_text().strip(), admin)
    else:
        for acct in (admin, inst):
            backend.fund(acct.address, 10**20)
        client = ChainClient.deploy(backend, admin)
        client.add_institution(inst.address)
        marker.write_text(client.address)
    print(json.dumps({"address": client.address}), flush=True)
    ci = client.with_account(inst)
    for i in range(limit):
        root = os.urandom(32)
        ref = ci.register_dataset(merkle_root=root, record_count=i + 1, manifest_cid=f"cid{i}",
                                  model_hash=keccak(text=str(i)), method="blur", params="{}",
                                  epsilon_milli=0)
        print(json.dumps({"tx": ref.tx_hash, "id": ref.dataset_id, "root": root.hex()}),
              flush=True)
        tx = ci.grant_access(ref.dataset_id, admin.address, 2**40)
        print(json.dumps({"tx": tx.tx_hash}), flush=True)
    backend.close()
    """
)


def _python(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _check_chain(path: Path, records: list[dict]) -> int:
    """Reopen the chain and check every reported tx and data set; returns the head block."""
    backend = EthTesterBackend(path)
    try:
        address = (path / "registry.txt").read_text().strip()
        client = ChainClient.at(backend, address, named_account("admin"))
        head = backend.block_number()
        parent = backend.get_block(0)["hash"]
        for n in range(1, head + 1):  # the stored blocks form one linked chain
            block = backend.get_block(n)
            assert block["parentHash"] == parent, n
            parent = block["hash"]
        for rec in records:
            receipt = backend.wait_for_receipt(bytes.fromhex(rec["tx"][2:]), action="t", timeout=1)
            assert receipt["status"] == 1
            if "id" in rec:
                version = client.get_version(rec["id"], 1)
                assert version.merkle_root.hex() == rec["root"]
        assert client.dataset_count() >= sum(1 for r in records if "id" in r)
        return head
    finally:
        backend.close()


def test_register_in_one_process_read_in_another(tmp_path: Path) -> None:
    chain_dir = tmp_path / "chain"
    first = _python("-c", _WORKER, str(chain_dir), "2")
    assert first.returncode == 0, first.stderr[-2000:]
    lines = [json.loads(x) for x in first.stdout.splitlines()]
    registered = [x for x in lines if "id" in x]
    assert [x["id"] for x in registered] == [1, 2]
    read = textwrap.dedent(
        """
        import sys, json
        from pathlib import Path
        from eth_account import Account
        from veilchain.chain import ChainClient, EthTesterBackend
        path = Path(sys.argv[1])
        backend = EthTesterBackend(path)
        client = ChainClient.at(backend, (path / "registry.txt").read_text(), Account.create())
        v = client.get_version(2, 1)
        print(json.dumps({"count": client.dataset_count(), "root": v.merkle_root.hex(),
                          "cid": v.manifest_cid, "tx": v.tx_hash,
                          "access": client.has_access(2, client.admin())}))
        """
    )
    second = _python("-c", read, str(chain_dir))
    assert second.returncode == 0, second.stderr[-2000:]
    got = json.loads(second.stdout)
    assert got == {
        "count": 2,
        "root": registered[1]["root"],
        "cid": "cid1",
        "tx": registered[1]["tx"],
        "access": True,
    }
    # A third process continues the same chain.
    third = _python("-c", _WORKER, str(chain_dir), "1")
    assert third.returncode == 0, third.stderr[-2000:]
    assert [json.loads(x).get("id") for x in third.stdout.splitlines()][1] == 3


@pytest.mark.slow
def test_sigkill_mid_stream_never_loses_a_returned_transaction(tmp_path: Path) -> None:
    chain_dir = tmp_path / "chain"
    rng = random.Random(20261121)
    records: list[dict] = []
    last_head = -1
    for round_ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(chain_dir), "1000"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        want = rng.randint(2, 12)
        got = 0
        try:
            while got < want:
                line = proc.stdout.readline()
                assert line, f"worker died early: {proc.stderr.read()[-2000:]}"
                rec = json.loads(line)
                if "tx" in rec:
                    records.append(rec)
                    got += 1
            time.sleep(rng.uniform(0, 0.08))  # land anywhere inside the next transaction
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        # Whatever the worker printed before dying is complete: drain it too.
        for line in proc.stdout.read().splitlines():
            rec = json.loads(line)
            if "tx" in rec:
                records.append(rec)
        proc.stdout.close()
        proc.stderr.close()
        head = _check_chain(chain_dir, records)
        assert head >= last_head, f"round {round_}: the chain went back from {last_head} to {head}"
        last_head = head
    assert len(records) >= 10


def test_second_process_is_refused_while_the_chain_is_open(tmp_path: Path) -> None:
    chain_dir = tmp_path / "chain"
    backend = EthTesterBackend(chain_dir)
    try:
        code = (
            "import sys; from pathlib import Path\n"
            "from veilchain.chain import EthTesterBackend\n"
            "from veilchain.errors import ChainUnavailableError\n"
            "try:\n"
            "    EthTesterBackend(Path(sys.argv[1]), lock_timeout_s=0.3)\n"
            "except ChainUnavailableError as exc:\n"
            "    print(exc)\n"
        )
        out = _python("-c", code, str(chain_dir))
        assert "in use by another process" in out.stdout, out.stderr[-2000:]
        assert str(chain_dir) in out.stdout
    finally:
        backend.close()
    EthTesterBackend(chain_dir, lock_timeout_s=0.3).close()  # free again after close


def test_reopen_keeps_clock_balances_and_old_receipts(tmp_path: Path) -> None:
    chain_dir = tmp_path / "chain"
    who = named_account("persisted")
    backend = EthTesterBackend(chain_dir)
    backend.fund(who.address, 12345)
    first_tx = backend.w3.eth.get_block(1)["transactions"][0]
    for _ in range(30):
        backend.advance_time(60)
    stamp, head = backend.block_timestamp(), backend.block_number()
    backend.close()

    reopened = EthTesterBackend(chain_dir)
    try:
        assert reopened.block_number() == head
        assert reopened.block_timestamp() == stamp
        assert reopened.get_balance(who.address) == 12345
        receipt = reopened.wait_for_receipt(bytes(first_tx), action="lookup", timeout=1)
        assert receipt["blockNumber"] == 1 and receipt["status"] == 1
        reopened.fund(who.address, 1)  # the prefunded dev account still works
        assert reopened.block_number() == head + 1
        assert reopened.block_timestamp() > stamp
    finally:
        reopened.close()


def test_unopenable_database_is_chain_unavailable(tmp_path: Path) -> None:
    chain_dir = tmp_path / "chain"
    chain_dir.mkdir()
    (chain_dir / "chain.sqlite3").write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(ChainUnavailableError, match="cannot open the embedded chain"):
        EthTesterBackend(chain_dir)


def test_block_number_is_what_eth_block_number_reports(tmp_path: Path) -> None:
    backend = EthTesterBackend(tmp_path / "chain")
    try:
        for _ in range(3):
            assert backend.block_number() == backend.w3.eth.block_number
            backend.fund(named_account("head").address, 1)  # auto-mines one block
        assert backend.block_number() == backend.w3.eth.block_number == 3
    finally:
        backend.close()
