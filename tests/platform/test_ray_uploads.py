"""An API upload registered on the two-node Ray cluster, its workers reading it only through
the API's signed links (``platform/upload_links.py``).

The proof that they do: the API (``veilchain serve``, uvicorn on 127.0.0.1) runs in a mount
namespace of its own with a private tmpfs on /dev/shm, so the decrypted uploads exist only in
the API's view of the file system; the Ray nodes and their workers, like this test, see the
machine's /dev/shm, where the job's folder never exists. A worker that tried the path would
fail the registration ("no such file"). Needs root and ``unshare`` (else skipped).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.factories import UPLOAD_NAMES, login, upload
from tests.servers import free_port, start_server, stop_process_group
from veilchain.config import Settings
from veilchain.platform.uploads import LINKS_EVENT, job_tmp_dir
from veilchain.platform.wiring import build_service, open_keystore

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
# a private /dev/shm for the API process only (util-linux unshare: mounts made private)
_PRIVATE_SHM = 'mount -t tmpfs -o size=256m,mode=1777 tmpfs /dev/shm && exec "$@"'


def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--mount", "sh", "-c", "mount -t tmpfs tmpfs /dev/shm"]
    return subprocess.run(probe, capture_output=True).returncode == 0


@pytest.fixture
def api_on_ray(tmp_path, two_nodes):
    """``veilchain serve`` with the Ray executor at the session cluster, links to itself."""
    if not _can_unshare():
        pytest.skip("needs root and unshare(1) to give the API a /dev/shm of its own")
    port, data_dir = free_port(), tmp_path / "api"
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILCHAIN_")}
    env.update(VEILCHAIN_ENV="test", VEILCHAIN_DATA_DIR=str(data_dir),
               VEILCHAIN_EXECUTOR__KIND="ray", VEILCHAIN_EXECUTOR__ADDRESS=two_nodes.address,
               VEILCHAIN_EXECUTOR__BATCH="1", VEILCHAIN_EXECUTOR__UPLOAD_URL=base,
               PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))  # fmt: skip
    serve = [sys.executable, "-m", "veilchain.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port)]  # fmt: skip
    cmd = ["unshare", "--mount", "sh", "-c", _PRIVATE_SHM, "sh", *serve]

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    proc = start_server("API", cmd, tmp_path / "api.log", healthy, 180, env=env)
    yield base, data_dir, proc
    stop_process_group(proc)


def test_an_upload_is_read_by_ray_workers_only_through_signed_links(api_on_ray):
    base, data_dir, proc = api_on_ray
    settings = Settings(data_dir=data_dir, env="test")
    institution = open_keystore(settings).load("institution")
    with httpx.Client(base_url=base, timeout=60) as client:
        headers = {"Authorization": f"Bearer {login(client, institution)}"}
        job = upload(client, headers, name="ray-upload")
        folder = job_tmp_dir(job["id"])
        in_api_view = Path(f"/proc/{proc.pid}/root") / folder.relative_to("/")
        seen = False
        deadline = time.monotonic() + 400
        while (status := client.get(f"/jobs/{job['id']}", headers=headers).json())["status"] \
                not in ("succeeded", "failed"):  # fmt: skip
            assert not folder.exists(), "the upload is visible outside the API's namespace"
            seen = seen or in_api_view.is_dir()
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        log = data_dir.parent / "api.log"
        assert status["status"] == "succeeded", (status["error"], log.read_text()[-3000:])
        assert seen, "the decrypted upload never appeared in the API's own /dev/shm"
        assert status["result"]["records"] == len(UPLOAD_NAMES)
        assert not in_api_view.exists(), "the decrypted upload outlived its job"
        # after the job: its folder is gone and every link to it is dead
        r = client.get(f"/uploads/{job['id']}/000000.img", params={"expires": 2**40,
                                                                   "sig": "0" * 64})  # fmt: skip
        assert r.status_code == 404
    stop_process_group(proc)  # the data directory is this test's now
    svc = build_service(settings)
    # every image was fetched through a link, once (no worker died, no batch was resent)
    (entry,) = svc.audit.query(event=LINKS_EVENT, subject=f"job:{job['id']}")
    assert entry.details == {"served": len(UPLOAD_NAMES)}
    assert svc.verify(status["result"]["dataset_id"]).ok
