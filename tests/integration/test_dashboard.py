"""The dashboard end to end in headless Chromium (Playwright driving /usr/bin/chromium) against
a real `veilchain serve` app on the embedded chain and block store.

Sign-in goes through the page's real wallet path: an EIP-1193 provider (`window.ethereum`)
is injected before the page loads, and its `personal_sign` is answered by eth_account in
this process with the key of whichever test account the wallet holds. Each role does its job:
the institution uploads, follows the job, reads the data set card, grants and revokes, manages
API keys; the auditor verifies, attests once and reads the audit trail; the grantee opens the
gallery and an image, signs out and nothing stays. The race and double-click cases of issue 22
have their own tests. With VEILCHAIN_SCREENSHOTS=docs/img the screenshots in docs/ are
rewritten.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from tests.servers import free_port
from tests.servers.api import serve_in_thread
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
ROOT = Path(__file__).resolve().parents[2]
AXE_JS = Path(os.environ.get("VEILCHAIN_AXE_JS", ROOT / "node_modules/axe-core/axe.min.js"))

# A standard EIP-1193 provider, as a wallet extension injects it. The key stays in Python:
# the page only sees addresses and signatures.
WALLET_JS = """
(() => {
  const listeners = {};
  window.ethereum = {
    isVeilchainTestWallet: true,
    async request({ method, params }) {
      if (method === "eth_requestAccounts" || method === "eth_accounts") {
        const a = await window.__wallet_address();
        return a ? [a.toLowerCase()] : [];
      }
      if (method === "eth_chainId") {
        return "0x" + Number(await window.__wallet_chain_id()).toString(16);
      }
      if (method === "personal_sign") {
        const sig = await window.__wallet_sign(params[0], params[1]);
        if (!sig) throw Object.assign(new Error("User rejected the request."), { code: 4001 });
        return sig;
      }
      throw Object.assign(new Error(`unsupported method ${method}`), { code: 4200 });
    },
    on(event, fn) { (listeners[event] ||= []).push(fn); },
    removeListener(event, fn) {
      listeners[event] = (listeners[event] || []).filter((f) => f !== fn);
    },
  };
})();
"""


class Wallet:
    """The test key behind the injected provider; `use()` switches account."""

    def __init__(self, chain_id: int):
        self.account = None
        self.chain_id = chain_id
        self.signed: list[str] = []

    def use(self, account) -> None:
        self.account = account

    def address(self) -> str | None:
        return self.account.address if self.account else None

    def sign(self, data_hex: str, address: str) -> str | None:
        if self.account is None or address.lower() != self.account.address.lower():
            return None
        message = bytes.fromhex(data_hex.removeprefix("0x"))
        self.signed.append(message.decode())
        sig = Account.sign_message(encode_defunct(primitive=message), self.account.key)
        return "0x" + sig.signature.hex().removeprefix("0x")


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
    clean = svc.register([SAMPLES / "obama2.jpg"], name="clean set", method="mask")
    inputs = [SAMPLES / n for n in ("obama.jpg", "biden.jpg", "obama3.jpg")]
    reg = svc.register(inputs, name="tampered set", method="mask")
    grantee = Account.create()
    svc.grant(reg.dataset_id, grantee.address, expires_at=svc.chain.block_timestamp() + 3600)
    # Tamper with image 1: flip one ciphertext byte in the block store.
    rec = svc.image_record(reg.dataset_id, 1)
    path = svc.storage.backend.object_path(rec["cid"])
    data = bytearray(path.read_bytes())
    data[100] ^= 0x80
    path.write_bytes(bytes(data))
    with serve_in_thread(app, port, timeout_s=30):
        yield {
            "origin": origin,
            "clean": clean.dataset_id,
            "dataset": reg.dataset_id,
            "grantee": grantee,
            "svc": svc,
            "chain_id": app.state.ctx.chain_id,
        }
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def ui(server, browser):
    """A fresh page with the injected wallet; fails the test on any uncaught page error."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    wallet = Wallet(server["chain_id"])
    context.expose_function("__wallet_address", wallet.address)
    context.expose_function("__wallet_sign", wallet.sign)
    context.expose_function("__wallet_chain_id", lambda: wallet.chain_id)
    context.add_init_script(WALLET_JS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server["origin"] + "/")
    page.get_by_test_id(f"dataset-{server['dataset']}").wait_for(timeout=15_000)
    yield page, wallet
    context.close()
    assert not errors, errors


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"dashboard-{name}.png"), full_page=True)


