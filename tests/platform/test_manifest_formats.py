"""Manifest formats: format 2 is RFC 8785 canonical with safe numbers only; a format-1 data
set produced by the old code (tests/data/manifest_v1) still verifies, and tampering with it is
still named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.factories import make_settings
from veilchain.errors import InputError
from veilchain.platform.manifest import (
    MAX_SAFE_INTEGER,
    ImageRecord,
    Manifest,
    chain_params_text,
    jcs,
    publishable,
)
from veilchain.platform.wiring import build_service

V1 = Path(__file__).resolve().parents[1] / "data" / "manifest_v1"


def test_publishable_keeps_only_safe_integers():
    report = {"box": [123.0, 54.5], "key": 8190496352867231450, "n": 3, "ok": True, "x": None}
    out = publishable(report)
    assert out == {"box": ["123.0", "54.5"], "key": "8190496352867231450", "n": 3, "ok": True,
                   "x": None}  # fmt: skip
    assert publishable(out) == out
    assert publishable(MAX_SAFE_INTEGER) == MAX_SAFE_INTEGER
    assert publishable(-(MAX_SAFE_INTEGER + 1)) == str(-(MAX_SAFE_INTEGER + 1))
    assert jcs(out) == (
        b'{"box":["123.0","54.5"],"key":"8190496352867231450","n":3,"ok":true,"x":null}'
    )


def test_format2_record_hashes_the_jcs_of_the_published_report():
    rec = ImageRecord(0, "000000", "bafk", "00" * 32, "11" * 32, 1, 2, 3, {"d": 0.5, "é": 1})
    assert rec.report == {"d": "0.5", "é": 1}
    assert rec.report_bytes == '{"d":"0.5","é":1}'.encode()
    v1 = ImageRecord(0, "000000", "bafk", "00" * 32, "11" * 32, 1, 2, 3, {"d": 0.5}, 1)
    assert v1.report_bytes == b'{"d":0.5}' and v1.leaf() != rec.leaf()


def _manifest(**kw) -> Manifest:
    rec = ImageRecord(0, "000000", "bafk", "00" * 32, "11" * 32, 1, 2, 3, {"s": 0.25})
    return Manifest(
        "ab" * 16, "n", "0x" + "1" * 40, 1337, "0x" + "2" * 40, "blur", "0x" + "3" * 64,
        {"sigma_iod": 0.5, "seed": 0}, "0x" + rec.leaf().hex(), [rec], [[]], **kw,
    )  # fmt: skip


def test_format2_manifest_round_trips_and_refuses_non_canonical_bytes():
    m = _manifest()
    data = m.to_bytes()
    assert data.startswith(b'{"anonymization":{"epsilon_milli":0,"method":"blur"')
    assert b'"chain_id":"1337"' in data and b'"format":"veilchain-manifest/2"' in data
    back = Manifest.from_bytes(data)
    assert back.to_bytes() == data and back.format_version == 2
    assert chain_params_text(m.params) == '{"seed":0,"sigma_iod":"0.5"}'
    pretty = json.dumps(json.loads(data), indent=1).encode()
    with pytest.raises(InputError, match="RFC 8785 canonical form"):
        Manifest.from_bytes(pretty)
    with pytest.raises(InputError, match=r"safe integer at \$.records\[0\].size"):
        Manifest.from_bytes(data.replace(b'"size":1,', b'"size":1.5,'))
    with pytest.raises(InputError, match="unknown manifest format 'veilchain-manifest/9'"):
        Manifest.from_bytes(data.replace(b"manifest/2", b"manifest/9"))


@pytest.fixture(scope="module")
def v1_service(tmp_path_factory):
    """A fresh embedded chain with the fixture's accounts, holding the format-1 data set
    registered exactly as the old code registered it (same fields on chain)."""
    data_dir = tmp_path_factory.mktemp("v1")
    shutil.copytree(V1 / "keystore", data_dir / "keystore")
    svc = build_service(make_settings(data_dir))
    chain = json.loads((V1 / "chain.json").read_text())
    manifest = (V1 / "manifest.json").read_bytes()
    assert svc.storage.add(manifest) == chain["manifest_cid"]
    for rec in json.loads(manifest)["records"]:
        assert svc.storage.add((V1 / rec["cid"]).read_bytes()) == rec["cid"]
    ref = svc.as_role("institution").register_dataset(
        merkle_root=bytes.fromhex(chain["merkle_root"][2:]),
        record_count=chain["record_count"],
        manifest_cid=chain["manifest_cid"],
        model_hash=bytes.fromhex(chain["model_hash"][2:]),
        method=chain["method"],
        params=chain["params"],
        epsilon_milli=chain["epsilon_milli"],
    )
    return svc, ref.dataset_id


def test_format1_data_set_still_verifies(v1_service):
    svc, ds = v1_service
    manifest = svc.manifest(ds)
    assert manifest.format_version == 1
    assert manifest.contract == svc.chain.address  # the fixture's keys redeploy it there
    report = svc.verify(ds)
    assert report.ok, (report.problems, report.failing)
    assert len(report.images) == 2


def test_format1_flipped_byte_is_still_named(v1_service):
    svc, ds = v1_service
    rec = svc.manifest(ds).records[1]
    path = svc.storage.backend.object_path(rec.cid)
    original = path.read_bytes()
    path.write_bytes(original[:10] + bytes([original[10] ^ 1]) + original[11:])
    try:
        report = svc.verify(ds)
    finally:
        path.write_bytes(original)
    assert not report.ok and [i.image_id for i in report.failing] == ["000001"]


def test_format1_registration_resumed_after_the_upgrade_still_verifies(v1_service):
    """A format-1 manifest pinned before the upgrade, submitted by the new code (JCS params)."""
    svc, ds = v1_service
    ver = svc.chain.get_version(ds, 1)
    params = json.loads(ver.params)
    ref = svc.as_role("institution").add_version(
        ds, merkle_root=ver.merkle_root, record_count=ver.record_count,
        manifest_cid=ver.manifest_cid, model_hash=ver.model_hash, method=ver.method,
        params=chain_params_text(params), epsilon_milli=ver.epsilon_milli,
    )  # fmt: skip
    assert chain_params_text(params) != ver.params
    assert svc.verify(ds, ref.version).ok
    bad = svc.as_role("institution").add_version(
        ds, merkle_root=ver.merkle_root, record_count=ver.record_count,
        manifest_cid=ver.manifest_cid, model_hash=ver.model_hash, method=ver.method,
        params='{"sigma_iod":0.6}', epsilon_milli=ver.epsilon_milli,
    )  # fmt: skip
    report = svc.verify(ds, bad.version)
    assert not report.ok and report.problems == [
        "manifest anonymization.params differ from the chain's params"
    ]
