"""Auth pieces without HTTP: per-block role cache, token verifier cache, lazy principal roles."""

from __future__ import annotations

import threading
import time

import pytest

from veilchain.errors import AuthenticationError
from veilchain.platform import auth

SECRET = "s" * 32
ADDR = "0x" + "ab" * 20


class _Chain:
    """roles_of/block_number stand-ins that count calls and can hold a call open."""

    def __init__(self) -> None:
        self.block = 7
        self.roles = {"auditor"}
        self.calls: list[tuple[str, int]] = []
        self.gate = threading.Event()
        self.gate.set()

    def roles_of(self, address: str, *, block: int) -> set[str]:
        self.calls.append((address, block))
        self.gate.wait(5)
        return set(self.roles)

    def block_number(self) -> int:
        return self.block


def test_roles_are_cached_per_block_and_pinned_to_it() -> None:
    chain = _Chain()
    resolve = auth.RoleResolver(chain.roles_of, chain.block_number)
    assert resolve(ADDR) == {"auditor"} and resolve(ADDR) == {"auditor"}
    assert chain.calls == [(ADDR, 7)]
    chain.roles, chain.block = set(), 8  # revoked in block 8: the next lookup sees it
    assert resolve(ADDR) == frozenset()
    assert chain.calls == [(ADDR, 7), (ADDR, 8)]


def test_concurrent_misses_make_one_contract_read() -> None:
    chain = _Chain()
    chain.gate.clear()
    resolve = auth.RoleResolver(chain.roles_of, chain.block_number)
    results: list[frozenset[str]] = []
    threads = [threading.Thread(target=lambda: results.append(resolve(ADDR))) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    chain.gate.set()
    for t in threads:
        t.join(5)
    assert results == [frozenset({"auditor"})] * 8
    assert chain.calls == [(ADDR, 7)]


def test_a_failed_role_read_fails_its_waiters_and_is_not_cached() -> None:
    chain = _Chain()
    resolve = auth.RoleResolver(lambda a, *, block: 1 / 0, chain.block_number)
    with pytest.raises(ZeroDivisionError):
        resolve(ADDR)
    resolve = auth.RoleResolver(chain.roles_of, chain.block_number)
    assert resolve(ADDR) == {"auditor"}


def test_principal_reads_roles_only_when_asked() -> None:
    asked: list[str] = []
    user = auth.Principal(ADDR, resolve=lambda a: asked.append(a) or frozenset({"admin"}))
    assert asked == [] and user.address == ADDR and user.via == "jwt"
    assert user.has("admin") and user.roles == {"admin"}
    assert asked == [ADDR]  # read once per principal
    assert auth.Principal(ADDR, roles=["auditor"]).has("auditor")
    assert auth.Principal(ADDR).roles == frozenset()


def test_token_verifier_caches_valid_tokens_and_rechecks_expiry(monkeypatch) -> None:
    verify = auth.TokenVerifier(secret=SECRET, issuer="x", size=2)
    token = auth.issue_token(address=ADDR, secret=SECRET, ttl_s=60, issuer="x")
    assert verify(token) == auth.decode_token(token, secret=SECRET, issuer="x")
    decoded: list[str] = []
    real = auth._decode
    monkeypatch.setattr(auth, "_decode", lambda t, **kw: decoded.append(t) or real(t, **kw))
    assert verify(token) and decoded == []  # a hit: not decoded again
    now = time.time()
    monkeypatch.setattr(auth.time, "time", lambda: now + 61)
    with pytest.raises(AuthenticationError, match="expired"):
        verify(token)


@pytest.mark.parametrize(
    "token",
    [
        auth.issue_token(address=ADDR, secret="t" * 32, ttl_s=60, issuer="x"),  # other secret
        auth.issue_token(address=ADDR, secret=SECRET, ttl_s=60, issuer="y"),  # other issuer
        auth.issue_token(address=ADDR, secret=SECRET, ttl_s=-5, issuer="x"),  # expired
        "garbage",
    ],
)
def test_token_verifier_refuses_what_decode_token_refuses(token) -> None:
    verify = auth.TokenVerifier(secret=SECRET, issuer="x")
    for _ in range(2):  # a refusal is never cached as a success
        with pytest.raises(AuthenticationError):
            verify(token)
