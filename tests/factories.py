"""Builders shared by several test packages: plain functions and classes, no fixtures.

- API: :func:`api_settings`, SIWE sign-in (:func:`siwe_message`, :func:`sign`, :func:`login`,
  :func:`bearer`), :func:`upload` and :func:`wait_job`, and :class:`Stack` (an app and its
  actors);
- chain: :func:`named_account`, :func:`random_bytes32`, :func:`version_fields` and
  :func:`deploy_with_roles` (a VeilRegistry with every role appointed);
- keys: :data:`PASSPHRASE` and :data:`FAST_SCRYPT_N`;
- the service: :func:`make_settings`, :data:`SAMPLE_INPUT_NAMES`.

The fixtures several packages use live in the top-level conftest.py.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

import veilchain
from veilchain.config import Settings

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from veilchain.chain import ChainBackend, ChainClient

#: The sample photos that ship with the package (see data/samples/SOURCES.md).
SAMPLES = Path(veilchain.__file__).parent / "data" / "samples"
#: The photos :func:`upload` sends by default.
UPLOAD_NAMES = ("obama.jpg", "biden.jpg", "obama2.jpg")
#: The photos of the ``sample_inputs`` fixture (conftest.py).
SAMPLE_INPUT_NAMES = ("astronaut.jpg", "obama.jpg", "biden.jpg")

# --- keys --------------------------------------------------------------------------------
PASSPHRASE = "correct horse battery staple"
FAST_SCRYPT_N = 2**14  # tests only; the default is 2**17


def make_settings(data_dir: Path, **kw) -> Settings:
    """Settings for a service in a temp dir (env test, embedded defaults)."""
    return Settings(data_dir=data_dir, env="test", **kw)


# --- API -----------------------------------------------------------------------------------
def api_settings(data_dir: Path, **auth) -> Settings:
    """Settings for an app under TestClient (its host is ``testserver``), pixelate method."""
    return Settings(
        env="test",
        data_dir=data_dir,
        auth={"domain": "testserver", "uri": "http://testserver", **auth},
        anonymizer={"method": "pixelate"},
    )


def siwe_message(n: dict, address: str, **override) -> str:
    fields = dict(
        domain=n["domain"],
        address=address,
        statement="Sign in to Veilchain",
        uri=n["uri"],
        version="1",
        chain_id=n["chain_id"],
        nonce=n["nonce"],
        issued_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    fields.update(override)
    from siwe import SiweMessage

    return SiweMessage(**fields).prepare_message()


def sign(account, text: str) -> str:
    return "0x" + bytes(account.sign_message(encode_defunct(text=text)).signature).hex()


def login(client: TestClient, account, **override) -> str:
    nonce = client.get("/auth/nonce").json()
    text = siwe_message(nonce, account.address, **override)
    r = client.post("/auth/login", json={"message": text, "signature": sign(account, text)})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def wait_job(client: TestClient, job_id: str, headers: dict, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def upload(
    client: TestClient, headers: dict, name: str = "faces", names=UPLOAD_NAMES, method="mask"
) -> dict:
    files = [("files", (n, (SAMPLES / n).read_bytes(), "image/jpeg")) for n in names]
    r = client.post(
        "/datasets",
        data={"name": name, "method": method, "params": "{}"},
        files=files,
        headers=headers,
    )
    assert r.status_code == 202, r.text
    return r.json()


class Stack:
    """The app, its service and the actors of a test."""

    def __init__(self, client: TestClient, app, service):
        self.client, self.app, self.service = client, app, service
        self.institution = service.accounts["institution"]
        self.auditor = service.accounts["auditor"]
        self.keyservice = service.accounts["keyservice"]
        self.admin = service.accounts["admin"]
        self.grantee = Account.create()
        self.outsider = Account.create()
        self._tokens: dict[str, str] = {}

    def headers(self, who: str) -> dict:
        if who in ("anon", "anonymous"):
            return {}
        if who not in self._tokens:
            self._tokens[who] = login(self.client, getattr(self, who))
        return bearer(self._tokens[who])


# --- chain ---------------------------------------------------------------------------------
FUNDING_WEI = 50 * 10**18


def named_account(name: str) -> LocalAccount:
    """A deterministic test account (the key is keccak of the name)."""
    return Account.from_key(keccak(text=f"veilchain-test-{name}"))


def random_bytes32() -> bytes:
    return os.urandom(32)


def version_fields(**overrides) -> dict:
    """Keyword arguments for register_dataset / add_version, overridable."""
    fields = {
        "merkle_root": random_bytes32(),
        "record_count": 1000,
        "manifest_cid": "bafybeidsyc3rx6lmbjml2fg4ucagkjh3kse6tbphoyyhms46fqhmu6ujbi",
        "model_hash": random_bytes32(),
        "method": "dp",
        "params": '{"block": 16, "clip": 1.0}',
        "epsilon_milli": 1500,
    }
    fields.update(overrides)
    return fields


@dataclass
class Deployed:
    """A VeilRegistry with one client per role; every account funded."""

    backend: ChainBackend
    admin: ChainClient
    institution: ChainClient
    other_institution: ChainClient
    auditor: ChainClient
    keyservice: ChainClient
    grantee: ChainClient
    stranger: ChainClient


def deploy_with_roles(backend: ChainBackend) -> Deployed:
    from veilchain.chain import ChainClient

    accounts = {
        n: named_account(n)
        for n in (
            "admin",
            "institution",
            "other_institution",
            "auditor",
            "keyservice",
            "grantee",
            "stranger",
        )
    }
    for account in accounts.values():
        if backend.get_balance(account.address) < FUNDING_WEI // 2:
            backend.fund(account.address, FUNDING_WEI)
    admin = ChainClient.deploy(backend, accounts["admin"])
    admin.add_institution(accounts["institution"].address)
    admin.add_institution(accounts["other_institution"].address)
    admin.add_auditor(accounts["auditor"].address)
    admin.set_key_service(accounts["keyservice"].address)
    clients = {n: admin.with_account(a) for n, a in accounts.items() if n != "admin"}
    return Deployed(backend=backend, admin=admin, **clients)
