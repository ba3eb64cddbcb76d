"""Signing anonymized PNGs with Content Credentials and reading them back, with Veilchain's
reader and with the independent one (verifiers/c2pa/read_credentials.py, a separate process
that imports nothing from Veilchain)."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from veilchain.config import Settings
from veilchain.platform.provenance import (
    ANCHOR_LABEL,
    Anchor,
    CredentialsSigner,
    anchor_problems,
    load_signing_identity,
    read_credentials,
)

ROOT = Path(__file__).resolve().parents[3]
READER = ROOT / "verifiers" / "c2pa" / "read_credentials.py"
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def _png(seed: int = 0, size=(96, 128)) -> bytes:
    img = (np.random.default_rng(seed).random((*size, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    return load_signing_identity(Settings(data_dir=tmp_path_factory.mktemp("dd"), env="test"))


@pytest.fixture(scope="module")
def signer(identity):
    return CredentialsSigner(identity)


def _anchor(index: int = 2, **kw) -> Anchor:
    fields = dict(chain_id=1337, contract=CONTRACT, registration="ab" * 16, image_index=index,
                  image_id=f"{index:06d}")  # fmt: skip
    return Anchor(**{**fields, **kw})


def _sign(signer, png: bytes, method="ciagan", epsilon=None, anchor=None) -> bytes:
    definition = signer.definition(
        method=method, epsilon=epsilon, model_hash="0x" + "cd" * 32, anchor=anchor or _anchor()
    )
    return signer.sign_png(png, definition)


def flip_pixel_byte(png: bytes) -> bytes:
    """``png`` with one byte in the middle of its first IDAT chunk's data flipped and the
    chunk CRC fixed, so the file stays a well-formed PNG whose pixels changed."""
    pos = 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        if kind == b"IDAT":
            data = bytearray(png[pos + 8 : pos + 8 + length])
            data[length // 2] ^= 0x01
            crc = struct.pack(">I", zlib.crc32(kind + bytes(data)) & 0xFFFFFFFF)
            end = pos + 12 + length
            return png[: pos + 8] + bytes(data) + crc + png[end:]
        pos += 12 + length
    raise AssertionError("no IDAT chunk")


def independent(files, *, trust: Path | None = None) -> tuple[int, list[dict]]:
    cmd = [sys.executable, str(READER), "--expect-anchor", *map(str, files)]
    if trust:
        cmd[3:3] = ["--trust", str(trust)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, [json.loads(line) for line in r.stdout.splitlines()]


def test_signed_png_reads_valid_then_trusted_with_the_published_ca(signer, identity) -> None:
    signed = _sign(signer, _png())
    untrusted = read_credentials(signed)
    assert untrusted.state == "Valid" and untrusted.failures == ["signingCredential.untrusted"]
    trusted = read_credentials(signed, trust_pem=identity.ca_pem.decode())
    assert trusted.state == "Trusted" and trusted.failures == []
    assert trusted.signer == identity.institution
    assert trusted.signer_serial == identity.serial_hex
    action = trusted.actions[0]
    assert action["action"] == "c2pa.created"
    assert action["digitalSourceType"].endswith("/compositeWithTrainedAlgorithmicMedia")
    assert action["parameters"]["org.veilchain.method"] == "ciagan"
    assert trusted.anchor["registration"] == "ab" * 16 and trusted.anchor["image_index"] == 2
    assert anchor_problems(
        trusted, chain_id=1337, contract=CONTRACT.lower(), registration="ab" * 16,
        dataset_id=7, image_index=2, signer_serial=identity.serial_hex,
    ) == []  # fmt: skip


def test_region_methods_are_an_algorithmic_edit_with_their_epsilon(signer) -> None:
    creds = read_credentials(_sign(signer, _png(), method="dppix", epsilon=0.5))
    action = creds.actions[0]
    assert action["digitalSourceType"].endswith("/algorithmicallyEnhanced")
    assert action["parameters"]["org.veilchain.epsilon"] == "0.5"
    assert creds.summary(3, 1).endswith("anchored in data set 3 v1")


def test_another_ca_does_not_make_the_signature_trusted(signer, tmp_path) -> None:
    other = load_signing_identity(Settings(data_dir=tmp_path, env="test"))
    creds = read_credentials(_sign(signer, _png()), trust_pem=other.ca_pem.decode())
    assert creds.state == "Valid" and "signingCredential.untrusted" in creds.failures


def test_anchor_problems_name_each_field_that_points_elsewhere(signer, identity) -> None:
    creds = read_credentials(_sign(signer, _png()), trust_pem=identity.ca_pem.decode())
    problems = anchor_problems(
        creds, chain_id=1, contract="0x" + "00" * 20, registration="other", dataset_id=7,
        image_index=3, signer_serial="1234",
    )  # fmt: skip
    text = " | ".join(problems)
    for word in ("chain_id", "contract", "registration", "image_index", "certificate 1234"[-4:]):
        assert word in text, text
    # a data set id fixed at signing must match the chain's
    fixed = read_credentials(
        _sign(signer, _png(), anchor=_anchor(dataset_id=4)), trust_pem=identity.ca_pem.decode()
    )
    problems = anchor_problems(fixed, chain_id=1337, contract=CONTRACT, registration="ab" * 16,
                               dataset_id=5, image_index=2)  # fmt: skip
    assert problems == ["anchor dataset_id 4 is not 5"]
    unsigned = read_credentials(_png())
    assert not unsigned.present
    problems = anchor_problems(unsigned, chain_id=1337, contract=CONTRACT, registration="x",
                               dataset_id=1, image_index=0)  # fmt: skip
    assert problems == ["the image carries no Content Credentials"]


def test_one_flipped_pixel_byte_is_a_hash_mismatch_for_both_readers(
    signer, identity, tmp_path
) -> None:
    signed = _sign(signer, _png(3))
    tampered = flip_pixel_byte(signed)
    assert len(tampered) == len(signed) and tampered != signed
    ours = read_credentials(tampered, trust_pem=identity.ca_pem.decode())
    assert ours.state == "Invalid" and "assertion.dataHash.mismatch" in ours.failures
    assert anchor_problems(ours, chain_id=1337, contract=CONTRACT, registration="ab" * 16,
                           dataset_id=1, image_index=2)  # fmt: skip
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    good.write_bytes(signed)
    bad.write_bytes(tampered)
    ca = tmp_path / "ca.pem"
    ca.write_bytes(identity.ca_pem)
    rc, (g, b) = independent([good, bad], trust=ca)
    assert rc == 1
    assert g["state"] == "Trusted" and g["problems"] == []
    assert b["state"] == "Invalid" and "assertion.dataHash.mismatch" in b["failures"]


def test_independent_reader_untrusted_until_given_the_ca(signer, identity, tmp_path) -> None:
    f = tmp_path / "000002.png"
    f.write_bytes(_sign(signer, _png()))
    rc, [untrusted] = independent([f])
    assert rc == 0 and untrusted["state"] == "Valid"
    assert untrusted["failures"] == ["signingCredential.untrusted"]
    ca = tmp_path / "ca.pem"
    ca.write_bytes(identity.ca_pem)
    rc, [trusted] = independent([f], trust=ca)
    assert rc == 0 and trusted["state"] == "Trusted" and trusted["created"]
    assert trusted["signer"] == identity.institution
    assert trusted["anchor"]["contract"] == CONTRACT


def manifest_leaks(data: bytes, original: bytes, source_name: str) -> list[str]:
    """What in the C2PA manifest store of ``data`` could derive from the original: an
    ingredient, a thumbnail, an assertion other than the three Veilchain writes, or a string
    equal to a hash or the name of the original file."""
    import c2pa

    reader = c2pa.Reader("image/png", io.BytesIO(data))
    store = reader.json()
    detailed = reader.detailed_json()
    reader.close()
    leaks = []
    active = json.loads(store)["manifests"]
    for label, m in active.items():
        if m.get("ingredients"):
            leaks.append(f"{label}: ingredients")
        if m.get("thumbnail"):
            leaks.append(f"{label}: thumbnail")
        labels = {a["label"] for a in m.get("assertions", [])}
        if labels - {"c2pa.actions.v2", ANCHOR_LABEL}:
            leaks.append(f"{label}: assertions {sorted(labels)}")
    if len(active) != 1:
        leaks.append(f"{len(active)} manifests in the store")
    labels = set(json.loads(detailed)["manifests"][json.loads(store)["active_manifest"]]
                 ["assertion_store"])  # fmt: skip
    if labels - {"c2pa.actions.v2", ANCHOR_LABEL, "c2pa.hash.data"}:
        leaks.append(f"assertion store {sorted(labels)}")
    import base64

    for digest in (hashlib.sha256(original).digest(), hashlib.sha1(original).digest(),
                   hashlib.md5(original).digest()):  # fmt: skip
        for text in (digest.hex(), base64.b64encode(digest).decode()):
            if text in store or text in detailed:
                leaks.append("a hash of the original")
    if source_name in store or source_name in detailed:
        leaks.append("the original's file name")
    return leaks


def _blurred(png: bytes) -> bytes:
    """A stand-in for the anonymizer: the same picture with its middle blurred."""
    from PIL import ImageFilter

    img = Image.open(io.BytesIO(png)).convert("RGB")
    box = (16, 16, img.width - 16, img.height - 16)
    img.paste(img.crop(box).filter(ImageFilter.GaussianBlur(8)), box)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_nothing_in_the_manifest_derives_from_the_original(signer) -> None:
    original = _png(11)
    signed = _sign(signer, _blurred(original))
    assert manifest_leaks(signed, original, "holiday_photo.jpg") == []
    # the check can fail: a manifest that carries an ingredient and a thumbnail is caught
    import c2pa

    builder = c2pa.Builder(
        {
            **signer.definition(method="blur", epsilon=None, model_hash="0x00", anchor=_anchor()),
            "title": "holiday_photo.jpg",
        }  # fmt: skip
    )
    builder.add_ingredient({"title": "holiday_photo.jpg"}, "image/png", io.BytesIO(original))
    out = io.BytesIO()
    builder.sign(signer._signer, "image/png", io.BytesIO(original), out)
    leaks = manifest_leaks(out.getvalue(), original, "holiday_photo.jpg")
    assert any("ingredient" in leak for leak in leaks), leaks
    assert "the original's file name" in leaks


def test_mp4_output_is_signed_and_a_flipped_frame_byte_is_a_mismatch(
    signer, identity, tmp_path
) -> None:
    import cv2

    src = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for i in range(10):
        writer.write((np.random.default_rng(i).random((120, 160, 3)) * 255).astype(np.uint8))
    writer.release()
    definition = signer.definition(
        method="blur", epsilon=None, model_hash="0x00", anchor=None, mime="video/mp4"
    )
    signed = signer.sign(src.read_bytes(), definition, "video/mp4")
    creds = read_credentials(signed, trust_pem=identity.ca_pem.decode(), mime="video/mp4")
    assert creds.state == "Trusted" and creds.anchor is None
    good = tmp_path / "good.mp4"
    good.write_bytes(signed)
    assert cv2.VideoCapture(str(good)).read()[0]  # still a playable video
    tampered = bytearray(signed)
    tampered[signed.index(b"mdat") + 200] ^= 0x01
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(tampered))
    ours = read_credentials(bytes(tampered), trust_pem=identity.ca_pem.decode(), mime="video/mp4")
    assert ours.state == "Invalid" and "assertion.bmffHash.mismatch" in ours.failures
    ca = tmp_path / "ca.pem"
    ca.write_bytes(identity.ca_pem)
    r = subprocess.run([sys.executable, str(READER), "--trust", str(ca), str(good), str(bad)],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    g, b = (json.loads(line) for line in r.stdout.splitlines())
    assert r.returncode == 1 and g["state"] == "Trusted" and g["problems"] == []
    assert "assertion.bmffHash.mismatch" in b["failures"]


def test_the_data_set_manifest_publishes_the_signer(identity) -> None:
    from veilchain.errors import InputError
    from veilchain.platform.manifest import ImageRecord, Manifest

    rec = ImageRecord(0, "000000", "bafk", "ab" * 32, "cd" * 32, 10, 4, 3, {})
    manifest = Manifest(
        dataset_uid="u", name="n", institution="0x" + "11" * 20, chain_id=1337,
        contract=CONTRACT, method="blur", model_hash="0x00", params={},
        merkle_root="0x" + rec.leaf().hex(), records=[rec], proofs=[[]],
        credentials=identity.public(),
    )  # fmt: skip
    back = Manifest.from_bytes(manifest.to_bytes())
    assert back.credentials == identity.public()
    assert back.credentials["ca_certificate"] == identity.ca_pem.decode()
    broken = json.loads(manifest.to_bytes())
    broken["credentials"]["ca_sha256"] = 5
    import rfc8785

    with pytest.raises(InputError, match="credentials.ca_sha256 must be 64 hex"):
        Manifest.from_bytes(rfc8785.dumps(broken))
    without = Manifest.from_bytes(Manifest(**{**manifest.__dict__, "credentials": None}).to_bytes())
    assert without.credentials is None and b"credentials" not in without.to_bytes()


def test_feature_selective_generation_names_its_features(signer) -> None:
    definition = signer.definition(method="ciagan", epsilon=None, model_hash="0x00",
                                   anchor=_anchor(), features=["eyes", "nose"])  # fmt: skip
    creds = read_credentials(signer.sign_png(_png(), definition))
    assert creds.actions[0]["parameters"]["org.veilchain.features"] == ["eyes", "nose"]
    whole = read_credentials(_sign(signer, _png()))
    assert "org.veilchain.features" not in whole.actions[0]["parameters"]