def sign_in(page, wallet, account, role_text: str | None = None) -> None:
    from playwright.sync_api import expect

    wallet.use(account)
    page.click("#connect-btn")
    expect(page.get_by_test_id("who")).to_contain_text(account.address)
    if role_text:
        expect(page.get_by_test_id("who")).to_contain_text(role_text)


def attestations(server, ds: int) -> list:
    body = httpx.get(f"{server['origin']}/datasets/{ds}", timeout=10).json()
    return body["versions"][-1]["attestations"]


def test_auditor_verifies_attests_once_and_reads_the_audit_trail(server, ui):
    from playwright.sync_api import expect

    page, wallet = ui
    svc, ds = server["svc"], server["dataset"]
    sign_in(page, wallet, svc.accounts["auditor"], "auditor")
    assert "Sign in to the Veilchain dashboard." in wallet.signed[-1]  # SIWE via personal_sign
    page.get_by_test_id(f"dataset-{ds}").click()
    expect(page.get_by_test_id("image-2")).to_be_visible()
    before = len(attestations(server, ds))
    page.evaluate(  # every text the progress shows, to check it says real numbers
        """() => { window.__progress = [];
          new MutationObserver(() => window.__progress.push(
            document.querySelector('#verify-status').textContent))
          .observe(document.querySelector('#verify-status'),
                   {childList: true, characterData: true, subtree: true}); }"""
    )
    page.dblclick("#attest-btn")  # one click, one transaction: the second click lands disabled
    expect(page.locator("#attest-btn")).to_be_disabled()
    summary = page.get_by_test_id("verdict-summary")
    expect(summary).to_contain_text("FAILED: 1 of 3", timeout=60_000)
    expect(page.locator("#attest-btn")).to_be_enabled()
    progress = page.evaluate("() => window.__progress")
    assert not [t for t in progress if "0/0" in t or "queued" in t], progress
    assert any(re.search(r"\b3 of 3\b", t) for t in progress), progress  # real counts
    flagged = page.get_by_test_id("image-1")
    expect(flagged).to_have_class("clickable bad")
    expect(flagged).to_contain_text("tampered")
    expect(page.get_by_test_id("image-0")).to_contain_text("verified")
    expect(page.get_by_test_id("attestations-1")).to_contain_text("failed by")
    assert len(attestations(server, ds)) == before + 1
    page.wait_for_timeout(1500)  # a second job, if one had been sent, would have attested by now
    assert len(attestations(server, ds)) == before + 1
    shot(page, "auditor")

    page.click("#tab-audit")
    expect(page.locator("#audit tbody tr").first).to_be_visible()
    page.click("#audit-anchor")
    expect(page.get_by_test_id("audit-status")).to_contain_text("anchored", timeout=30_000)
    page.click("#audit-verify")
    expect(page.get_by_test_id("audit-status")).to_contain_text("intact")
    expect(page.locator("#audit tbody")).to_contain_text("UTC")  # one time format
    shot(page, "audit")


def test_verification_result_stays_with_the_data_set_it_was_started_on(server, ui):
    """Issue 22: verify A, select B at once: A's PASSED must not appear under B."""
    from playwright.sync_api import expect

    page, wallet = ui
    svc, clean, tampered = server["svc"], server["clean"], server["dataset"]
    sign_in(page, wallet, svc.accounts["auditor"], "auditor")
    page.get_by_test_id(f"dataset-{clean}").click()
    expect(page.locator("#dataset-title")).to_contain_text("clean set")
    page.click("#verify-btn")
    page.get_by_test_id(f"dataset-{tampered}").click()
    expect(page.locator("#dataset-title")).to_contain_text("tampered set")
    expect(page.get_by_test_id("announce")).to_contain_text(
        f"Verification of data set {clean} version 1: passed", timeout=60_000
    )
    expect(page.get_by_test_id("verdict-summary")).to_have_count(0)  # nothing under B
    expect(page.locator("#verify-btn")).to_be_enabled()
    page.get_by_test_id(f"dataset-{clean}").click()
    expect(page.get_by_test_id("verdict-summary")).to_contain_text("PASSED")


def test_a_stale_card_response_is_discarded(server, ui):
    """Open A, whose answer is held back, then B: A's late answer must not replace B."""
    from playwright.sync_api import expect

    page, _ = ui
    clean, tampered = server["clean"], server["dataset"]
    held = []
    page.route(f"**/datasets/{clean}", lambda route: held.append(route))
    page.get_by_test_id(f"dataset-{clean}").click()
    deadline = time.monotonic() + 10
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert held, "the request for the first data set never left the page"
    page.get_by_test_id(f"dataset-{tampered}").click()
    expect(page.locator("#dataset-title")).to_contain_text("tampered set")
    held[0].continue_()
    page.wait_for_timeout(1000)
    expect(page.locator("#dataset-title")).to_contain_text("tampered set")
    expect(page.get_by_test_id("image-2")).to_be_visible()  # B's images, not A's single one


