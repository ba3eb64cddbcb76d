"""Every endpoint x role x grant state gives the documented status (docs/api.md) and nothing
else. Roles come from the contract; grant states are real on-chain grants: none (the
outsider), live, expired (the chain clock moved past it) and revoked."""

from __future__ import annotations

import base64

import pytest
from eth_account import Account
from nacl.public import PrivateKey

PRINCIPALS = ("anon", "none", "institution", "auditor", "admin", "live", "expired", "revoked")
PK = base64.b64encode(bytes(PrivateKey.generate().public_key)).decode()
BAD_IMAGE = [("files", ("x.png", b"not an image", "image/png"))]

# (name, method, path, kwargs, {principal: status}); "*" is every principal not listed.
# {ds}: the data set; {other}: an address granted by the fixture, revoked by DELETE.
MATRIX = [
    ("health", "GET", "/healthz", {}, {"*": 200}),
    ("methods", "GET", "/methods", {}, {"*": 200}),
    ("nonce", "GET", "/auth/nonce", {}, {"*": 200}),
    ("me", "GET", "/auth/me", {}, {"anon": 401, "*": 200}),
    ("api-key create", "POST", "/auth/api-keys", {"json": {"name": "m"}},
     {"anon": 401, "institution": 201, "*": 403}),
    ("api-key list", "GET", "/auth/api-keys", {}, {"anon": 401, "*": 200}),
    ("api-key revoke unknown", "DELETE", "/auth/api-keys/nope", {}, {"anon": 401, "*": 404}),
    ("datasets", "GET", "/datasets", {}, {"*": 200}),
    ("dataset", "GET", "/datasets/{ds}", {}, {"*": 200}),
    ("dataset missing", "GET", "/datasets/999", {}, {"*": 404}),
    ("version", "GET", "/datasets/{ds}/versions/1", {}, {"*": 200}),
    ("version missing", "GET", "/datasets/{ds}/versions/9", {}, {"*": 404}),
    ("images", "GET", "/datasets/{ds}/versions/1/images", {}, {"*": 200}),
    ("image", "GET", "/datasets/{ds}/versions/1/images/0", {}, {"*": 200}),
    ("image missing", "GET", "/datasets/{ds}/versions/1/images/99", {}, {"*": 404}),
    ("proof", "GET", "/datasets/{ds}/versions/1/images/0/proof", {}, {"*": 200}),
    ("report", "GET", "/datasets/{ds}/versions/1/images/0/report", {}, {"*": 200}),
    ("upload", "POST", "/datasets",
     {"data": {"name": "m", "method": "mask"}, "files": BAD_IMAGE},
     {"anon": 401, "institution": 202, "*": 403}),
    ("verify", "POST", "/datasets/{ds}/versions/1/verifications", {"json": {"attest": False}},
     {"anon": 401, "auditor": 202, "*": 403}),
    ("grants list", "GET", "/datasets/{ds}/grants", {}, {"anon": 401, "*": 200}),
    ("grant", "POST", "/datasets/{ds}/grants", {"json": {"grantee": "{other}"}},
     {"anon": 401, "institution": 201, "*": 403}),
    ("revoke", "DELETE", "/datasets/{ds}/grants/{other}", {},
     {"anon": 401, "institution": 200, "*": 403}),
    ("re-encrypt", "POST", "/datasets/{ds}/reencryptions", {},
     {"anon": 401, "institution": 202, "*": 403}),
    ("key", "POST", "/datasets/{ds}/versions/1/images/0/key", {"json": {"public_key": PK}},
     {"anon": 401, "live": 200, "*": 403}),
    ("key missing image", "POST", "/datasets/{ds}/versions/1/images/99/key",
     {"json": {"public_key": PK}}, {"anon": 401, "*": 404}),
    ("content", "GET", "/datasets/{ds}/versions/1/images/0/content", {},
     {"anon": 401, "live": 200, "*": 403}),
    ("jobs", "GET", "/jobs", {}, {"anon": 401, "*": 200}),
    ("job of the institution", "GET", "/jobs/{job}", {},
     {"anon": 401, "institution": 200, "admin": 200, "*": 404}),
    ("abort the institution's finished job", "DELETE", "/jobs/{job}", {},
     {"anon": 401, "institution": 409, "admin": 409, "*": 404}),
    ("audit", "GET", "/audit", {}, {"anon": 401, "auditor": 200, "admin": 200, "*": 403}),
    ("audit verify", "GET", "/audit/verify", {},
     {"anon": 401, "auditor": 200, "admin": 200, "*": 403}),
    ("audit anchor", "POST", "/audit/anchor", {},
     {"anon": 401, "auditor": 200, "admin": 200, "*": 403}),
    ("audit latest anchor", "GET", "/audit/anchors/latest", {}, {"*": 200}),
]  # fmt: skip


@pytest.fixture(scope="module")
def world(stack, dataset):
    """Grantees in every grant state, and the headers of every principal."""
    svc, ds = stack.service, dataset["dataset_id"]
    accounts = {"live": Account.create(), "expired": Account.create(), "revoked": Account.create()}
    now = svc.chain.block_timestamp()
    svc.grant(ds, accounts["expired"].address, expires_at=now + 120)
    svc.chain.backend.advance_time(600)
    now = svc.chain.block_timestamp()
    for name in ("live", "revoked"):
        svc.grant(ds, accounts[name].address, expires_at=now + 30 * 86400)
    svc.revoke(ds, accounts["revoked"].address)
    states = {g.grantee: g for g in svc.chain.list_grants(ds)}
    assert states[accounts["live"].address].active
    assert not states[accounts["expired"].address].active
    assert states[accounts["revoked"].address].revoked
    for name, acct in accounts.items():
        setattr(stack, name, acct)
    stack.none = stack.outsider
    headers = {p: stack.headers(p) for p in PRINCIPALS}
    jobs = stack.client.get("/jobs", headers=headers["institution"]).json()["data"]
    return {"ds": ds, "headers": headers, "job": jobs[0]["id"]}


def _expected(table: dict, who: str) -> int:
    return table.get(who, table.get("*"))


@pytest.mark.parametrize("name, method, path, kwargs, table", MATRIX, ids=[m[0] for m in MATRIX])
def test_matrix(stack, world, name, method, path, kwargs, table):
    c = stack.client
    for who in PRINCIPALS:
        other = Account.create().address
        if name == "revoke":  # something to revoke for the principals that may
            stack.service.grant(
                world["ds"], other, expires_at=stack.service.chain.block_timestamp() + 3600
            )
        fill = {"ds": world["ds"], "other": other, "job": world["job"]}
        url = path.format(**fill)
        kw = dict(kwargs)
        if "json" in kw:
            kw["json"] = {k: v.format(**fill) if isinstance(v, str) else v
                          for k, v in kw["json"].items()}  # fmt: skip
        r = c.request(method, url, headers=world["headers"][who], **kw)
        want = _expected(table, who)
        assert r.status_code == want, f"{name} as {who}: {r.status_code} {r.text[:200]}"
        if r.status_code >= 400:
            assert r.headers["content-type"].startswith("application/problem+json")


def test_refusals_are_audited(stack, world):
    refusals = stack.service.audit.query(event="refusal", limit=1000)
    refused = {e.actor for e in refusals}
    for who in ("expired", "revoked", "none"):
        assert getattr(stack, who).address in refused, who
    releases = {e.actor for e in stack.service.audit.query(event="release", limit=1000)}
    assert stack.live.address in releases
