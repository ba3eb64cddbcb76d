"""The docker-compose topology without Docker: ganache (npm), js-ipfs, PostgreSQL and
``veilchain serve`` in a subprocess, configured from docker-compose.yml's own environment.
End to end over HTTP, including a SIGKILL of the API in the middle of a registration."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from eth_account import Account
from sqlalchemy import create_engine, text

from tests.factories import SAMPLES, sign, siwe_message
from tests.platform.provenance.operator import write_operator_pkcs12
from tests.servers import free_port
from tests.servers.api import start_api

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
_SUBST = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")


def compose_env(values: dict[str, str]) -> dict[str, str]:
    """The api service's environment from docker-compose.yml with ${VAR} resolved."""
    env = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["api"]
    out = {}
    for key, value in env["environment"].items():
        out[key] = _SUBST.sub(
            lambda m: values.get(m.group(1), m.group(2) if "-" in m.group(0) else ""), str(value)
        )
    return out


class Api:
    def __init__(self, env: dict, port: int, log: Path):
        self.env, self.port, self.log = env, port, log
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = start_api(self.env, self.port, self.log)

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(30)

    def login(self, account) -> dict:
        n = httpx.get(f"{self.base}/auth/nonce").json()
        msg = siwe_message(n, account.address)
        r = httpx.post(
            f"{self.base}/auth/login", json={"message": msg, "signature": sign(account, msg)}
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def wait_job(self, job_id: str, headers: dict, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = httpx.get(f"{self.base}/jobs/{job_id}", headers=headers).json()
            if job["status"] in ("succeeded", "failed"):
                return job
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} did not finish")


@pytest.fixture(scope="module")
def api(tmp_path_factory, ganache_url, ipfs_api_addr, pg_url):
    with create_engine(pg_url).begin() as conn:  # the cluster is shared: start empty
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    data_dir = tmp_path_factory.mktemp("stack")
    port = free_port()
    # The operator's own key, funded from ganache's (published) account 0: prod refuses that.
    deployer = Account.create()
    from veilchain.chain import JsonRpcBackend

    funder = JsonRpcBackend(ganache_url)
    funder.fund(deployer.address, 100 * 10**18)
    funder.close()
    keystore_passphrase = secrets.token_hex(24)
    # the institution's signing bundle from a CA of its own (prod refuses the development CA)
    p12_passphrase = secrets.token_hex(16)
    signer_p12 = tmp_path_factory.mktemp("signer") / "signer.p12"
    write_operator_pkcs12(signer_p12, p12_passphrase)
    env = compose_env(
        {
            "POSTGRES_PASSWORD": "unused",
            "VEILCHAIN_CHAIN__PRIVATE_KEY": "0x" + bytes(deployer.key).hex(),
            "VEILCHAIN_CHAIN__KEYSTORE_PASSPHRASE": keystore_passphrase,
            "VEILCHAIN_KMS__MASTER_KEY_HEX": secrets.token_hex(32),
            "VEILCHAIN_AUTH__JWT_SECRET": secrets.token_hex(32),
            "VEILCHAIN_AUTH__DOMAIN": f"127.0.0.1:{port}",
            "VEILCHAIN_AUTH__URI": f"http://127.0.0.1:{port}",
            "VEILCHAIN_CREDENTIALS__PKCS12_PASSPHRASE": p12_passphrase,
        }
    )
    assert env["VEILCHAIN_ENV"] == "prod"
    # Same topology, loopback addresses instead of the compose service names.
    env.update(
        VEILCHAIN_DATA_DIR=str(data_dir),
        VEILCHAIN_CHAIN__RPC_URL=ganache_url,
        VEILCHAIN_IPFS__API_URL=ipfs_api_addr,
        VEILCHAIN_DB__URL=pg_url,
        VEILCHAIN_CREDENTIALS__PKCS12_PATH=str(signer_p12),
    )
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("VEILCHAIN_")}
    server = Api({**base_env, **env}, port, data_dir / "api.log")
    server.start()
    yield server, data_dir, keystore_passphrase
    server.kill(signal.SIGTERM)


def _upload(api: Api, headers: dict, names: list[str], name: str) -> dict:
    files = [("files", (n, (SAMPLES / n).read_bytes(), "image/jpeg")) for n in names]
    r = httpx.post(
        f"{api.base}/datasets",
        data={"name": name, "method": "mask"},
        files=files,
        headers=headers,
        timeout=60,
    )
    assert r.status_code == 202, r.text
    return r.json()


def test_end_to_end_over_http(api):
    server, data_dir, passphrase = api
    from veilchain.chain import Keystore

    keystore = Keystore(data_dir / "keystore", passphrase)
    institution, auditor = keystore.load("institution"), keystore.load("auditor")
    grantee = Account.create()
    hi, ha, hg = server.login(institution), server.login(auditor), server.login(grantee)
    b = server.base

    job = _upload(server, hi, ["obama.jpg", "biden.jpg", "obama2.jpg"], "stack")
    done = server.wait_job(job["id"], hi)
    assert done["status"] == "succeeded", done["error"]
    ds = done["result"]["dataset_id"]
    info = httpx.get(f"{b}/datasets/{ds}").json()
    assert info["versions"][0]["record_count"] == 3
    assert httpx.get(f"{b}/datasets/{ds}/versions/1/images/2/proof?check=true").json()[
        "verified_on_chain"
    ]
    r = httpx.post(f"{b}/datasets/{ds}/grants", json={"grantee": grantee.address}, headers=hi)
    assert r.status_code == 201, r.text
    content = httpx.get(f"{b}/datasets/{ds}/versions/1/images/0/content", headers=hg)
    assert content.status_code == 200 and content.content.startswith(b"\x89PNG")
    vjob = httpx.post(f"{b}/datasets/{ds}/versions/1/verifications", json={}, headers=ha).json()
    vdone = server.wait_job(vjob["id"], ha)
    assert vdone["status"] == "succeeded" and vdone["result"]["passed"], vdone
    assert httpx.post(f"{b}/audit/anchor", headers=ha).status_code == 200
    assert httpx.get(f"{b}/audit/verify", headers=ha).json()["anchored"] is True


def test_registration_survives_sigkill_of_the_api(api):
    server, data_dir, passphrase = api
    from veilchain.chain import Keystore

    institution = Keystore(data_dir / "keystore", passphrase).load("institution")
    hi = server.login(institution)
    names = ["obama.jpg", "biden.jpg", "obama2.jpg", "obama3.jpg", "group.jpg", "astronaut.jpg"]
    job = _upload(server, hi, names, "killed")
    deadline = time.monotonic() + 120
    state = {}
    while time.monotonic() < deadline:
        state = httpx.get(f"{server.base}/jobs/{job['id']}", headers=hi).json()
        if state["status"] != "queued" and state["progress_done"] >= 1:
            break
        time.sleep(0.05)
    interrupted = state["status"] == "running"
    server.kill(signal.SIGKILL)
    server.start()
    hi = server.login(institution)
    done = server.wait_job(job["id"], hi)
    if done["status"] == "failed":  # an identity-check refusal is a result, not a crash
        assert "recognizable" in done["error"], done["error"]
    else:
        assert done["result"]["records"] == len(names)
    if interrupted:
        assert done["attempts"] == 2
