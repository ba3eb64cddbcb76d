"""Finding 4: killing the API server right after the registration transaction (or after the
registration was recorded, before the job was) made the restarted job register the data set
again; the first copy had no recorded uploader, so its institution got 403 granting on it.
The attack: SIGKILL the real `veilchain serve` at every step of a registration job, restart
it, and count data sets on chain."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.factories import SAMPLES, sign, siwe_message
from tests.servers import free_port, log_tail, start_server, stop_process_group
from tests.servers.api import start_api

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
NAMES = ("obama.jpg", "biden.jpg", "obama2.jpg")


def _env(data_dir: Path, port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILCHAIN_")}
    return {
        **env,
        "PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT),
        "PYTHONWARNINGS": "ignore",
        "VEILCHAIN_ENV": "test",
        "VEILCHAIN_DATA_DIR": str(data_dir),
        "VEILCHAIN_ANONYMIZER__WORKERS": "1",
        "VEILCHAIN_AUTH__DOMAIN": f"127.0.0.1:{port}",
        "VEILCHAIN_AUTH__URI": f"http://127.0.0.1:{port}",
    }


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _login(base: str, account) -> dict:
    n = httpx.get(f"{base}/auth/nonce").json()
    text = siwe_message(n, account.address)
    r = httpx.post(f"{base}/auth/login", json={"message": text, "signature": sign(account, text)})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _institution(data_dir: Path):
    from veilchain.chain import Keystore
    from veilchain.config import Settings
    from veilchain.platform.local_secrets import resolve_local_secrets

    s = resolve_local_secrets(Settings(env="test", data_dir=data_dir))
    return Keystore(data_dir / "keystore", s.chain.keystore_passphrase).load("institution")


@pytest.mark.parametrize(
    "kill_at", ["image:1", "after-pin:2", "before-tx", "after-tx", "after-record"]
)
def test_api_killed_at_every_step_registers_exactly_once(tmp_path, kill_at) -> None:
    data_dir, port = tmp_path / "data", free_port()
    base, env, log = f"http://127.0.0.1:{port}", _env(tmp_path / "data", port), tmp_path / "api.log"
    cmd = [sys.executable, "-m", "tests.security.serve_driver", kill_at, str(port)]
    proc = start_server("API", cmd, log, lambda: _healthy(base), 180, env=env)
    try:
        hi = _login(base, _institution(data_dir))
        files = [("files", (n, (SAMPLES / n).read_bytes(), "image/jpeg")) for n in NAMES]
        r = httpx.post(
            f"{base}/datasets",
            data={"name": "killed", "method": "blur", "allow_recognizable": "true"},
            files=files, headers=hi, timeout=60,
        )  # fmt: skip
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        assert proc.wait(timeout=240) == -signal.SIGKILL, log_tail(log)
    finally:
        stop_process_group(proc)

    proc = start_api(env, port, log)
    try:
        hi = _login(base, _institution(data_dir))
        deadline, job = time.monotonic() + 240, {}
        while time.monotonic() < deadline:
            job = httpx.get(f"{base}/jobs/{job_id}", headers=hi).json()
            if job["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.3)
        assert job["status"] == "succeeded", job
        datasets = httpx.get(f"{base}/datasets").json()
        assert datasets["count"] == 1, f"registered {datasets['count']} times after {kill_at}"
        ds = job["result"]["dataset_id"]
        assert httpx.get(f"{base}/datasets/{ds}").json()["uploader"] is not None
        g = httpx.post(
            f"{base}/datasets/{ds}/grants", json={"grantee": "0x" + "cd" * 20}, headers=hi
        )
        assert g.status_code == 201, g.text
    finally:
        stop_process_group(proc)
