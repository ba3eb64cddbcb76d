"""The dashboard end to end in headless Chromium (Playwright driving /usr/bin/chromium):
open it, open a data set, run verification, see a tampered image flagged, sign in as a
grantee and see a decrypted image."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from eth_account import Account

from tests.servers import free_port
from veilchain.config import Settings
from veilchain.platform.api import create_app

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SAMPLES = Path(__file__).resolve().parents[2] / "src" / "veilchain" / "data" / "samples"
SHOTS = Path(os.environ.get("VEILCHAIN_SCREENSHOTS", "/tmp/veilchain-dashboard"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing; .ci/run installs it")
        pytest.skip("chromium is missing; apt-get install -y chromium")
    data_dir = tmp_path_factory.mktemp("dash")
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    settings = Settings(
        env="test", data_dir=data_dir, auth={"domain": f"127.0.0.1:{port}", "uri": origin}
    )
    app = create_app(settings)
    svc = app.state.ctx.service
    inputs = [SAMPLES / n for n in ("obama.jpg", "biden.jpg", "obama2.jpg")]
    reg = svc.register(inputs, name="dashboard demo", method="mask")
    grantee = Account.create()
    svc.grant(reg.dataset_id, grantee.address, expires_at=svc.chain.block_timestamp() + 3600)
    # Tamper with image 1: flip one ciphertext byte in the block store.
    rec = svc.image_record(reg.dataset_id, 1)
    path = svc.storage.backend.object_path(rec["cid"])
    data = bytearray(path.read_bytes())
    data[100] ^= 0x80
    path.write_bytes(bytes(data))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield {"origin": origin, "dataset": reg.dataset_id, "grantee": grantee, "svc": svc}
    server.should_exit = True
    thread.join(10)
    shutil.rmtree(data_dir, ignore_errors=True)


def test_auditor_and_grantee_views(server):
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    svc, ds = server["svc"], server["dataset"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server["origin"] + "/")
        expect(page.get_by_test_id(f"dataset-{ds}")).to_be_visible(timeout=15_000)

        # Auditor: sign in with the in-browser signer, open the data set, verify.
        auditor_key = "0x" + bytes(svc.accounts["auditor"].key).hex()
        page.fill("#key", auditor_key)
        page.click("#signin-btn")
        expect(page.get_by_test_id("who")).to_contain_text(svc.accounts["auditor"].address)
        expect(page.get_by_test_id("who")).to_contain_text("auditor")
        page.get_by_test_id(f"dataset-{ds}").click()
        expect(page.get_by_test_id("image-2")).to_be_visible()
        expect(page.get_by_test_id("credentials-2")).to_contain_text(
            f"anonymized with mask, ε –, by Veilchain development institution, "
            f"anchored in data set {ds} v1"
        )
        page.click("#verify-btn")
        summary = page.get_by_test_id("verdict-summary")
        expect(summary).to_contain_text("FAILED: 1 of 3", timeout=60_000)
        flagged = page.get_by_test_id("image-1")
        expect(flagged).to_have_class("bad")
        expect(flagged).to_contain_text("tampered")
        expect(page.get_by_test_id("image-0")).to_contain_text("ok")
        expect(page.locator(".version")).to_contain_text("failed by")  # attestation on chain
        page.click("#audit-anchor")
        expect(page.get_by_test_id("audit-status")).to_contain_text("anchored", timeout=30_000)
        page.click("#audit-verify")
        expect(page.get_by_test_id("audit-status")).to_contain_text("intact")
        page.screenshot(path=str(SHOTS / "auditor.png"), full_page=True)

        # Grantee: sign in with another key, see the granted images decrypted.
        page.click("#signout-btn")
        page.fill("#key", "0x" + bytes(server["grantee"].key).hex())
        page.click("#signin-btn")
        expect(page.get_by_test_id("who")).to_contain_text(server["grantee"].address)
        page.click("#tab-grantee")
        page.click("#g-load")
        expect(page.get_by_test_id("g-status")).to_contain_text("2 of 3", timeout=30_000)
        img = page.get_by_test_id("decrypted-0").locator("img")
        expect(img).to_be_visible()
        expect(page.get_by_test_id("decrypted-0")).to_contain_text("anonymized with mask")
        page.wait_for_function(
            "() => document.querySelector('[data-testid=decrypted-0] img').naturalWidth > 0"
        )
        expect(page.get_by_test_id("refused-1")).to_be_visible()  # the tampered one
        page.screenshot(path=str(SHOTS / "grantee.png"), full_page=True)
        browser.close()
    assert not errors, errors
    releases = svc.audit.query(event="release", limit=100)
    assert any(e.actor == server["grantee"].address for e in releases)
