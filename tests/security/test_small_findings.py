"""Finding 7, the smaller ones: each attack against the real app, refused."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.factories import SAMPLES, sign, siwe_message
from veilchain.platform.audit_entries import AuditEvent

ROOT = Path(__file__).resolve().parents[2]
KEY = base64.b64encode(bytes(range(32))).decode()
REG = ["register", str(SAMPLES / "obama.jpg"), "--name", "x"]


def _one_line_problem(r, status: int) -> str:
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert "\n" not in detail and "Traceback" not in r.text
    return detail


# --- a 65-byte signature that recovers no key -------------------------------------------
def test_signature_recovering_no_key_is_401(stack) -> None:
    n = stack.client.get("/auth/nonce").json()
    text = siwe_message(n, stack.grantee.address)
    bad = "0x" + "00" * 64 + "1b"  # r = s = 0: no public key recovers from it
    r = stack.client.post("/auth/login", json={"message": text, "signature": bad})
    _one_line_problem(r, 401)
    assert stack.client.get("/healthz").status_code == 200


# --- SIWE URI and Issued-At -------------------------------------------------------------
def test_siwe_with_another_uri_is_401(stack) -> None:
    n = stack.client.get("/auth/nonce").json()
    text = siwe_message(n, stack.grantee.address, uri="https://evil.example/")
    r = stack.client.post(
        "/auth/login", json={"message": text, "signature": sign(stack.grantee, text)}
    )
    assert "URI" in _one_line_problem(r, 401)


def test_siwe_issued_a_year_ahead_is_401(stack) -> None:
    n = stack.client.get("/auth/nonce").json()
    ahead = (datetime.now(UTC) + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = siwe_message(n, stack.grantee.address, issued_at=ahead)
    r = stack.client.post(
        "/auth/login", json={"message": text, "signature": sign(stack.grantee, text)}
    )
    assert "future" in _one_line_problem(r, 401)


# --- refused key requests are rate-limited per account ----------------------------------
def test_refused_key_requests_are_rate_limited_per_account(stack, dataset) -> None:
    url = f"/datasets/{dataset['dataset_id']}/versions/{dataset['version']}/images/0/key"
    h = stack.headers("outsider")
    limit = stack.app.state.ctx.settings.auth.refusal_rate_per_minute

    def refusals() -> int:
        rows = stack.service.audit.query(
            event=AuditEvent.REFUSAL, subject=None, since_seq=0, limit=10_000
        )
        return sum(1 for r in rows if r.actor == stack.outsider.address)

    before = refusals()
    statuses = [
        stack.client.post(url, json={"public_key": KEY}, headers=h).status_code
        for _ in range(limit + 30)
    ]
    assert statuses[:limit] == [403] * limit and set(statuses[limit:]) == {429}
    assert refusals() - before == limit  # no audit row (nor chain read) past the limit
    # another account is not affected
    other = stack.client.post(url, json={"public_key": KEY}, headers=stack.headers("auditor"))
    assert other.status_code == 403


# --- epsilon, seed and expiry bounds ----------------------------------------------------
@pytest.mark.parametrize(
    "method,params",
    [
        ("dp", '{"epsilon": 1e300}'),
        ("dp", '{"epsilon": 1e-300}'),
        ("blur", '{"seed": 18446744073709551616}'),
        ("blur", '{"seed": 2147483648}'),
    ],
)
def test_out_of_range_parameters_are_422_before_any_work(stack, method, params) -> None:
    files = [("files", ("a.jpg", (SAMPLES / "obama.jpg").read_bytes(), "image/jpeg"))]
    r = stack.client.post("/datasets", data={"name": "x", "method": method, "params": params},
                          files=files, headers=stack.headers("institution"))  # fmt: skip
    _one_line_problem(r, 422)


def test_grant_in_year_9999_is_422(stack, dataset) -> None:
    r = stack.client.post(
        f"/datasets/{dataset['dataset_id']}/grants",
        json={"grantee": "0x" + "ef" * 20, "expires_at": "9999-12-31T00:00:00Z"},
        headers=stack.headers("institution"),
    )
    assert "10 years" in _one_line_problem(r, 422)


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILCHAIN_")}
    env.update(VEILCHAIN_DATA_DIR=str(data_dir), VEILCHAIN_ENV="test", PYTHONWARNINGS="ignore",
               PYTHONPATH=str(ROOT / "src"))  # fmt: skip
    return subprocess.run([sys.executable, "-m", "veilchain.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        [*REG, "--method", "dp", "--epsilon", "1e300"],
        [*REG, "--method", "dp", "--epsilon", "1e-300"],
        [*REG, "--method", "blur", "--seed", str(2**64)],
        ["grant", "1", "--to", "0x" + "ef" * 20, "--days", "3000000"],
    ],
)
def test_cli_out_of_range_exits_2_in_one_line(tmp_path, args) -> None:
    r = _cli(tmp_path, *args)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr


# --- proxies are trusted only where configured -----------------------------------------
@pytest.mark.slow
def test_forged_x_forwarded_for_from_loopback_does_not_bypass_rate_limits(tmp_path) -> None:
    from tests.security.test_api_exactly_once import _env
    from tests.servers import free_port, stop_process_group
    from tests.servers.api import start_api

    port = free_port()
    env = {**_env(tmp_path / "data", port), "VEILCHAIN_AUTH__LOGIN_RATE_PER_MINUTE": "3"}
    proc = start_api(env, port, tmp_path / "api.log")
    try:
        base = f"http://127.0.0.1:{port}"
        statuses = [
            httpx.get(f"{base}/auth/nonce", headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code
            for i in range(12)
        ]
    finally:
        stop_process_group(proc)
    assert 429 in statuses, statuses  # nonce limit 2 x 3 per minute per client


# --- dashboard headers ------------------------------------------------------------------
def test_dashboard_sends_csp_frame_and_referrer_headers(stack) -> None:
    r = stack.client.get("/dashboard/")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    api = stack.client.get("/healthz")
    assert api.headers["x-frame-options"] == "DENY"
