"""RFC 9457 problem details: status per error class, and server faults never echo their text."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from veilchain import errors as E
from veilchain.platform.api.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers

SECRET_TEXT = "cannot store data keys: password=hunter2 at /srv/veilchain/db.sqlite"


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)
    raising = {
        "key": E.KeyManagementError(SECRET_TEXT),
        "audit": E.AuditError(SECRET_TEXT),
        "config": E.ConfigError(SECRET_TEXT),
        "base": E.VeilchainError(SECRET_TEXT),
        "chain-down": E.ChainUnavailableError("chain node at http://127.0.0.1:8545 is down"),
        "input": E.InputError("image too large: 90000x90000"),
    }

    @app.get("/raise/{name}")
    def _raise(name: str):
        raise raising[name]

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("name", ["key", "audit", "config", "base"])
def test_server_faults_withhold_their_text(client, name, caplog):
    r = client.get(f"/raise/{name}")
    assert r.status_code == 500
    assert r.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    body = r.json()
    assert "hunter2" not in r.text and "/srv/" not in r.text
    assert body["detail"] == "server-side error; see the server log"
    assert body["status"] == 500 and body["instance"] == f"/raise/{name}"
    assert any("hunter2" in rec.getMessage() for rec in caplog.records)  # kept for operators


@pytest.mark.parametrize(
    "name,status,says",
    [("chain-down", 503, "is down"), ("input", 400, "image too large")],
)
def test_client_and_availability_errors_say_what_happened(client, name, status, says):
    r = client.get(f"/raise/{name}")
    assert r.status_code == status and says in r.json()["detail"]
