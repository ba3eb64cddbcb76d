"""Finding 5: a failed API job left its encrypted original uploads and their keys on disk
(they decrypt to the original photos); such leftovers made `veilchain register --resume` exit
2; there was no abort. The attack: make a job fail (or abort it), then look for anything that
still decrypts to an original."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.factories import Stack, api_settings, upload, wait_job
from veilchain.platform.api import create_app
from veilchain.platform.uploads import SHRED_EVENT, job_tmp_dir, spool_dir, upload_keyset

ROOT = Path(__file__).resolve().parents[2]


def _shreds(svc, job_id: str) -> list:
    rows = svc.audit.query(event=SHRED_EVENT, subject=f"job:{job_id}", since_seq=0, limit=100)
    return list(rows)


def _leftovers(svc, data_dir: Path, job_id: str) -> dict:
    spool = spool_dir(data_dir, job_id)
    return {
        "spooled": len(list(spool.glob("*"))) if spool.exists() else 0,
        "keys": len(svc.keys.images_with_keys(upload_keyset(job_id))),
        "shm": job_tmp_dir(job_id).exists(),
    }


def test_a_failed_job_shreds_its_uploads_and_keys(stack) -> None:
    h = stack.headers("institution")
    r = stack.client.post(
        "/datasets",
        data={"name": "broken", "method": "blur", "params": "{}"},
        files=[("files", ("a.jpg", b"\xff\xd8 not really a jpeg " * 50, "image/jpeg"))],
        headers=h,
    )
    assert r.status_code == 202, r.text
    job = wait_job(stack.client, r.json()["id"], h)
    assert job["status"] == "failed"
    data_dir = Path(stack.app.state.ctx.settings.data_dir)
    assert _leftovers(stack.service, data_dir, job["id"]) == {"spooled": 0, "keys": 0, "shm": False}
    (entry,) = _shreds(stack.service, job["id"])
    assert entry.details["spooled_files"] == 1 and entry.details["upload_keys_deleted"] == 1


@pytest.fixture
def idle(tmp_path):
    """An app whose worker does not run: jobs stay queued."""
    app = create_app(api_settings(tmp_path, login_rate_per_minute=10_000), worker=False)
    with TestClient(app) as client:
        yield Stack(client, app, app.state.ctx.service), tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_delete_job_aborts_and_shreds_a_queued_upload(idle) -> None:
    stack, data_dir = idle
    h = stack.headers("institution")
    job = upload(stack.client, h, names=("obama.jpg", "biden.jpg"))
    assert _leftovers(stack.service, data_dir, job["id"])["keys"] == 2  # spooled, encrypted
    # someone else cannot abort it (nor see it)
    assert (
        stack.client.delete(f"/jobs/{job['id']}", headers=stack.headers("auditor")).status_code
        == 404
    )
    assert stack.client.delete(f"/jobs/{job['id']}").status_code == 401
    r = stack.client.delete(f"/jobs/{job['id']}", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "failed" and "aborted" in r.json()["error"]
    assert _leftovers(stack.service, data_dir, job["id"]) == {"spooled": 0, "keys": 0, "shm": False}
    assert len(_shreds(stack.service, job["id"])) == 1
    # the worker never runs an aborted job
    assert stack.service.jobs.worker.run_once() is False


def test_delete_of_a_succeeded_job_is_409(stack) -> None:
    h = stack.headers("institution")
    job = upload(stack.client, h, names=("obama.jpg",))
    assert wait_job(stack.client, job["id"], h)["status"] == "succeeded"
    assert stack.client.delete(f"/jobs/{job['id']}", headers=h).status_code == 409


def _cli(data_dir: Path, *args: str, module: str = "veilchain.cli") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILCHAIN_")}
    env.update(VEILCHAIN_DATA_DIR=str(data_dir), VEILCHAIN_ENV="test", PYTHONWARNINGS="ignore",
               PYTHONPATH=str(ROOT / "src") + os.pathsep + str(ROOT))  # fmt: skip
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


@pytest.mark.slow
def test_cli_resume_and_abort_ignore_an_api_jobs_leftovers(tmp_path, sample_inputs) -> None:
    """An API job killed mid-way leaves a pending registration whose images lived in its
    /dev/shm dir; the CLI's --resume must finish its own registration regardless."""
    from tests.security.test_api_exactly_once import _env, _healthy, _institution, _login
    from tests.servers import free_port, start_server, stop_process_group

    data_dir, port = tmp_path / "data", free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "tests.security.serve_driver", "image:1", str(port)]
    proc = start_server("API", cmd, tmp_path / "api.log", lambda: _healthy(base), 180,
                        env=_env(data_dir, port))  # fmt: skip
    try:
        import httpx

        from tests.factories import SAMPLES

        files = [
            ("files", (n, (SAMPLES / n).read_bytes(), "image/jpeg"))
            for n in ("obama.jpg", "biden.jpg")
        ]
        r = httpx.post(f"{base}/datasets", data={"name": "api", "method": "blur"}, files=files,
                       headers=_login(base, _institution(data_dir)), timeout=60)  # fmt: skip
        assert r.status_code == 202, r.text
        assert proc.wait(timeout=240) == -signal.SIGKILL
    finally:
        stop_process_group(proc)
    # a CLI registration killed after its first image
    killed = _cli(data_dir, str(sample_inputs), "image:1", module="tests.platform.register_driver")
    assert killed.returncode == -signal.SIGKILL
    done = _cli(data_dir, "register", "--resume", "--allow-recognizable", "--json")
    assert done.returncode == 0, done.stderr
    again = _cli(data_dir, "register", "--abort")
    assert again.returncode != 0 and "no interrupted registration" in again.stderr
