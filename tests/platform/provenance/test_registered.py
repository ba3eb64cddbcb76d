"""Content Credentials on registered images: every image of a registration is signed before
encryption, its manifest holds nothing from the original, the data set manifest publishes
the CA, and both readers validate every decrypted image against it."""

from __future__ import annotations

import hashlib

import pytest
from eth_account import Account

from tests.factories import make_settings
from tests.platform.provenance.test_credentials import flip_pixel_byte, independent, manifest_leaks
from veilchain.client import Grantee
from veilchain.platform.wiring import build_service


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    return build_service(make_settings(tmp_path_factory.mktemp("c2pa-svc")))


@pytest.fixture(scope="module")
def registered(svc, sample_inputs):
    return svc.register([sample_inputs], name="signed set", method="blur", allow_recognizable=True)


@pytest.fixture(scope="module")
def fetched(svc, registered):
    grantee = Account.create()
    svc.grant(registered.dataset_id, grantee.address, expires_at=svc.chain.block_timestamp() + 3600)
    g = Grantee(svc, grantee)
    return g, [g.fetch_checked(registered.dataset_id, i) for i in range(registered.records)]


def test_every_registered_image_carries_checked_credentials(svc, registered, fetched) -> None:
    _, images = fetched
    manifest = svc.manifest(registered.dataset_id)
    identity = svc.credentials().identity
    assert manifest.credentials == identity.public()
    for img in images:
        assert img.ok, img.problems
        c = img.credentials
        assert c["state"] == "Trusted" and c["signer"] == identity.institution
        assert c["anchor"]["registration"] == manifest.dataset_uid
        assert c["anchor"]["image_index"] == img.index
        assert c["summary"] == (
            f"anonymized with blur, ε –, by {identity.institution}, "
            f"anchored in data set {registered.dataset_id} v{registered.version}"
        )
        # the leaf commits to the signed bytes
        rec = manifest.records[img.index]
        assert hashlib.sha256(img.data).hexdigest() == rec.anonymized_sha256
        # the public description matches what the image says
        expected = svc.expected_credentials(registered.dataset_id, registered.version, img.index)
        assert expected["summary"] == c["summary"] and expected["anchor"] == c["anchor"]
        params = c["actions"][0]["parameters"]
        assert expected["method"] == params["org.veilchain.method"] == "blur"
        assert expected["epsilon"] == params["org.veilchain.epsilon"]
        assert expected["digital_source_type"] == c["actions"][0]["digitalSourceType"]
        assert expected["signer_serial"] == c["signer_serial"]


def test_no_manifest_holds_anything_from_the_original(registered, fetched, sample_inputs) -> None:
    _, images = fetched
    leaks = {}
    originals = sorted(sample_inputs.iterdir())
    for img in images:
        for orig in originals:  # any original could be this image's source
            found = manifest_leaks(img.data, orig.read_bytes(), orig.name)
            if found:
                leaks[img.image_id, orig.name] = found
    assert len(images) == len(originals) and leaks == {}


def test_independent_reader_validates_every_registered_image(svc, fetched, tmp_path) -> None:
    _, images = fetched
    files = []
    for img in images:
        files.append(tmp_path / f"{img.image_id}.png")
        files[-1].write_bytes(img.data)
    rc, untrusted = independent(files)
    assert rc == 0 and all(r["failures"] == ["signingCredential.untrusted"] for r in untrusted)
    ca = tmp_path / "ca.pem"
    manifest = svc.manifest(1)
    ca.write_text(manifest.credentials["ca_certificate"])
    rc, results = independent(files, trust=ca)
    assert rc == 0, results
    for img, r in zip(images, results, strict=True):
        assert r["state"] == "Trusted" and r["created"] and r["thumbnail"] is False
        assert r["anchor"]["registration"] == manifest.dataset_uid
        assert r["anchor"]["image_index"] == img.index and r["ingredients"] == 0


def test_a_flipped_pixel_byte_fails_the_credentials_check(svc, registered, fetched) -> None:
    _, images = fetched
    tampered = flip_pixel_byte(images[1].data)
    creds, problems = svc.check_credentials(registered.dataset_id, registered.version, 1, tampered)
    assert "assertion.dataHash.mismatch" in creds.failures
    assert any("Invalid" in p for p in problems), problems
    # and a good image checked as another record names the index
    _, problems = svc.check_credentials(registered.dataset_id, registered.version, 0,
                                        images[1].data)  # fmt: skip
    assert problems == ["anchor image_index 1 is not 0"]


def test_reencrypted_version_keeps_the_signed_bytes_and_they_still_check(
    svc, registered, fetched
) -> None:
    grantee, images = fetched
    new = svc.add_reencrypted_version(registered.dataset_id)
    again = grantee.fetch_checked(registered.dataset_id, 2, version=new.version)
    assert again.data == images[2].data and again.ok, again.problems
    assert again.credentials["summary"].endswith(f"data set {registered.dataset_id} v{new.version}")
    m = svc.manifest(registered.dataset_id, new.version)
    assert m.credentials is not None
    assert m.dataset_uid != again.credentials["anchor"]["registration"]
    expected = svc.expected_credentials(registered.dataset_id, new.version, 2)
    assert expected["anchor"] == again.credentials["anchor"]
