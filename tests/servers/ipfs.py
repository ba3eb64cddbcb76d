"""Pytest fixtures that start a real ipfs on 127.0.0.1 for the integration tests.

One js-ipfs daemon (npm ``ipfs``, installed by ``make install`` into node_modules) per test
session: a fresh repo in a temp dir (``init --profile test --empty-repo``), the API on a free
loopback port, no swarm, no bootstrap, ``daemon --offline``. Locally the tests that need it
skip when node_modules/ipfs is missing; with ``CI`` set they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import free_port, server_missing, start_server, stop_process_group

ROOT = Path(__file__).resolve().parents[2]
JSIPFS_CLI = ROOT / "node_modules" / "ipfs" / "src" / "cli.js"
POLYFILL = ROOT / "scripts" / "ipfs_polyfill.cjs"
START_TIMEOUT_S = 120


@dataclass(frozen=True)
class IpfsDaemon:
    api_addr: str  # multiaddr, e.g. /ip4/127.0.0.1/tcp/40123
    repo: Path
    pid: int


def _jsipfs(*args: str) -> list[str]:
    return ["node", "--require", str(POLYFILL), str(JSIPFS_CLI), *args]


def start_jsipfs(repo: Path) -> tuple[subprocess.Popen, str, Path]:
    """Init a js-ipfs repo at ``repo``, start its daemon offline, return (process, api, log)."""
    env = {**os.environ, "IPFS_PATH": str(repo)}
    subprocess.run(
        _jsipfs("init", "--profile", "test", "--empty-repo"),
        env=env,
        check=True,
        capture_output=True,
        timeout=START_TIMEOUT_S,
    )
    port = free_port()
    api = f"/ip4/127.0.0.1/tcp/{port}"
    config_path = repo / "config"
    config = json.loads(config_path.read_text())
    config["Addresses"].update(API=api, Swarm=[], Gateway="", RPC="")
    config["Bootstrap"] = []
    config_path.write_text(json.dumps(config, indent=2))

    log = repo / "daemon.log"
    proc = start_server(
        "js-ipfs daemon",
        _jsipfs("daemon", "--offline"),
        log,
        lambda: "Daemon is ready" in log.read_text(errors="replace"),
        START_TIMEOUT_S,
        env=env,
    )
    return proc, api, log


def _require_jsipfs() -> None:
    missing = [str(p) for p in (JSIPFS_CLI, POLYFILL) if not p.exists()]
    if shutil.which("node") is None:
        missing.append("node on PATH")
    if not missing:
        return
    message = f"js-ipfs is not installed ({', '.join(missing)}); run `make install`"
    server_missing(message)


@pytest.fixture(scope="session")
def ipfs_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IpfsDaemon]:
    """A js-ipfs daemon for the whole session, on a free 127.0.0.1 port, offline."""
    _require_jsipfs()
    repo = tmp_path_factory.mktemp("jsipfs")
    proc, api, _ = start_jsipfs(repo)
    try:
        yield IpfsDaemon(api_addr=api, repo=repo, pid=proc.pid)
    finally:
        stop_process_group(proc)


@pytest.fixture(scope="session")
def ipfs_api_addr(ipfs_daemon: IpfsDaemon) -> str:
    """The API multiaddr of the session's js-ipfs daemon."""
    return ipfs_daemon.api_addr
