"""The API on 127.0.0.1: ``veilchain serve`` in a subprocess (the stack test and
bench/api.py), or an app object served by uvicorn in a thread of the test process."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
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


@contextlib.contextmanager
def serve_in_thread(app, port: int, timeout_s: float = 60) -> Iterator[None]:
    """Serve ``app`` on 127.0.0.1:``port`` by uvicorn in a daemon thread while the block runs."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port}")
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)
