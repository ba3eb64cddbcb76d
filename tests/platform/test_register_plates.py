"""A street photo registered with the default settings: its face and its licence plate are
both anonymized, and the published report, the manifest and the on-chain parameters record
both, each with its epsilon (issue 23's "done when")."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

from tests.factories import make_settings
from veilchain.anonymizer import load_image, save_image
from veilchain.anonymizer.plates import PlateDetector
from veilchain.platform.demo import samples_dir
from veilchain.platform.manifest import Manifest
from veilchain.platform.wiring import build_service

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "anonymizer"))
from test_plates import scene_with  # noqa: E402


def test_register_with_defaults_covers_faces_and_plates(tmp_path):
    img, quad = scene_with("KX47 ZTR", width=260, center=(900, 470))
    face = load_image(samples_dir() / "obama.jpg")
    face = cv2.resize(face, (face.shape[1] * 300 // face.shape[0], 300))
    img[40:340, 100 : 100 + face.shape[1]] = face
    src = tmp_path / "in"
    src.mkdir()
    save_image(img, src / "street.png")

    svc = build_service(make_settings(tmp_path / "svc"))
    res = svc.register([src], name="street", method="pixelate", allow_recognizable=True)
    ver = svc.chain.get_version(res.dataset_id, 1)
    params = json.loads(ver.params)
    assert params["plates"]["epsilon"] in (1.0, "1.0")  # publishable(): floats as text
    assert params["plates"]["mechanism"].startswith("k-ary randomized response")
    raw = svc.storage.cat(res.manifest_cid)
    manifest = Manifest.from_bytes(raw)
    (rec,) = manifest.records
    report = rec.report
    assert report["identifiers"] == ["faces", "plates"]
    assert len(report["faces"]) >= 1
    # the plate, read and given DP text; the learned plate detector also takes the suit and
    # shirt below the pasted face for a plate, which the stage rules out as on a person
    # (docs/anonymizer.md, "Plates on people")
    (plate,) = [p for p in report["plates"] if p["ocr_read"]]
    assert report["plates_ruled_out"]["on_people"] >= 1
    assert plate["epsilon"] in (1.0, "1.0")
    assert plate["action"] == "dp_text"
    assert all("box" not in p and "quad" not in p for p in report["plates"])
    assert all(p["action"] == "random_text" for p in report["plates"] if not p["ocr_read"])
    assert b"KX47" not in raw and b"ZTR" not in raw  # the plate's text is never published

    # the published pixels: the plate is redrawn, the face changed
    ciphertext = svc.storage.cat(rec.cid)
    png = svc.keys.decrypt(ciphertext, dataset=manifest.dataset_uid, image=rec.image_id)
    out = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    c = quad.mean(0)
    inner = np.zeros(img.shape[:2], np.uint8)
    cv2.fillConvexPoly(inner, np.round((quad - c) * 0.8 + c).astype(np.int32), 1)
    diff = np.abs(out.astype(int) - img.astype(int)).max(2)
    assert diff[inner > 0].mean() > 25
    assert (diff[40:340, 100 : 100 + face.shape[1]] > 10).mean() > 0.02  # the face, pixelated
    assert PlateDetector().detect(out), "a plate is still there, with other text"
