"""No secret, data key or plaintext image ever appears in logs or error bodies."""

from __future__ import annotations

import base64
import logging

from nacl.public import PrivateKey, SealedBox

from tests.factories import bearer, login, sign, siwe_message


def _forms(secret: bytes | str) -> list[str]:
    if isinstance(secret, str):
        return [secret]
    return [secret.hex(), base64.b64encode(secret).decode(), repr(secret)[2:-1]]


def test_logs_and_error_bodies_hold_no_secrets(stack, dataset, caplog):
    caplog.set_level(logging.DEBUG)
    c, svc = stack.client, stack.service
    ds, v = dataset["dataset_id"], dataset["version"]
    settings = stack.app.state.ctx.settings
    bodies: list[str] = []

    def call(method, url, **kw):
        r = c.request(method, url, **kw)
        if r.status_code >= 400:
            bodies.append(r.text)
        return r

    # sign-ins, good and bad
    tokens = [login(c, stack.institution), login(c, stack.grantee)]
    n = call("GET", "/auth/nonce").json()
    text = siwe_message(n, stack.grantee.address)
    call("POST", "/auth/login", json={"message": text, "signature": sign(stack.outsider, text)})
    call("GET", "/auth/me", headers=bearer(tokens[0] + "x"))
    key = call("POST", "/auth/api-keys", json={"name": "k"}, headers=bearer(tokens[0])).json()
    call("GET", "/auth/me", headers={"X-API-Key": key["api_key"] + "x"})
    # releases, refused then granted
    sk = PrivateKey.generate()
    pk = base64.b64encode(bytes(sk.public_key)).decode()
    g = bearer(tokens[1])
    url = f"/datasets/{ds}/versions/{v}/images/0"
    call("POST", f"{url}/key", json={"public_key": pk}, headers=g)
    call("GET", f"{url}/content", headers=g)
    svc.grant(ds, stack.grantee.address, expires_at=svc.chain.block_timestamp() + 3600)
    sealed = call("POST", f"{url}/key", json={"public_key": pk}, headers=g).json()["sealed_key"]
    data_key = SealedBox(sk).decrypt(base64.b64decode(sealed))
    plain = call("GET", f"{url}/content", headers=g).content
    call("POST", f"{url}/key", json={"public_key": "A" * 43 + "="}, headers=g)
    # a tampered ciphertext: the decryption failure must not leak key or bytes either
    rec = svc.image_record(ds, 2)
    path = svc.storage.backend.object_path(rec["cid"])
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        assert call("GET", f"/datasets/{ds}/versions/{v}/images/2/content", headers=g).is_error
    finally:
        path.write_bytes(original)

    secrets = [
        settings.auth.jwt_secret,
        settings.kms.passphrase,
        settings.chain.keystore_passphrase,
        key["api_key"],
        *tokens,
        *_forms(data_key),
        *_forms(plain[200:232]),
        *(_forms(bytes(getattr(stack, w).key)) for w in ("institution", "grantee", "admin")),
    ]
    flat = [s for item in secrets for s in (item if isinstance(item, list) else [item])]
    logs = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert bodies and logs
    for secret in flat:
        assert secret not in logs, f"a secret reached the logs: {secret[:6]}…"
        for body in bodies:
            assert secret not in body, f"a secret reached an error body: {secret[:6]}…"
