"""POST /datasets takes the description, licence and consent statement; GET /datasets/{id}
shows them from the manifest; text that is not plain, or too long, is a 422 before any
upload is spooled."""

from __future__ import annotations

from tests.factories import SAMPLES, UPLOAD_NAMES, wait_job

CONSENT = "Every person shown signed the consent form of 2026-11-02.\r\nWithdrawal: privacy@x.org"


def _post(stack, **fields):
    files = [("files", (n, (SAMPLES / n).read_bytes(), "image/jpeg")) for n in UPLOAD_NAMES]
    return stack.client.post(
        "/datasets",
        data={"name": "staff", "method": "mask", "params": "{}", **fields},
        files=files,
        headers=stack.headers("institution"),
    )


def test_upload_with_statements_shows_them_on_the_data_set(stack):
    r = _post(stack, description="Staff portraits", licence="CC-BY-4.0", consent=CONSENT)
    assert r.status_code == 202, r.text
    done = wait_job(stack.client, r.json()["id"], stack.headers("institution"))
    assert done["status"] == "succeeded", done["error"]
    ds = stack.client.get(f"/datasets/{done['result']['dataset_id']}").json()
    assert ds["description"] == "Staff portraits" and ds["licence"] == "CC-BY-4.0"
    # a browser sends line breaks as CRLF; the manifest holds them as LF
    assert ds["consent"] == CONSENT.replace("\r\n", "\n")
    manifest = stack.service.manifest(done["result"]["dataset_id"])
    assert manifest.statements.consent == ds["consent"]


def test_upload_without_statements_shows_null(stack):
    r = _post(stack)
    assert r.status_code == 202, r.text
    done = wait_job(stack.client, r.json()["id"], stack.headers("institution"))
    assert done["status"] == "succeeded", done["error"]
    ds = stack.client.get(f"/datasets/{done['result']['dataset_id']}").json()
    assert ds["description"] is None and ds["licence"] is None and ds["consent"] is None


def test_bad_text_is_a_422_and_nothing_is_spooled(stack):
    uploads = stack.service.uploads.data_dir / "uploads"
    before = sorted(uploads.iterdir()) if uploads.exists() else []
    for fields, words in [
        ({"description": "ring \x07 bell"}, "control character U+0007"),
        ({"licence": "MIT\nand more"}, "the licence must be one line"),
        ({"consent": "x" * 8001}, "at most 8000"),
    ]:
        r = _post(stack, **fields)
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["code"] == "InvalidTextError" and words in problem["detail"], problem
        assert "\n" not in problem["detail"]
    assert (sorted(uploads.iterdir()) if uploads.exists() else []) == before
