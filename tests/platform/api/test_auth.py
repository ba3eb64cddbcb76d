"""SIWE sign-in, JWTs, API keys and rate limits against the real contract's roles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from eth_account import Account
from sqlalchemy import update

from tests.factories import bearer, login, sign, siwe_message
from veilchain.platform.auth import AuthNonce, RateLimiter


def _nonce(stack) -> dict:
    r = stack.client.get("/auth/nonce")
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"nonce", "domain", "uri", "chain_id"}
    assert body["domain"] == "testserver" and body["chain_id"] == stack.app.state.ctx.chain_id
    return body


def _login(stack, text: str, signature: str):
    return stack.client.post("/auth/login", json={"message": text, "signature": signature})


def _problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["type"].startswith("https://")
    assert "\n" not in body["detail"]
    return body


def test_login_roles_from_contract(stack):
    for who, role in [("institution", "institution"), ("auditor", "auditor"), ("admin", "admin")]:
        token = login(stack.client, getattr(stack, who))
        me = stack.client.get("/auth/me", headers=bearer(token)).json()
        assert me["address"] == getattr(stack, who).address and role in me["roles"]
    token = login(stack.client, stack.outsider)
    assert stack.client.get("/auth/me", headers=bearer(token)).json()["roles"] == []


def test_replayed_nonce_is_refused(stack):
    acct = Account.create()
    n = _nonce(stack)
    text = siwe_message(n, acct.address)
    assert _login(stack, text, sign(acct, text)).status_code == 200
    body = _problem(_login(stack, text, sign(acct, text)), 401)
    assert "already used" in body["detail"]


def test_expired_nonce_is_refused(stack):
    acct = Account.create()
    n = _nonce(stack)
    with stack.app.state.ctx.session_factory() as s:
        s.execute(
            update(AuthNonce)
            .where(AuthNonce.nonce == n["nonce"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        s.commit()
    text = siwe_message(n, acct.address)
    _problem(_login(stack, text, sign(acct, text)), 401)


def test_nonce_lives_five_minutes(stack):
    n = _nonce(stack)
    left = datetime.fromisoformat(n["expires_at"].replace("Z", "+00:00")) - datetime.now(UTC)
    assert timedelta(minutes=4) < left <= timedelta(minutes=5)


@pytest.mark.parametrize(
    "override, word",
    [
        ({"domain": "evil.example"}, "domain"),
        ({"chain_id": 1}, "chain"),
        ({"expiration_time": "2020-01-01T00:00:00Z"}, "Expired"),
        ({"nonce": "0123456789abcdef0123456789abcdef"}, "nonce"),
    ],
)
def test_bad_messages_are_refused(stack, override, word):
    acct = Account.create()
    text = siwe_message(_nonce(stack), acct.address, **override)
    body = _problem(_login(stack, text, sign(acct, text)), 401)
    assert word.lower() in body["detail"].lower()


def test_wrong_signer_is_refused_and_nonce_survives(stack):
    acct, other = Account.create(), Account.create()
    text = siwe_message(_nonce(stack), acct.address)
    _problem(_login(stack, text, sign(other, text)), 401)
    assert _login(stack, text, sign(acct, text)).status_code == 200


def test_garbage_is_401_not_500(stack):
    _problem(_login(stack, "hello", "0x00"), 401)
    _problem(stack.client.get("/auth/me", headers=bearer("not.a.jwt")), 401)
    r = stack.client.get("/auth/me")
    assert _problem(r, 401) and r.headers["www-authenticate"] == "Bearer"


def test_expired_and_forged_tokens(stack):
    settings = stack.app.state.ctx.settings
    now = datetime.now(UTC)
    claims = {"sub": stack.auditor.address, "iss": "testserver", "iat": now - timedelta(hours=2)}
    expired = jwt.encode({**claims, "exp": now - timedelta(hours=1)}, settings.auth.jwt_secret)
    _problem(stack.client.get("/auth/me", headers=bearer(expired)), 401)
    forged = jwt.encode(
        {**claims, "exp": now + timedelta(hours=1)}, "not-the-secret-at-all-" + "x" * 16
    )
    _problem(stack.client.get("/auth/me", headers=bearer(forged)), 401)


def test_api_keys(stack):
    c = stack.client
    _problem(c.post("/auth/api-keys", json={"name": "x"}, headers=stack.headers("grantee")), 403)
    r = c.post("/auth/api-keys", json={"name": "ingest-1"}, headers=stack.headers("institution"))
    assert r.status_code == 201, r.text
    key = r.json()["api_key"]
    me = c.get("/auth/me", headers={"X-API-Key": key}).json()
    assert me["via"] == "api_key" and "institution" in me["roles"]
    listed = c.get("/auth/api-keys", headers=stack.headers("institution")).json()
    assert key not in str(listed) and listed["count"] >= 1
    with stack.app.state.ctx.session_factory() as s:
        from veilchain.platform.auth import ApiKey

        assert all(key not in (row.key_sha256, row.id) for row in s.query(ApiKey))
    kid = r.json()["id"]
    assert (
        c.delete(f"/auth/api-keys/{kid}", headers=stack.headers("institution")).status_code == 204
    )
    _problem(c.get("/auth/me", headers={"X-API-Key": key}), 401)
    _problem(c.get("/auth/me", headers={"X-API-Key": "vk_nope_nope"}), 401)


def test_rate_limit_answers_429_with_retry_after(stack):
    ctx = stack.app.state.ctx
    saved = ctx.login_limiter, ctx.nonce_limiter
    ctx.login_limiter = ctx.nonce_limiter = RateLimiter(3, window_s=60)
    try:
        codes = [stack.client.get("/auth/nonce").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = stack.client.post("/auth/login", json={"message": "x", "signature": "0x"})
        body = _problem(r, 429)
        assert int(r.headers["retry-after"]) >= 1 and "retry" in body["detail"]
    finally:
        ctx.login_limiter, ctx.nonce_limiter = saved
