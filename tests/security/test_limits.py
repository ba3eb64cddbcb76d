"""Finding 6: an unauthenticated 1 GB upload was spooled to disk before its 401, and three
300 MB JSON bodies sent to /auth/login raised memory by 1.7 GB before their 422. The attack:
stream a 1 GB body at the real `veilchain serve` and measure its disk and memory."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.security.test_api_exactly_once import _env, _login
from tests.servers import free_port, stop_process_group
from tests.servers.api import start_api

GB = 1_000_000_000
CHUNK = b"\0" * (1 << 20)
BOUNDARY = "veilchainboundary"


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def _du(*dirs: Path) -> int:
    return sum(f.stat().st_size for d in dirs if d.exists() for f in d.rglob("*") if f.is_file())


def _attack(
    port: int, path: str, headers: dict, *, chunked: bool, budget_s: float = 8
) -> tuple[int, int]:
    """Send up to 1 GB as the body; return (status, bytes the server let us send)."""
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {GB}")
    sock = socket.create_connection(("127.0.0.1", port), timeout=budget_s)
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sock.setblocking(False)
    sent, reply, deadline = 0, b"", time.monotonic() + budget_s
    try:
        while sent < GB and time.monotonic() < deadline:
            try:
                reply += sock.recv(65536)
                if b"\r\n\r\n" in reply:
                    break
            except BlockingIOError:
                pass
            data = (b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n") if chunked else CHUNK
            try:
                sent += sock.send(data)
            except BlockingIOError:
                time.sleep(0.005)
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        sock.settimeout(budget_s)
        while b"\r\n\r\n" not in reply:
            more = sock.recv(65536)
            if not more:
                break
            reply += more
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 "), reply[:200]
    return int(reply.split()[1]), sent


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("limits")
    port = free_port()
    env = {**_env(root / "data", port), "TMPDIR": str(root / "tmp")}
    (root / "tmp").mkdir()
    proc = start_api(env, port, root / "api.log")
    yield proc, port, root
    stop_process_group(proc)


@pytest.mark.slow
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_unauthenticated_1gb_upload_costs_under_10mb(server, chunked) -> None:
    proc, port, root = server
    disk_before = _du(root / "data", root / "tmp")
    rss_before = _kib(proc.pid, "VmRSS")
    Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # reset the peak (VmHWM)
    t0 = time.monotonic()
    ctype = f"multipart/form-data; boundary={BOUNDARY}"
    status, sent = _attack(port, "/datasets", {"Content-Type": ctype}, chunked=chunked)
    elapsed = time.monotonic() - t0
    disk = _du(root / "data", root / "tmp") - disk_before
    memory = (_kib(proc.pid, "VmHWM") - rss_before) * 1024
    print(f"\n1 GB {'chunked' if chunked else 'Content-Length'} upload: {status} after "
          f"{elapsed:.2f} s, {sent / 1e6:.1f} MB accepted by the socket, "
          f"disk +{disk / 1e6:.2f} MB, "
          f"peak memory +{memory / 1e6:.2f} MB")  # fmt: skip
    assert status == 401
    assert disk < 10_000_000 and memory < 10_000_000
    assert elapsed < 5


@pytest.mark.slow
def test_signed_in_non_institution_upload_is_403_before_the_body(server) -> None:
    from eth_account import Account

    proc, port, root = server
    h = _login(f"http://127.0.0.1:{port}", Account.create())
    ctype = f"multipart/form-data; boundary={BOUNDARY}"
    status, _ = _attack(port, "/datasets", {"Content-Type": ctype, **h}, chunked=False)
    assert status == 403


@pytest.mark.slow
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_huge_json_login_is_413_within_bounded_memory(server, chunked) -> None:
    proc, port, root = server
    rss_before = _kib(proc.pid, "VmRSS")
    Path(f"/proc/{proc.pid}/clear_refs").write_text("5")
    headers = {"Content-Type": "application/json"}
    status, sent = _attack(port, "/auth/login", headers, chunked=chunked)
    memory = (_kib(proc.pid, "VmHWM") - rss_before) * 1024
    print(f"\n1 GB JSON login ({'chunked' if chunked else 'Content-Length'}): {status}, "
          f"peak memory +{memory / 1e6:.2f} MB")  # fmt: skip
    assert status == 413
    assert memory < 10_000_000


@pytest.mark.slow
def test_every_json_route_has_a_body_limit(server) -> None:
    import httpx

    proc, port, root = server
    base = f"http://127.0.0.1:{port}"
    from tests.security.test_api_exactly_once import _institution

    h = _login(base, _institution(root / "data"))
    big = b'{"grantee": "' + b"a" * 200_000 + b'"}'
    r = httpx.post(f"{base}/datasets/1/grants", content=big,
                   headers={**h, "Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 413 and "limit" in r.json()["detail"]