def test_institution_uploads_reads_the_card_grants_and_revokes(server, ui, tmp_path):
    from playwright.sync_api import expect

    page, wallet = ui
    svc = server["svc"]
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("obama.jpg", "biden.jpg"):
        shutil.copy(SAMPLES / name, folder / name)
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # hidden files are left out
    sign_in(page, wallet, svc.accounts["institution"], "institution")
    page.click("#tab-upload")
    expect(page.locator("#u-method option")).to_have_count(6)  # the method registry
    page.fill("#u-name", "uploaded in the browser")
    page.set_input_files("#u-folder", str(folder))  # a folder, as the folder picker gives it
    page.select_option("#u-method", "dppix")
    expect(page.locator("#u-epsilon")).to_be_visible()
    page.fill("#u-epsilon", "2")
    page.fill("#u-description", "Two portraits from the sample set.\nUploaded as a folder.")
    page.fill("#u-licence", "CC-BY-4.0")
    page.fill("#u-consent", "Both people shown agreed to publication (test data).")
    shot(page, "upload")
    page.click("#upload-btn")
    status = page.get_by_test_id("upload-status")
    expect(status).to_contain_text("registered as data set", timeout=180_000)
    expect(page.get_by_test_id("upload-result")).to_contain_text("bafk")
    page.click("#open-uploaded")

    card = page.get_by_test_id("dataset-card")
    expect(card).to_contain_text("uploaded in the browser")
    # the statements, as the manifest publishes them (the browser sent CRLF; LF is kept)
    assert page.get_by_test_id("fact-description").inner_text() == (
        "Two portraits from the sample set.\nUploaded as a folder."
    )
    expect(page.get_by_test_id("fact-licence")).to_have_text("CC-BY-4.0")
    expect(page.get_by_test_id("fact-consent")).to_have_text(
        "Both people shown agreed to publication (test data)."
    )
    expect(page.get_by_test_id("fig-images")).to_contain_text("2")
    expect(page.get_by_test_id("fig-epsilon")).to_contain_text("2")
    expect(page.get_by_test_id("fig-threshold")).to_contain_text("0.6")
    assert page.get_by_test_id("face-bar").count() >= 2  # a bar per face
    assert len(page.get_by_test_id("detector-hash").inner_text()) == 64
    assert len(page.get_by_test_id("model-hash").inner_text()) == 64
    expect(page.get_by_test_id("version-1")).to_contain_text("UTC")
    expect(page.get_by_test_id("preview")).to_contain_text("live grant")
    shot(page, "card")

    grantee = Account.create()
    page.fill("#grant-address", grantee.address)
    page.fill("#grant-expiry", "2030-01-01T12:00")
    page.click("#grant-btn")
    row = page.get_by_test_id(f"grant-{grantee.address}")
    expect(row).to_contain_text("live", timeout=30_000)
    expect(row).to_contain_text("2030-01-01")
    row.get_by_role("button", name="Revoke").click()
    expect(row).to_contain_text("revoked", timeout=30_000)
    page.click("#reencrypt-btn")  # true revocation: a new version under fresh keys
    expect(page.locator("#grant-status")).to_contain_text(
        "re-encrypted as version 2", timeout=180_000
    )
    expect(page.get_by_test_id("version-2")).to_be_visible()
    expect(page.get_by_test_id("fact-licence")).to_have_text("CC-BY-4.0")  # kept by version 2
    ds = int(page.locator("#datasets tr.selected").get_attribute("data-id"))
    v2 = svc.manifest(ds, 2)
    assert v2.statements is not None and v2.statements.licence == "CC-BY-4.0"

    page.click("#tab-keys")
    page.fill("#k-name", "ingest-1")
    page.click("#k-create")
    key = page.get_by_test_id("new-key-value").inner_text()
    assert httpx.get(f"{server['origin']}/auth/me", headers={"X-API-Key": key}).status_code == 200
    page.locator("#api-keys tr", has_text="ingest-1").get_by_role("button", name="Revoke").click()
    expect(page.locator("#api-keys tr", has_text="ingest-1")).to_contain_text("revoked")
    assert httpx.get(f"{server['origin']}/auth/me", headers={"X-API-Key": key}).status_code == 401

    page.click("#tab-jobs")
    expect(page.locator("#jobs tbody")).to_contain_text("register")
    expect(page.locator("#jobs tbody")).to_contain_text("succeeded")
    shot(page, "jobs")


