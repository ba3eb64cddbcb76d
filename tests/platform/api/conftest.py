"""API test fixtures: the real service on embedded defaults (py-evm chain, block store, SQLite)
in a temp dir, a TestClient, SIWE sign-in helpers, and one registered data set."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from fastapi.testclient import TestClient
from siwe import SiweMessage

from veilchain.config import Settings
from veilchain.platform.api import create_app

SAMPLES = Path(__file__).resolve().parents[3] / "src" / "veilchain" / "data" / "samples"
SAMPLE_NAMES = ("obama.jpg", "biden.jpg", "obama2.jpg")


def make_settings(data_dir: Path, **auth) -> Settings:
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
    client: TestClient, headers: dict, name: str = "faces", names=SAMPLE_NAMES, method="mask"
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


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One app per test module on a fresh data dir (the py-evm chain persists in it)."""
    data_dir = tmp_path_factory.mktemp("api")
    settings = make_settings(data_dir, login_rate_per_minute=10_000)
    app = create_app(settings)
    with TestClient(app) as client:
        yield Stack(client, app, app.state.ctx.service)
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def dataset(stack) -> dict:
    """A registered data set of the sample photos: {dataset_id, version, ...}."""
    h = stack.headers("institution")
    job = upload(stack.client, h)
    done = wait_job(stack.client, job["id"], h)
    assert done["status"] == "succeeded", done["error"]
    return done["result"]
