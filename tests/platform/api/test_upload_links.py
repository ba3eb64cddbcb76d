"""Signed links to a running job's uploads (``platform/upload_links.py``), attacked over real
HTTP: the API served by uvicorn on 127.0.0.1, two jobs' uploads decrypted into /dev/shm.

The whole path (a Ray registration whose workers fetch through these links) is in
tests/platform/test_ray_uploads.py.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.factories import SAMPLES, api_settings
from tests.servers import free_port
from tests.servers.api import serve_in_thread
from veilchain.errors import ConfigError, InputError
from veilchain.platform import upload_links
from veilchain.platform.api import create_app
from veilchain.platform.executors import ExecutorChoice
from veilchain.platform.uploads import LINKS_EVENT, job_tmp_dir


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """The app, served by uvicorn on 127.0.0.1 (no job worker: the test plays the job)."""
    data_dir = tmp_path_factory.mktemp("links")
    app = create_app(api_settings(data_dir), worker=False)
    port = free_port()
    with serve_in_thread(app, port):
        yield f"http://127.0.0.1:{port}", app.state.ctx.service
    shutil.rmtree(data_dir, ignore_errors=True)


PHOTOS = [(SAMPLES / n).read_bytes() for n in ("obama.jpg", "biden.jpg")]


@pytest.fixture
def two_jobs(api):
    """Two jobs whose uploads are spooled and decrypted into /dev/shm, links open."""
    base, svc = api
    jobs = []
    for _ in range(2):
        job_id = uuid.uuid4().hex
        svc.uploads.spool(job_id, PHOTOS)
        paths = svc.uploads.materialize(job_id)
        jobs.append((job_id, paths, svc.uploads.links.open(job_id, base)))
    yield jobs
    for job_id, _, _ in jobs:
        svc.uploads.release_memory(job_id)
        shutil.rmtree(svc.uploads.data_dir / "uploads" / job_id, ignore_errors=True)


def _refused(url: str) -> None:
    r = httpx.get(url)
    assert r.status_code == 404, (url, r.status_code)
    assert r.headers["content-type"] == "application/problem+json"
    assert "sig=" not in r.text and PHOTOS[0][:64] not in r.content


def _with(url: str, **query: str) -> str:
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()} | query
    return parts._replace(query="&".join(f"{k}={v}" for k, v in q.items())).geturl()


def test_a_link_serves_its_file_once_signed_and_nothing_else(api, two_jobs):
    base, svc = api
    (a, a_paths, a_link), (b, b_paths, b_link) = two_jobs
    url = a_link(str(a_paths[0]))
    assert url.startswith(f"{base}/uploads/{a}/000000.img?expires=")
    r = httpx.get(url)
    assert r.status_code == 200 and r.content == PHOTOS[0]
    assert r.headers["cache-control"] == "no-store"
    assert httpx.get(b_link(str(b_paths[1]))).content == PHOTOS[1]

    sig = parse_qs(urlsplit(url).query)["sig"][0]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    _refused(_with(url, sig=flipped))  # bad signature
    _refused(_with(url, sig=""))
    _refused(_with(url, sig="é" * 64))  # not ASCII: refused, not a crash
    _refused(url.split("?")[0])  # no signature at all
    exp = parse_qs(urlsplit(url).query)["expires"][0]
    _refused(_with(url, expires=str(int(exp) + 3600)))  # a longer life is not signed
    for odd in ("%C2%B2", "9" * 5000, "-1", ""):  # a Unicode digit, too long, not a number
        _refused(_with(url, expires=odd))
    _refused(url.replace("000000.img", "000001.img"))  # its signature names one file
    _refused(url.replace(a, b))  # the same file of the other running job
    # no listing, no traversal, no other name shape
    paths = (f"/uploads/{a}/", f"/uploads/{a}", "/uploads/", f"/uploads/{a}/..%2F..%2Fetc%2Fpasswd",
             f"/uploads/{a}/%2e%2e/{b}/000000.img", f"/uploads/{a}/000000.bin")  # fmt: skip
    for path in paths:
        _refused(f"{base}{path}?expires={exp}&sig={sig}")
    # a link cannot name a file outside the job's folder, even a path of the other job
    with pytest.raises(InputError, match="not an upload of job"):
        a_link(str(b_paths[0]))
    # a symbolic link planted in the job's folder is not followed, even with a valid link
    planted = job_tmp_dir(a) / "000009.img"
    os.symlink("/etc/hostname", planted)
    _refused(a_link(str(planted)))


def test_links_expire(api, two_jobs, monkeypatch):
    (a, a_paths, a_link), _ = two_jobs
    url = a_link(str(a_paths[0]))
    assert httpx.get(url).status_code == 200
    now = time.time()
    monkeypatch.setattr(upload_links, "_clock", lambda: now + upload_links.LINK_TTL_S + 5)
    _refused(url)


def test_nothing_is_served_once_the_job_released_its_files(api, two_jobs):
    _, svc = api
    (a, a_paths, a_link), (b, b_paths, b_link) = two_jobs
    url_a, url_b = a_link(str(a_paths[0])), b_link(str(b_paths[0]))
    assert httpx.get(url_a).status_code == 200
    svc.uploads.release_memory(a)  # the job ended (success, failure or abort alike)
    _refused(url_a)  # a valid, unexpired link is dead with its job
    assert not job_tmp_dir(a).exists()
    assert httpx.get(url_b).status_code == 200, "the other running job lost its links"
    (entry,) = svc.audit.query(event=LINKS_EVENT, subject=f"job:{a}", since_seq=0)
    assert entry.details == {"served": 1}
    # opened again (a resumed job): a fresh key, the old links stay dead
    svc.uploads.materialize(a)
    svc.uploads.links.open(a, "http://x")
    _refused(url_a)


def test_an_upload_on_a_remote_cluster_without_links_is_a_clear_error(api):
    """Without ``upload_url`` a remote cluster's workers would look for the API's /dev/shm
    paths: refused before any work, naming the setting. A CLI registration is unaffected."""
    _, svc = api
    remote = ExecutorChoice(kind="ray", address="10.0.0.7:6379")
    with pytest.raises(ConfigError, match="VEILCHAIN_EXECUTOR__UPLOAD_URL"):
        upload_links.upload_locator(uuid.uuid4().hex, remote, svc.uploads.links)
    assert upload_links.upload_locator(None, remote, svc.uploads.links) is None
