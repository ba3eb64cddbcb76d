"""The trust pipeline end to end on the embedded chain and block store: register, verify
(and every tamper case named), grants and key release (every refusal audited), rotation,
re-encryption as a new version, persistence across processes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from tests.factories import make_settings
from veilchain.client import Grantee, x25519_keypair_for
from veilchain.errors import (
    AccessDeniedError,
    AuthenticationError,
    RegistrationStateError,
)
from veilchain.platform.manifest import Manifest
from veilchain.platform.release import ReleaseRequest
from veilchain.platform.wiring import build_service

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    return build_service(make_settings(tmp_path_factory.mktemp("svc")))


@pytest.fixture(scope="module")
def registered(svc, sample_inputs):
    return svc.register([sample_inputs], name="test set", method="blur", allow_recognizable=True)


def _refusals(svc) -> list:
    return svc.audit.query(event="refusal", limit=1000)


def test_register_records_one_dataset_with_every_image(svc, registered):
    assert registered.records == 3
    assert registered.gas_used > 50_000 and registered.tx_hash.startswith("0x")
    ver = svc.chain.get_version(registered.dataset_id, 1)
    assert "0x" + ver.merkle_root.hex() == registered.merkle_root
    assert ver.manifest_cid == registered.manifest_cid
    assert ver.method == "blur" and ver.record_count == 3
    manifest = Manifest.from_bytes(svc.storage.cat(registered.manifest_cid))
    assert [r.image_id for r in manifest.records] == ["000000", "000001", "000002"]
    # the manifest publishes no original file names
    assert "astronaut" not in svc.storage.cat(registered.manifest_cid).decode()
    for rec in manifest.records:
        assert svc.storage.has(rec.cid)
        assert rec.report["faces"], "each sample photo has at least one face"
        assert "timing_s" not in rec.report  # run-dependent; published reports are not
        # nothing a holder of the original photo could recompute and match
        assert all(not {"box", "score", "key"} & set(f) for f in rec.report["faces"])
        assert rec.report["detector"]["name"] == "centerface"
        assert rec.report["detector"]["second_look"] is True
    # the detector is recorded on chain with the privacy parameters
    on_chain = json.loads(ver.params)["detector"]
    assert on_chain["name"] == "centerface" and len(on_chain["model_sha256"]) == 64
    assert on_chain == manifest.records[0].report["detector"]
    assert svc.keys.images_with_keys(manifest.dataset_uid) == {"000000", "000001", "000002"}


def test_verify_passes_and_every_proof_checks_on_chain(svc, registered):
    report = svc.verify(registered.dataset_id)
    assert report.ok and not report.problems and len(report.images) == 3
    for i in range(3):
        rec = svc.image_record(registered.dataset_id, i)
        proof = [bytes.fromhex(p[2:]) for p in rec["proof"]]
        assert svc.chain.verify_record(
            registered.dataset_id, 1, bytes.fromhex(rec["leaf"][2:]), proof
        )


def test_flipped_ciphertext_byte_is_named(svc, registered):
    rec = svc.image_record(registered.dataset_id, 1)
    path = svc.storage.backend.object_path(rec["cid"])
    original = path.read_bytes()
    data = bytearray(original)
    data[100] ^= 0x80
    path.write_bytes(bytes(data))
    try:
        report = svc.verify(registered.dataset_id)
    finally:
        path.write_bytes(original)
    assert not report.ok
    assert [i.image_id for i in report.failing] == ["000001"]
    assert "tampered" in report.failing[0].problems[0]
    assert svc.verify(registered.dataset_id).ok


def test_edited_manifest_is_caught(svc, registered):
    path = svc.storage.backend.object_path(registered.manifest_cid)
    original = path.read_bytes()
    edited = json.loads(original)
    edited["records"][0]["report"]["faces"] = []  # hide a face from the published report
    path.write_bytes(json.dumps(edited).encode())
    try:
        report = svc.verify(registered.dataset_id)
    finally:
        path.write_bytes(original)
    assert not report.ok
    assert "manifest" in report.problems[0] and registered.manifest_cid in report.problems[0]


def test_wrong_root_on_chain_is_caught(svc, registered):
    """A version whose on-chain root is not the manifest's: every record fails its proof."""
    ver = svc.chain.get_version(registered.dataset_id, 1)
    ref = svc.as_role("institution").add_version(
        registered.dataset_id,
        merkle_root=b"\x11" * 32,
        record_count=ver.record_count,
        manifest_cid=ver.manifest_cid,
        model_hash=ver.model_hash,
        method=ver.method,
        params=ver.params,
        epsilon_milli=ver.epsilon_milli,
    )
    report = svc.verify(registered.dataset_id, ref.version)
    assert not report.ok
    assert any("differs from the chain" in p for p in report.problems)
    assert len(report.failing) == 3
    assert all("Merkle root" in i.problems[0] for i in report.failing)


