"""Gas per image: one Merkle root per data set (VeilRegistry) beside storing every record.

    python bench/gas.py                 # table
    python bench/gas.py --json          # JSON on stdout (the table goes to stderr)
    python bench/gas.py --rpc URL       # the same on a JSON-RPC node (e.g. ganache)

For each size (10, 100, 1,000, 10,000 images) the benchmark sends real transactions on a
fresh VeilRegistry and a fresh baseline contract, and reads ``gasUsed`` from the receipts:

- VeilRegistry: one ``registerDataset`` transaction per data set, whatever its size (a Merkle
  root over real keccak leaves, the record count, a 59-character CIDv1 manifest CID, the
  model hash, method, JSON params and epsilon). Also one ``addVersion``.
- Baseline (contracts/bench/PerRecordRegistry.sol): every image's CID hash and ciphertext
  sha256 stored on chain (two slots and one event per record), sent in batches of
  ``--batch`` records per transaction. 10, 100 and 1,000 are always sent in full; 10,000 is
  extrapolated as 10 x the measured 1,000 (every 100-record batch after the first costs the
  same; one full run measured 483,404,068 gas against 483,557,200 extrapolated, -0.03 %);
  ``--full`` sends all 100 batches instead (minutes on the embedded chain).

Gas is a property of the EVM and the calldata, so the embedded chain and ganache agree to the
gas unit. Gas per image = total gas of the data set's transactions / images.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

from eth_account import Account
from eth_utils import keccak

from veilchain.chain import (
    ChainBackend,
    ChainClient,
    EthTesterBackend,
    JsonRpcBackend,
    build_merkle_tree,
    load_artifact,
)
from veilchain.chain.client import send_transaction

SIZES = [10, 100, 1_000, 10_000]
TARGET_GAS_PER_IMAGE_AT_1000 = 100
MANIFEST_CID = "bafybeidsyc3rx6lmbjml2fg4ucagkjh3kse6tbphoyyhms46fqhmu6ujbi"
PARAMS = '{"method":"dp","block":16,"clip":1.0,"sigma":0.8}'


def _send(
    backend: ChainBackend, account, to: str | None, data: str, what: str, gas: int | None = None
) -> dict:
    """Sign and send; ``gas`` given skips eth_estimateGas (slow on py-evm for big batches)."""
    tx = {"from": account.address, "data": data, "value": 0}
    if to:
        tx["to"] = to
    return send_transaction(backend, account, tx, action=what, gas=gas)


def _leaves(n: int) -> list[bytes]:
    return [keccak(b"\x00veilchain-leaf" + i.to_bytes(8, "big")) for i in range(n)]


def measure_merkle(backend: ChainBackend, account, sizes: list[int]) -> dict:
    client = ChainClient.deploy(backend, account)
    client.add_institution(account.address)
    out = {}
    for n in sizes:
        tree = build_merkle_tree(_leaves(n))
        fields = dict(
            merkle_root=tree.root,
            record_count=n,
            manifest_cid=MANIFEST_CID,
            model_hash=keccak(b"model"),
            method="dp",
            params=PARAMS,
            epsilon_milli=1000,
        )
        ref = client.register_dataset(**fields)
        out[n] = {"transactions": 1, "gas": ref.gas_used, "gas_per_image": ref.gas_used / n}
    ref = client.add_version(1, **fields)
    out["add_version_gas"] = ref.gas_used
    return out


def measure_per_record(
    backend: ChainBackend, account, sizes: list[int], batch: int, extrapolate: bool
) -> dict:
    path = Path(__file__).resolve().parent.parent / "contracts/bench/PerRecordRegistry.json"
    artifact = json.loads(path.read_text())
    receipt = _send(backend, account, None, artifact["bytecode"], "deploying the baseline")
    w3 = backend.w3
    contract = w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
    out = {}
    for dataset_id, n in enumerate(sizes, start=1):
        if extrapolate and n > 1_000 and 1_000 in out:
            base = out[1_000]
            factor = n // 1_000
            out[n] = {
                "transactions": base["transactions"] * factor,
                "gas": base["gas"] * factor,
                "gas_per_image": base["gas_per_image"],
                "extrapolated": f"{factor} x the measured 1,000",
            }
            continue
        total, txs = 0, 0
        for start in range(0, n, batch):
            count = min(batch, n - start)
            cid_hashes = [keccak(f"cid-{dataset_id}-{start + i}".encode()) for i in range(count)]
            digests = [
                hashlib.sha256(f"ct-{dataset_id}-{start + i}".encode()).digest()
                for i in range(count)
            ]
            data = contract.encode_abi("addRecords", args=[dataset_id, cid_hashes, digests])
            receipt = _send(
                backend, account, contract.address, data, "addRecords", gas=count * 60_000 + 200_000
            )
            total += int(receipt["gasUsed"])
            txs += 1
        out[n] = {"transactions": txs, "gas": total, "gas_per_image": total / n}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="JSON on stdout")
    parser.add_argument("--rpc", help="a JSON-RPC node instead of the embedded chain")
    parser.add_argument("--batch", type=int, default=100, help="baseline records per tx")
    parser.add_argument(
        "--full", action="store_true", help="send the baseline's 10,000 records too"
    )
    args = parser.parse_args(argv)

    backend = JsonRpcBackend(args.rpc) if args.rpc else EthTesterBackend(None)
    account = Account.create()
    backend.fund(account.address, 500 * 10**18)
    started = time.perf_counter()
    merkle = measure_merkle(backend, account, SIZES)
    baseline = measure_per_record(backend, account, SIZES, args.batch, not args.full)
    elapsed = time.perf_counter() - started

    rows = []
    for n in SIZES:
        rows.append(
            {
                "images": n,
                "merkle_gas": merkle[n]["gas"],
                "merkle_gas_per_image": round(merkle[n]["gas_per_image"], 2),
                "per_record_gas": baseline[n]["gas"],
                "per_record_gas_per_image": round(baseline[n]["gas_per_image"], 1),
                "per_record_transactions": baseline[n]["transactions"],
                "per_record_method": baseline[n].get("extrapolated", "measured"),
                "ratio": round(baseline[n]["gas"] / merkle[n]["gas"], 1),
            }
        )
    at_1000 = merkle[1_000]["gas_per_image"]
    result = {
        "benchmark": "gas per image",
        "chain": getattr(backend, "client_version", "embedded py-evm (eth-tester)"),
        "compiler": load_artifact()["compiler"]["version"],
        "settings": load_artifact()["settings"],
        "baseline_batch": args.batch,
        "rows": rows,
        "add_version_gas": merkle["add_version_gas"],
        "target": {
            "gas_per_image_at_1000_max": TARGET_GAS_PER_IMAGE_AT_1000,
            "measured": round(at_1000, 2),
            "met": at_1000 <= TARGET_GAS_PER_IMAGE_AT_1000,
        },
        "python": platform.python_version(),
        "elapsed_s": round(elapsed, 1),
    }
    _table(result, file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(result, indent=2))
    backend.close()
    return 0


def _table(result: dict, file) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Gas per image on {result['chain']}")
    for col in ("images", "Merkle root: gas", "gas/image", "per record: gas", "gas/image",
                "txs", "how", "x more"):  # fmt: skip
        table.add_column(col, justify="right")
    for r in result["rows"]:
        table.add_row(
            f"{r['images']:,}",
            f"{r['merkle_gas']:,}",
            f"{r['merkle_gas_per_image']:,.2f}",
            f"{r['per_record_gas']:,}",
            f"{r['per_record_gas_per_image']:,.1f}",
            str(r["per_record_transactions"]),
            r["per_record_method"],
            f"{r['ratio']:,.1f}",
        )
    console = Console(file=file, width=120)
    console.print(table)
    t = result["target"]
    console.print(
        f"target <= {t['gas_per_image_at_1000_max']} gas/image at 1,000: "
        f"{t['measured']} -> {'met' if t['met'] else 'NOT met'}; "
        f"addVersion {result['add_version_gas']:,} gas; {result['elapsed_s']} s"
    )


if __name__ == "__main__":
    sys.exit(main())
