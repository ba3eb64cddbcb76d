"""The client side of test_compose.py's ``ray`` profile run, inside its network namespace:
wait for the api (``http://api:8000``) and for the Ray worker to join ``ray-head``, upload the
sample photos as the institution, wait for the job, and print one JSON line of what was seen.

    python -m tests.platform.api.compose_client DATA_DIR RAY_ADDRESS
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx

from tests.factories import login, upload
from veilchain.config import Settings
from veilchain.platform.audit import AuditLog
from veilchain.platform.db import make_engine, make_session_factory
from veilchain.platform.uploads import LINKS_EVENT, job_tmp_dir
from veilchain.platform.wiring import open_keystore

API = "http://api:8000"


def _wait(what: str, ready, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"{what} not ready in {timeout_s:.0f} s")


def _ray_nodes(address: str) -> list[dict]:
    import ray

    ray.init(address=address, configure_logging=False, log_to_driver=False)
    try:
        return [{"ip": n["NodeManagerAddress"], "cpus": n["Resources"].get("CPU", 0)}
                for n in ray.nodes() if n["Alive"]]  # fmt: skip
    finally:
        ray.shutdown()


def main(data_dir: Path, ray_address: str) -> dict:
    _wait("the api", lambda: httpx.get(f"{API}/healthz", timeout=2).status_code == 200)
    _wait("the Ray worker", lambda: len(_ray_nodes(ray_address)) == 2)
    nodes = _ray_nodes(ray_address)
    settings = Settings(data_dir=data_dir, env="test")
    institution = open_keystore(settings).load("institution")
    with httpx.Client(base_url=API, timeout=60) as client:
        headers = {"Authorization": f"Bearer {login(client, institution)}"}
        job = upload(client, headers, name="compose-ray")
        seen_here = False  # the upload's folder, as the Ray containers' file system has it
        while (done := client.get(f"/jobs/{job['id']}", headers=headers).json())["status"] \
                not in ("succeeded", "failed"):  # fmt: skip
            seen_here = seen_here or job_tmp_dir(job["id"]).exists()
            time.sleep(0.2)
    sessions = make_session_factory(make_engine(settings.db_url))
    audit = AuditLog(sessions).query(event=LINKS_EVENT, subject=f"job:{job['id']}")
    return {
        "nodes": nodes,
        "status": done["status"],
        "error": done["error"],
        "records": (done["result"] or {}).get("records"),
        "served_by_links": [e.details["served"] for e in audit],
        "upload_visible_to_workers": seen_here,
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), sys.argv[2])))