def test_grantee_gallery_detail_and_sign_out_leaves_nothing(server, ui):
    from playwright.sync_api import expect

    page, wallet = ui
    ds = server["dataset"]
    sign_in(page, wallet, server["grantee"])
    page.click("#tab-gallery")
    page.select_option("#g-dataset", str(ds))
    page.click("#g-load")
    expect(page.get_by_test_id("g-status")).to_contain_text("2 of 3", timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=decrypted-0] img').naturalWidth > 0"
    )
    expect(page.get_by_test_id("refused-1")).to_be_visible()  # the tampered one
    page.get_by_test_id("decrypted-0").get_by_role("button").click()
    dialog = page.get_by_test_id("image-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("distance of each face")
    expect(dialog.get_by_test_id("face-bar")).to_have_count(1)
    expect(dialog).not_to_contain_text("object")  # no stringified DOM node or null
    expect(dialog.locator("img")).to_be_visible()
    expect(dialog.get_by_test_id("image-credentials")).to_contain_text(
        f"anonymized with mask, ε –, by Veilchain development institution, "
        f"anchored in data set {ds} v1"
    )
    shot(page, "grantee-detail")
    page.click("#image-dialog-close")
    shot(page, "grantee")

    page.click("#tab-datasets")
    page.get_by_test_id(f"dataset-{ds}").click()
    expect(page.get_by_test_id("preview-0")).to_be_visible()  # a grantee sees the preview
    page.click("#signout-btn")
    expect(page.get_by_test_id("who")).to_have_text("not signed in")
    assert page.locator("img").count() == 0  # no decrypted image left anywhere
    assert page.evaluate("() => document.querySelectorAll('#gallery *, #preview img').length") == 0
    expect(page.get_by_test_id("error")).to_be_hidden()
    expect(page.locator("#tab-gallery")).to_be_visible()
    page.click("#tab-gallery")
    page.click("#g-load")
    expect(page.get_by_test_id("error")).to_have_text("Sign in to see your images.")


def test_an_account_without_a_grant_gets_one_message(server, ui):
    from playwright.sync_api import expect

    page, wallet = ui
    sign_in(page, wallet, Account.create(), "no role")
    page.click("#tab-gallery")
    page.select_option("#g-dataset", str(server["dataset"]))
    page.click("#g-load")
    expect(page.get_by_test_id("no-grant")).to_contain_text("no live grant")
    expect(page.locator("#gallery figure")).to_have_count(0)


def test_signed_out_actions_and_bad_keys_read_plainly(server, ui):
    from playwright.sync_api import expect

    page, wallet = ui
    error = page.get_by_test_id("error")
    page.get_by_test_id(f"dataset-{server['clean']}").click()
    page.click("#verify-btn")
    expect(error).to_have_text("Sign in to run a verification.")
    assert "X-API-Key" not in error.inner_text()

    page.click("#dev-signin summary")  # the development switch
    page.fill("#key", "0x1234")
    page.click("#signin-btn")
    expect(error).to_contain_text("64 hexadecimal characters")
    page.fill("#key", "0x" + "00" * 32)
    page.click("#signin-btn")
    expect(error).to_contain_text("not a usable private key")
    page.fill("#key", "0x" + bytes(server["svc"].accounts["auditor"].key).hex())
    page.click("#signin-btn")
    expect(page.get_by_test_id("who")).to_contain_text("auditor")
    expect(error).to_be_hidden()  # the stale error went with the sign-in

    wallet.use(None)  # a wallet with no account
    page.click("#signout-btn")
    page.click("#connect-btn")
    expect(error).to_contain_text("wallet")
    assert "Expected" not in error.inner_text()


def test_token_expiry_clears_everything(server, browser):
    from playwright.sync_api import expect

    context = browser.new_context()
    page = context.new_page()
    page.clock.install()
    page.goto(server["origin"] + "/")
    page.get_by_test_id(f"dataset-{server['dataset']}").wait_for(timeout=15_000)
    page.click("#dev-signin summary")
    page.fill("#key", "0x" + bytes(server["svc"].accounts["auditor"].key).hex())
    page.click("#signin-btn")
    expect(page.get_by_test_id("who")).to_contain_text("auditor")
    page.click("#tab-audit")
    expect(page.locator("#audit tbody tr").first).to_be_visible()
    page.clock.run_for(16 * 60 * 1000)  # past the 15-minute token
    expect(page.get_by_test_id("who")).to_have_text("not signed in")
    expect(page.get_by_test_id("error")).to_contain_text("session has expired")
    expect(page.locator("#audit tbody tr")).to_have_count(0)
    context.close()


def test_dashboard_404_is_a_page_and_docs_work_offline(server, browser):
    from playwright.sync_api import expect

    r = httpx.get(server["origin"] + "/dashboard/nope", timeout=10)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "h-t-t-p" not in r.text and "Page not found" in r.text
    api404 = httpx.get(server["origin"] + "/no-such-route", timeout=10).json()
    assert api404["type"].endswith("/not-found"), api404

    docs = httpx.get(server["origin"] + "/docs", timeout=10)
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()
    context = browser.new_context()
    page = context.new_page()
    outside: list[str] = []  # code and styles from elsewhere (ReDoc's footer logo is an <img>)
    code = {"script", "stylesheet", "font", "fetch", "xhr"}
    page.on(
        "request",
        lambda req: (
            outside.append(req.url)
            if req.resource_type in code and not req.url.startswith((server["origin"], "blob:"))
            else None
        ),
    )
    page.goto(server["origin"] + "/docs")
    title = page.locator(".swagger-ui .info .title")
    expect(title).to_contain_text("Veilchain API", timeout=15_000)
    page.goto(server["origin"] + "/redoc")
    expect(page.locator("h1", has_text="Veilchain API")).to_be_visible(timeout=15_000)
    context.close()
    assert not outside, outside


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    page.evaluate(AXE_JS.read_text())  # evaluated by the driver: the page's CSP does not apply
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
            .filter((v) => v.impact === "serious" || v.impact === "critical")
            .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target).join(", ")})`)"""
    )
    return found


def test_no_serious_accessibility_violations(server, ui):
    from playwright.sync_api import expect

    if not AXE_JS.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{AXE_JS} is missing; `make` installs axe-core from package.json")
        pytest.skip(f"{AXE_JS} is missing; npm install (package.json pins axe-core)")
    page, wallet = ui
    problems = {"signed out": serious_violations(page)}
    sign_in(page, wallet, server["svc"].accounts["institution"], "institution")
    page.get_by_test_id(f"dataset-{server['dataset']}").click()
    expect(page.get_by_test_id("image-2")).to_be_visible()
    problems["data set card"] = serious_violations(page)
    for tab in ("upload", "keys", "jobs", "gallery"):
        page.click(f"#tab-{tab}")
        page.wait_for_timeout(300)
        problems[tab] = serious_violations(page)
    assert not any(problems.values()), problems


def test_zip_upload_and_phone_layout(server, ui, tmp_path):
    """A zip goes through the same job; the card reflows on a phone without sideways scroll."""
    import zipfile

    from playwright.sync_api import expect

    page, wallet = ui
    archive = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(SAMPLES / "obama2.jpg", "faces/obama2.jpg")
    sign_in(page, wallet, server["svc"].accounts["institution"], "institution")
    page.click("#tab-upload")
    page.fill("#u-name", "from a zip")
    page.set_input_files("#u-zip", str(archive))
    page.select_option("#u-method", "mask")
    expect(page.locator("#u-epsilon")).to_be_hidden()  # mask takes no budget
    page.click("#upload-btn")
    expect(page.get_by_test_id("upload-status")).to_contain_text(
        "registered as data set", timeout=180_000
    )
    page.click("#open-uploaded")
    expect(page.get_by_test_id("dataset-card")).to_contain_text("from a zip")
    expect(page.get_by_test_id("fig-images")).to_contain_text("1")

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    shot(page, "phone")
    assert overflow <= 1, f"the page scrolls sideways by {overflow} px on a phone"


def test_keyboard_reaches_and_opens_a_data_set(server, ui):
    from playwright.sync_api import expect

    page, _ = ui
    target = f"dataset-{server['dataset']}"
    for _ in range(40):  # Tab through the page until the row has focus
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.dataset.testid") == target:
            break
    else:
        pytest.fail(f"{target} is not reachable with Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#dataset-title")).to_contain_text("tampered set")
    expect(page.get_by_test_id("announce")).to_contain_text("Opened data set")
    for _ in range(60):  # and on to an image row, which opens its report
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.dataset.testid") == "image-0":
            break
    else:
        pytest.fail("image rows are not reachable with Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("image-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("image-dialog")).to_be_hidden()
