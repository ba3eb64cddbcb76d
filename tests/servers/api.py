"""``veilchain serve`` in a subprocess on 127.0.0.1 (the stack test and bench/api.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx


def start_api(env: dict, port: int, log: Path, timeout_s: float = 180) -> subprocess.Popen:
    """Start the API in its own process group, output appended to ``log``; return once
    ``/healthz`` answers 200. RuntimeError (with the log's tail) if it exits or never answers."""
    cmd = [sys.executable, "-m", "veilchain.cli", "serve", "--host", "127.0.0.1"]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*cmd, "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"API exited: {log.read_text()[-3000:]}")
        time.sleep(0.3)
    raise RuntimeError(f"API did not start in {timeout_s:.0f} s: {log.read_text()[-3000:]}")