def test_grantee_fetches_exactly_the_anonymized_output(svc, registered):
    grantee = Account.create()
    svc.grant(registered.dataset_id, grantee.address, expires_at=svc.chain.block_timestamp() + 3600)
    plain = Grantee(svc, grantee).fetch(registered.dataset_id, 2, version=1)
    assert (
        hashlib.sha256(plain).hexdigest()
        == svc.image_record(registered.dataset_id, 2, 1)["anonymized_sha256"]
    )
    assert plain[:8] == b"\x89PNG\r\n\x1a\n"
    releases = svc.audit.query(event="release", limit=1000)
    assert any(e.actor == grantee.address for e in releases)
    # the audit log never holds key material
    assert all("key" not in json.dumps(e.details).lower().replace("public", "") for e in releases)


def _request(svc, account, dataset_id, **kw):
    _, pk = x25519_keypair_for(account)
    return ReleaseRequest.create(
        account,
        chain_id=svc.chain_id,
        contract=svc.chain.address,
        dataset_id=dataset_id,
        version=1,
        image_id="000000",
        recipient_public_key=pk,
        **kw,
    )


def test_no_grant_is_refused_and_audited(svc, registered):
    stranger = Account.create()
    before = len(_refusals(svc))
    with pytest.raises(AccessDeniedError, match="no live grant"):
        svc.release_key(_request(svc, stranger, registered.dataset_id))
    after = _refusals(svc)
    assert len(after) == before + 1 and after[-1].actor == stranger.address


def test_expired_grant_is_refused(svc, registered):
    grantee = Account.create()
    svc.grant(registered.dataset_id, grantee.address, expires_at=svc.chain.block_timestamp() + 60)
    svc.release_key(_request(svc, grantee, registered.dataset_id))  # live now
    svc.chain.backend.advance_time(120)
    with pytest.raises(AccessDeniedError):
        svc.release_key(_request(svc, grantee, registered.dataset_id))


def test_revoked_grant_is_refused(svc, registered):
    grantee = Account.create()
    svc.grant(registered.dataset_id, grantee.address, expires_at=svc.chain.block_timestamp() + 3600)
    svc.revoke(registered.dataset_id, grantee.address)
    with pytest.raises(AccessDeniedError):
        Grantee(svc, grantee).fetch(registered.dataset_id, 0)


def test_wrong_signer_and_edited_request_are_refused(svc, registered):
    grantee, stranger = Account.create(), Account.create()
    svc.grant(registered.dataset_id, grantee.address, expires_at=svc.chain.block_timestamp() + 3600)
    # a stranger signs a request naming the grantee's key: the signer has no grant
    _, grantee_pk = x25519_keypair_for(grantee)
    forged = ReleaseRequest.create(
        stranger, chain_id=svc.chain_id, contract=svc.chain.address,
        dataset_id=registered.dataset_id, version=1, image_id="000000",
        recipient_public_key=grantee_pk,
    )  # fmt: skip
    with pytest.raises(AccessDeniedError):
        svc.release_key(forged)
    # the grantee's request, edited after signing to send the key to the stranger's key
    good = _request(svc, grantee, registered.dataset_id)
    body = json.loads(good.message)
    body["recipient"] = x25519_keypair_for(stranger)[1].hex()
    edited = ReleaseRequest(json.dumps(body, sort_keys=True, separators=(",", ":")), good.signature)
    with pytest.raises(AccessDeniedError):
        svc.release_key(edited)


def test_replayed_and_stale_requests_are_refused(svc, registered):
    grantee = Account.create()
    svc.grant(registered.dataset_id, grantee.address, expires_at=svc.chain.block_timestamp() + 3600)
    req = _request(svc, grantee, registered.dataset_id)
    svc.release_key(req)
    with pytest.raises(AuthenticationError, match="replay"):
        svc.release_key(req)
    stale = _request(svc, grantee, registered.dataset_id, issued_at=1_000_000)
    with pytest.raises(AuthenticationError, match="expired"):
        svc.release_key(stale)
    with pytest.raises(AuthenticationError):
        svc.release_key(ReleaseRequest("not json", "0x00"))


