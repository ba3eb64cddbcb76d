"""HTTP load on the API from a second process on loopback: Merkle proofs and key release.

    python bench/api.py            # table on stderr
    python bench/api.py --json     # JSON on stdout

Set-up (not timed): a fresh data dir on embedded defaults (py-evm chain, block store,
SQLite), ``--images`` sample photos registered as one data set, a live on-chain grant for a
grantee. Then ``veilchain serve`` runs in a subprocess (one uvicorn worker) and this process
drives it with ``--connections`` keep-alive HTTP/1.1 connections (a minimal asyncio client,
so the load generator costs little CPU) for ``--seconds`` per endpoint after a warm-up:

- ``GET /datasets/1/versions/1/images/{i}/proof`` (public), i round-robin;
- ``POST /datasets/1/versions/1/images/{i}/key`` as the signed-in grantee (JWT): grant check
  on chain, data-key unwrap, sealed box to an X25519 key, audit entry, per request.

Targets on 2 cores: proof >= 500 req/s with p99 < 50 ms; key release >= 200 req/s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from nacl.public import PrivateKey
from siwe import SiweMessage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the servers the tests use: tests/servers

from tests.servers import free_port, stop_process_group  # noqa: E402
from tests.servers.api import start_api  # noqa: E402
from tests.servers.ganache import start_ganache  # noqa: E402
from tests.servers.postgres import start_postgres  # noqa: E402

SAMPLES = ROOT / "src" / "veilchain" / "data" / "samples"
TARGETS = {"proof": {"req_s": 500, "p99_ms": 50}, "key_release": {"req_s": 200}}


def _env(data_dir: Path, port: int, rpc: str | None, db: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILCHAIN_")}
    env.update(
        VEILCHAIN_ENV="test",
        VEILCHAIN_DATA_DIR=str(data_dir),
        VEILCHAIN_AUTH__DOMAIN=f"127.0.0.1:{port}",
        VEILCHAIN_AUTH__URI=f"http://127.0.0.1:{port}",
        VEILCHAIN_AUTH__LOGIN_RATE_PER_MINUTE="100000",
    )
    if rpc:
        env["VEILCHAIN_CHAIN__RPC_URL"] = rpc
    if db:
        env["VEILCHAIN_DB__URL"] = db
    return env


def prepare(data_dir: Path, images: int, rpc: str | None, db: str | None) -> tuple[int, Account]:
    """Register ``images`` sample photos and grant a fresh grantee; returns (dataset, grantee)."""
    from veilchain.config import Settings
    from veilchain.platform.wiring import build_service

    inputs = data_dir.parent / "inputs"
    inputs.mkdir(exist_ok=True)
    names = ("obama.jpg", "biden.jpg", "obama2.jpg")
    for i in range(images):
        shutil.copy(SAMPLES / names[i % len(names)], inputs / f"{i:04d}.jpg")
    settings = Settings(env="test", data_dir=data_dir, chain={"rpc_url": rpc}, db={"url": db})
    svc = build_service(settings)
    reg = svc.register([inputs], name="bench", method="mask")
    grantee = Account.create()
    svc.grant(reg.dataset_id, grantee.address, expires_at=svc.chain.block_timestamp() + 86400)
    svc.chain.backend.close()
    return reg.dataset_id, grantee


def sign_in(base: str, account) -> str:
    n = httpx.get(f"{base}/auth/nonce").json()
    text = SiweMessage(
        domain=n["domain"],
        address=account.address,
        uri=n["uri"],
        version="1",
        chain_id=n["chain_id"],
        nonce=n["nonce"],
        issued_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    ).prepare_message()
    sig = "0x" + bytes(account.sign_message(encode_defunct(text=text)).signature).hex()
    r = httpx.post(f"{base}/auth/login", json={"message": text, "signature": sig})
    r.raise_for_status()
    return r.json()["access_token"]


# --- a minimal keep-alive HTTP/1.1 load generator ------------------------------------------
async def _connection(port, requests, stop_at, lat, errors, counter) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = counter[0]
    counter[0] += 1
    try:
        while time.perf_counter() < stop_at:
            req = requests[i % len(requests)]
            i += 7
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def _load(port, requests, seconds, connections) -> dict:
    lat: list[float] = []
    errors: list[int] = []
    t0 = time.perf_counter()
    await asyncio.gather(
        *(_connection(port, requests, t0 + seconds, lat, errors, [c]) for c in range(connections))
    )
    wall = time.perf_counter() - t0
    lat.sort()

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else 0.0

    return {
        "requests": len(lat),
        "errors": len(errors),
        "error_statuses": sorted(set(errors)),
        "seconds": round(wall, 2),
        "req_s": round(len(lat) / wall, 1),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(lat[-1] * 1000, 2) if lat else 0.0,
    }


def run_load(port, requests, seconds, connections, warmup) -> dict:
    asyncio.run(_load(port, requests, warmup, connections))
    return asyncio.run(_load(port, requests, seconds, connections))


def _get(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


def _post(port: int, path: str, body: dict, token: str) -> bytes:
    data = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode() + data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="JSON on stdout")
    ap.add_argument("--images", type=int, default=16, help="images in the data set")
    ap.add_argument("--seconds", type=float, default=10.0, help="load per endpoint")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument(
        "--ganache", action="store_true", help="chain: ganache from node_modules, not py-evm"
    )
    ap.add_argument(
        "--postgres",
        action="store_true",
        help="database: a throwaway PostgreSQL (default settings, fsync on), not SQLite",
    )
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="veilchain-bench-api-"))
    data_dir = tmp / "data"
    proc = node = rpc = db = None
    stack = contextlib.ExitStack()
    try:
        if args.ganache:
            node, rpc = start_ganache(tmp / "ganache.log")
        if args.postgres:
            db = stack.enter_context(start_postgres(durable=True))
        t0 = time.perf_counter()
        ds, grantee = prepare(data_dir, args.images, rpc, db)
        setup_s = time.perf_counter() - t0
        port = free_port()
        try:
            proc = start_api(_env(data_dir, port, rpc, db), port, tmp / "api.log", timeout_s=120)
        except RuntimeError as exc:
            raise SystemExit(f"server: {exc}") from exc
        token = sign_in(f"http://127.0.0.1:{port}", grantee)
        pk = base64.b64encode(bytes(PrivateKey.generate().public_key)).decode()
        base = f"/datasets/{ds}/versions/1/images"
        proofs = [_get(port, f"{base}/{i}/proof") for i in range(args.images)]
        keys = [
            _post(port, f"{base}/{i}/key", {"public_key": pk}, token) for i in range(args.images)
        ]
        results = {
            "proof": run_load(port, proofs, args.seconds, args.connections, args.warmup),
            "key_release": run_load(port, keys, args.seconds, args.connections, args.warmup),
        }
    finally:
        for server in (proc, node):
            if server is not None:
                stop_process_group(server)
        stack.close()
        shutil.rmtree(tmp, ignore_errors=True)

    for name, target in TARGETS.items():
        r = results[name]
        r["target"] = target
        r["meets_target"] = (
            r["errors"] == 0
            and r["req_s"] >= target["req_s"]
            and r["p99_ms"] < target.get("p99_ms", float("inf"))
        )
    report = {
        "bench": "api",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "server": "veilchain serve: 1 uvicorn worker, block store, "
        + ("PostgreSQL" if args.postgres else "SQLite")
        + ", chain: "
        + ("ganache (JSON-RPC)" if args.ganache else "embedded py-evm"),
        "client": f"{args.connections} keep-alive connections from a second process (asyncio)",
        "images": args.images,
        "setup_s": round(setup_s, 1),
        "results": results,
    }
    for name, r in results.items():
        print(
            f"{name:12s} {r['req_s']:8.1f} req/s  p50 {r['p50_ms']:6.2f} ms  "
            f"p99 {r['p99_ms']:6.2f} ms  errors {r['errors']}  "
            f"{'meets' if r['meets_target'] else 'MISSES'} target {r['target']}",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
