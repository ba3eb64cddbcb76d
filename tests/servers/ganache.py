"""Pytest fixtures that start a real ganache on 127.0.0.1 for the integration tests.

``ganache_url`` is one ganache (npm ``ganache@7.9.2`` from node_modules, deterministic
wallet, chain id 1337, instamine) per test session on a free loopback port; the fixture stops
it at the end. ``start_ganache()`` starts another one (e.g. to test a node going away).
Locally the tests that need it skip when node_modules/ganache is missing; with ``CI`` set they
fail instead.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port, server_missing, start_server, stop_process_group

ROOT = Path(__file__).resolve().parents[2]
GANACHE_CLI = ROOT / "node_modules" / "ganache" / "dist" / "node" / "cli.js"
START_TIMEOUT_S = 60


def _rpc_ready(url: str) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return "result" in json.loads(response.read())
    except (OSError, ValueError):
        return False


def start_ganache(log: Path, *extra_args: str) -> tuple[subprocess.Popen, str]:
    """Start ganache on a free 127.0.0.1 port; returns (process, http url) once it answers.
    ``extra_args`` go to ganache's command line (e.g. ``--miner.blockTime=3``)."""
    port = free_port()
    cmd = [
        "node",
        str(GANACHE_CLI),
        "--server.host",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--wallet.deterministic",
        # every data directory's roles are funded from account 0 (100 ETH each): the default
        # 1,000 ETH ran out once a session registered a few data sets
        "--wallet.defaultBalance",
        "10000000",
        "--logging.quiet",
        "--chain.chainId",
        "1337",
        *extra_args,
    ]
    url = f"http://127.0.0.1:{port}"
    proc = start_server("ganache", cmd, log, lambda: _rpc_ready(url), START_TIMEOUT_S)
    return proc, url


def require_ganache() -> None:
    """Skip (locally) or fail (CI) when ganache or node is not installed."""
    missing = [] if GANACHE_CLI.exists() else [str(GANACHE_CLI)]
    if shutil.which("node") is None:
        missing.append("node on PATH")
    if not missing:
        return
    message = f"ganache is not installed ({', '.join(missing)}); run `make install`"
    server_missing(message)


@pytest.fixture(scope="session")
def ganache_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The HTTP URL of a ganache node running for the whole test session."""
    require_ganache()
    log = tmp_path_factory.mktemp("ganache") / "ganache.log"
    proc, url = start_ganache(log)
    try:
        yield url
    finally:
        stop_process_group(proc)
