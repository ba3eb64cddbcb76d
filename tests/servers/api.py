"""``veilchain serve`` in a subprocess on 127.0.0.1 (the stack test and bench/api.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.servers import start_server


def start_api(env: dict, port: int, log: Path, timeout_s: float = 180) -> subprocess.Popen:
    """Start the API in its own process group, output appended to ``log``; return once
    ``/healthz`` answers 200. RuntimeError (with the log's tail) if it exits or never answers."""
    cmd = [sys.executable, "-m", "veilchain.cli", "serve", "--host", "127.0.0.1"]

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return start_server("API", [*cmd, "--port", str(port)], log, healthy, timeout_s, env=env)
