"""CID computation throughput beside raw sha256, measured in the same run.

    python bench/cid.py            # table
    python bench/cid.py --json     # JSON on stdout (the table goes to stderr)

Sizes: a 50 KB image-sized blob (one raw leaf) and a 100 MB blob (382 raw leaves, three
174-link nodes under a root: a two-level DAG). Measurements are interleaved round by
round (sha256, compute_cid, compute_cid_file, ...) so that a busy shared CPU hits them
alike; each figure is the median over rounds, and ``cid_vs_sha256`` is the median of the
per-round ratios. The embedded block store is timed at 50 KB: ``add`` of new content
(fsynced), ``add_many`` with 8 workers, and a verified ``cat``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from veilchain.platform.storage import (
    BlockStoreBackend,
    IpfsStorage,
    compute_cid,
    compute_cid_file,
)

SIZES = {"50KB": 50_000, "100MB": 100_000_000}
BATCH = 64


def _ops_per_s(fn: Callable[[], int], min_time: float) -> float:
    """Operations per second of ``fn`` (which returns how many operations it did)."""
    count, start = 0, time.perf_counter()
    while True:
        count += fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return count / elapsed


def _once(fn: Callable[[], object]) -> Callable[[], int]:
    def run() -> int:
        fn()
        return 1

    return run


def _measure(cases: dict[str, Callable[[], int]], nbytes: int, rounds: int, min_time: float):
    for fn in cases.values():
        fn()  # warm up
    per_round: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            per_round[name].append(_ops_per_s(fn, min_time))
    rates = {
        name: {
            "mb_per_s": round(statistics.median(ops) * nbytes / 1e6, 1),
            "ops_per_s": round(statistics.median(ops), 1),
        }
        for name, ops in per_round.items()
    }
    return rates, per_round


def run(rounds: int, min_time: float) -> dict:
    results: dict = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "rounds": rounds,
        "min_time_s": min_time,
        "sizes": {},
    }
    counter = itertools.count()
    for label, size in SIZES.items():
        data = os.urandom(size)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "blob"
            path.write_bytes(data)
            cases = {
                "sha256": _once(lambda d=data: hashlib.sha256(d).digest()),
                "compute_cid": _once(lambda d=data: compute_cid(d)),
                "compute_cid_file": _once(lambda p=path: compute_cid_file(p)),
            }
            if size <= 1_000_000:
                storage = IpfsStorage(BlockStoreBackend(Path(tmp) / "ipfs"))
                stored = storage.add(data)

                def fresh(d: bytes = data) -> bytes:
                    return next(counter).to_bytes(8, "big") + d[8:]

                def add_many(s: IpfsStorage = storage) -> int:
                    return len(s.add_many([fresh() for _ in range(BATCH)]))

                cases["blockstore_add"] = _once(lambda s=storage: s.add(fresh()))
                cases["blockstore_add_many"] = add_many
                cases["blockstore_cat"] = _once(lambda s=storage, c=stored: s.cat(c))
            rates, per_round = _measure(cases, size, rounds, min_time)
        ratios = [c / s for c, s in zip(per_round["compute_cid"], per_round["sha256"], strict=True)]
        results["sizes"][label] = {
            "bytes": size,
            **rates,
            "cid_vs_sha256": round(statistics.median(ratios), 3),
        }
    return results


def _table(results: dict) -> str:
    rows = [("input", "measure", "MB/s", "ops/s", "vs sha256")]
    for label, entry in results["sizes"].items():
        base = entry["sha256"]["mb_per_s"]
        for key, rate in entry.items():
            if isinstance(rate, dict):
                ratio = entry["cid_vs_sha256"] if key == "compute_cid" else rate["mb_per_s"] / base
                cells = (f"{rate['mb_per_s']:.1f}", f"{rate['ops_per_s']:.1f}", f"{ratio:.3f}")
                rows.append((label, key, *cells))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds per measurement")
    args = parser.parse_args(argv)
    results = run(args.rounds, args.min_time)
    table = _table(results)
    if args.json:
        print(table, file=sys.stderr)
        print(json.dumps(results, indent=2))
    else:
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
