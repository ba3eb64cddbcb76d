"""The main flow over HTTP: upload -> job -> data set -> proof -> grant -> key -> content."""

from __future__ import annotations

import base64

from nacl.public import PrivateKey, SealedBox

from tests.factories import wait_job


def test_flow(stack, dataset):
    c = stack.client
    ds, v = dataset["dataset_id"], dataset["version"]
    d = c.get(f"/datasets/{ds}").json()
    assert d["versions"][0]["record_count"] == 3
    assert d["uploader"] == stack.institution.address
    p = c.get(f"/datasets/{ds}/versions/{v}/images/1/proof?check=true").json()
    assert p["verified_on_chain"] is True
    sk = PrivateKey.generate()
    pk = base64.b64encode(bytes(sk.public_key)).decode()
    g = stack.headers("grantee")
    r = c.post(f"/datasets/{ds}/versions/{v}/images/0/key", json={"public_key": pk}, headers=g)
    assert r.status_code == 403, r.text
    r = c.post(
        f"/datasets/{ds}/grants",
        json={"grantee": stack.grantee.address},
        headers=stack.headers("institution"),
    )
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "live"
    r = c.post(f"/datasets/{ds}/versions/{v}/images/0/key", json={"public_key": pk}, headers=g)
    assert r.status_code == 200, r.text
    key = SealedBox(sk).decrypt(base64.b64decode(r.json()["sealed_key"]))
    assert len(key) == 32
    r = c.get(f"/datasets/{ds}/versions/{v}/images/0/content", headers=g)
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
    a = stack.headers("auditor")
    job = c.post(f"/datasets/{ds}/versions/{v}/verifications", json={}, headers=a).json()
    done = wait_job(c, job["id"], a)
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["passed"] and done["result"]["attest_tx"]
    assert c.get(f"/datasets/{ds}").json()["versions"][0]["attestations"][0]["passed"]
    r = c.post("/audit/anchor", headers=a)
    assert r.status_code == 200, r.text
    v2 = c.get("/audit/verify", headers=a).json()
    assert v2["ok"] and v2["anchored"]
    events = {e["event"] for e in c.get("/audit?limit=100", headers=a).json()["data"]}
    assert {"register", "release", "refusal", "grant", "anchor"} <= events