def test_rotation_rewraps_and_images_still_decrypt(svc, registered):
    grantee = Account.create()
    svc.grant(registered.dataset_id, grantee.address, expires_at=svc.chain.block_timestamp() + 3600)
    before = Grantee(svc, grantee).fetch(registered.dataset_id, 0, version=1)
    result = svc.rotate_keys()
    status = svc.keys.status()
    assert result["current_version"] == status.current_version >= 2
    svc.keys.set_min_decryption_version(result["current_version"])
    assert Grantee(svc, grantee).fetch(registered.dataset_id, 0, version=1) == before
    assert svc.audit.query(event="rotation", limit=10)


def test_reencrypted_version_has_new_keys_and_cids(svc, registered):
    grantee = Account.create()
    svc.grant(registered.dataset_id, grantee.address, expires_at=svc.chain.block_timestamp() + 3600)
    old = Grantee(svc, grantee).fetch(registered.dataset_id, 1, version=1)
    new = svc.add_reencrypted_version(registered.dataset_id)
    assert new.dataset_id == registered.dataset_id and new.version >= 2
    assert svc.verify(registered.dataset_id, new.version).ok
    m_old = svc.manifest(registered.dataset_id, 1)
    m_new = svc.manifest(registered.dataset_id, new.version)
    assert m_new.previous_manifest_cid == registered.manifest_cid
    assert {r.cid for r in m_old.records}.isdisjoint({r.cid for r in m_new.records})
    assert [r.anonymized_sha256 for r in m_old.records] == [
        r.anonymized_sha256 for r in m_new.records
    ]
    assert Grantee(svc, grantee).fetch(registered.dataset_id, 1, version=new.version) == old


def test_audit_log_verifies_and_anchors_on_chain(svc, registered):
    anchor = svc.anchor_audit()
    assert svc.audit.verify().ok
    on_chain = svc.chain.latest_audit_anchor()
    assert "0x" + on_chain.root.hex() == anchor["root"] and on_chain.entry_count == anchor["count"]


def test_resume_with_nothing_pending_is_a_clear_error(svc, registered):
    with pytest.raises(RegistrationStateError, match="no interrupted registration"):
        svc.resume()


def test_register_in_one_process_verify_in_the_next(tmp_path, sample_inputs):
    env_dir = tmp_path / "data"
    cli = [sys.executable, "-m", "veilchain.cli", "--data-dir", str(env_dir)]
    reg = subprocess.run(
        [*cli, "register", str(sample_inputs / "obama.jpg"), "--name", "p", "--method", "mask",
         "--allow-recognizable", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert reg.returncode == 0, reg.stderr
    dataset_id = json.loads(reg.stdout)[0]["dataset_id"]
    ver = subprocess.run(
        [*cli, "verify", str(dataset_id), "--json"], capture_output=True, text=True, timeout=300
    )
    assert ver.returncode == 0, ver.stderr
    assert json.loads(ver.stdout)["ok"] is True
    missing = subprocess.run([*cli, "verify", "99"], capture_output=True, text=True, timeout=300)
    assert missing.returncode == 7 and "error: no data set 99" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_cid_command_prints_the_kubo_cid(tmp_path):
    import random

    f = tmp_path / "blob"
    f.write_bytes(random.Random(1024).randbytes(1024))
    out = subprocess.run(
        [sys.executable, "-m", "veilchain.cli", "cid", str(f)], capture_output=True, text=True
    )
    assert out.stdout.strip() == "bafkreih6vqr7rbur3e4fis43f4uxhul2vuqevbeibfyb4msmw76no52iua"


def test_missing_input_is_a_one_line_error(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "veilchain.cli", "--data-dir", str(tmp_path), "register",
         str(tmp_path / "nope"), "--name", "x"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert [line for line in out.stderr.splitlines() if line.strip()] == [
        f"error: {tmp_path / 'nope'}: no such file or folder"
    ]


def test_no_plaintext_image_written_to_data_dir(svc, registered, sample_inputs):
    """Every file the platform wrote is ciphertext, JSON, keystore or database: no image."""
    data_dir = Path(svc.keystore.directory).parent
    for p in data_dir.rglob("*"):
        if p.is_file():
            head = p.read_bytes()[:8]
            assert not head.startswith(b"\x89PNG") and not head.startswith(b"\xff\xd8"), p
