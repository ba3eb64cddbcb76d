"""Jobs are persisted, run outside requests, and resume after the API process dies."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.factories import api_settings, bearer, login, upload, wait_job
from veilchain.platform.api import create_app
from veilchain.platform.jobs import Job, get_job


class _Crash(BaseException):
    """Stands in for the process dying (SIGKILL) in the middle of a registration."""


def test_registration_resumes_after_restart(tmp_path):
    settings = api_settings(tmp_path, login_rate_per_minute=1000)
    app = create_app(settings, worker=False)  # nothing runs the queue: the job stays queued
    ctx = app.state.ctx
    with TestClient(app) as c:
        h = bearer(login(c, ctx.service.accounts["institution"]))
        job = upload(c, h)
        assert c.get(f"/jobs/{job['id']}", headers=h).json()["status"] == "queued"
        assert (tmp_path / "uploads" / job["id"]).is_dir()
        # Uploads are spooled encrypted, never as the plaintext originals.
        spooled = b"".join(p.read_bytes() for p in (tmp_path / "uploads" / job["id"]).iterdir())
        assert b"JFIF" not in spooled and b"Exif" not in spooled

        def crash_after_first(done, total, stage):
            if done >= 1 and stage.startswith("anonymize"):
                raise _Crash

        with ctx.session_factory() as s:
            s.execute(update(Job).where(Job.id == job["id"]).values(status="running"))
            s.commit()
            row = get_job(session=s, job_id=job["id"])
        with pytest.raises(_Crash):
            ctx.service.jobs._run_registration(row, crash_after_first)
        assert ctx.service.pending_registrations(), "a registration should be left half done"
    ctx.service.chain.backend.close()

    app2 = create_app(settings)  # the worker requeues the running job and resumes it
    with TestClient(app2) as c:
        h = bearer(login(c, app2.state.ctx.service.accounts["institution"]))
        done = wait_job(c, job["id"], h)
        assert done["status"] == "succeeded", done["error"]
        assert done["attempts"] == 1 and done["result"]["records"] == 3
        assert not app2.state.ctx.service.pending_registrations()
        ds = c.get(f"/datasets/{done['result']['dataset_id']}").json()
        assert ds["versions"][0]["record_count"] == 3
        assert not (tmp_path / "uploads" / job["id"]).exists()
    app2.state.ctx.service.chain.backend.close()


def test_failed_job_reports_reason_and_jobs_are_private(stack):
    c = stack.client
    h = stack.headers("institution")
    files = [("files", ("x.png", b"not an image at all", "image/png"))]
    r = c.post("/datasets", data={"name": "bad", "method": "mask"}, files=files, headers=h)
    assert r.status_code == 202
    done = wait_job(c, r.json()["id"], h)
    assert done["status"] == "failed" and done["error"] and "\n" not in done["error"]
    assert "Traceback" not in done["error"]
    other = c.get(f"/jobs/{done['id']}", headers=stack.headers("grantee"))
    assert other.status_code == 404
    assert c.get("/jobs", headers=stack.headers("grantee")).json()["count"] == 0
    assert c.get("/jobs", headers=h).json()["count"] >= 1


def test_upload_validation(stack):
    c, h = stack.client, stack.headers("institution")
    r = c.post("/datasets", data={"name": "x", "method": "nope"}, headers=h)
    assert r.status_code == 400 and "unknown method" in r.json()["detail"]
    r = c.post("/datasets", data={"name": "x", "method": "mask", "params": "[1]"}, headers=h)
    assert r.status_code == 400
    for method, params, says in [
        ("mask", '{"block": 12}', "unknown params block"),
        ("mask", '{"epsilon": 1}', "dp and dppix only"),
        ("dppix", '{"epsilon": -1}', "positive number"),
        ("dppix", '{"epsilon": NaN}', "positive number"),
        ("dppix", '{"epsilon": 1e400}', "positive number"),
        ("dppix", '{"seed": "7"}', "non-negative integer"),
    ]:
        data = {"name": "x", "method": method, "params": params}
        r = c.post("/datasets", data=data, headers=h)
        assert r.status_code == 400 and says in r.json()["detail"], (params, r.text)
    r = c.post("/datasets", data={"name": "x", "method": "mask"}, headers=h)
    assert r.status_code == 400 and "no images" in r.json()["detail"]
    files = [("archive", ("a.zip", b"PK-not-really", "application/zip"))]
    r = c.post("/datasets", data={"name": "x", "method": "mask"}, files=files, headers=h)
    assert r.status_code == 400 and "zip" in r.json()["detail"]
    r = c.post("/datasets", data={"name": "x", "method": "mask"}, headers=stack.headers("grantee"))
    assert r.status_code == 403


def test_zip_upload_registers(stack):
    import io
    import zipfile

    from tests.factories import SAMPLES

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in ("obama.jpg", "biden.jpg"):
            zf.writestr(f"photos/{name}", (SAMPLES / name).read_bytes())
        zf.writestr("__MACOSX/._obama.jpg", b"resource fork")
    h = stack.headers("institution")
    files = [("archive", ("photos.zip", buf.getvalue(), "application/zip"))]
    r = stack.client.post(
        "/datasets", data={"name": "zipped", "method": "mask"}, files=files, headers=h
    )
    assert r.status_code == 202, r.text
    done = wait_job(stack.client, r.json()["id"], h)
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["records"] == 2
    ds = stack.client.get(f"/datasets/{done['result']['dataset_id']}").json()
    assert ds["name"] == "zipped" and ds["uploader"] == stack.institution.address


def test_a_job_is_queued_only_once_its_uploads_are_spooled(stack, monkeypatch):
    """The worker may claim a queued job at once, so every upload must be on disk first (a
    job queued before its spool was complete registered 4 of 6 images)."""
    from veilchain.platform import jobs
    from veilchain.platform.uploads import spool_dir

    real = jobs.create_job
    seen = []

    def checked(*, job_id=None, **kw):
        seen.append(len(list(spool_dir(stack.service.uploads.data_dir, job_id).glob("*.bin"))))
        return real(job_id=job_id, **kw)

    monkeypatch.setattr(jobs, "create_job", checked)
    with stack.service.session_factory() as s:
        job = stack.service.submit_registration(
            s, owner="0x" + "11" * 20, name="spool", method="mask", params={},
            items=[b"a" * 10, b"b" * 10, b"c" * 10],
        )  # fmt: skip
    assert seen == [3]
    with stack.service.session_factory() as s:  # the bytes are no image: stop and shred it
        stack.service.abort_job(s, job.id, actor="0x" + "11" * 20, is_admin=True)


def test_reencryption_job_adds_a_version_under_fresh_keys(stack, dataset):
    c, h = stack.client, stack.headers("institution")
    ds = dataset["dataset_id"]
    before = c.get(f"/datasets/{ds}").json()["version_count"]
    r = c.post(f"/datasets/{ds}/reencryptions", headers=h)
    assert r.status_code == 202, r.text
    done = wait_job(c, r.json()["id"], h)
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["version"] == before + 1
    card = c.get(f"/datasets/{ds}").json()
    old, new = card["versions"][before - 1], card["versions"][before]
    assert new["record_count"] == old["record_count"]
    assert new["manifest_cid"] != old["manifest_cid"] and new["merkle_root"] != old["merkle_root"]
