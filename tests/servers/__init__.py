"""Real servers for the tests (ganache, js-ipfs, PostgreSQL), each started on 127.0.0.1 by
its module's session fixture, plus the few helpers they share."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process_group(proc: subprocess.Popen, timeout_s: float = 15) -> None:
    """SIGTERM a server started in its own process group, SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout_s)


def start_server(
    name: str,
    cmd: list[str],
    log: Path,
    ready: Callable[[], bool],
    timeout_s: float,
    env: dict | None = None,
) -> subprocess.Popen:
    """Start ``cmd`` in its own process group, output appended to ``log``; return once
    ``ready()`` is true. RuntimeError with the log's tail if it exits or is not ready in time
    (then it is stopped)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}: {log_tail(log)}")
        if ready():
            return proc
        time.sleep(0.25)
    stop_process_group(proc)
    raise RuntimeError(f"{name} not ready in {timeout_s:.0f} s: {log_tail(log)}")


def log_tail(log: Path, lines: int = 8) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return " | ".join(text.strip().splitlines()[-lines:])


def server_missing(message: str) -> None:
    """Skip locally; fail in CI, where .ci/run must have installed every server."""
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
