"""The candidate pass's second network, SSD MobileNetV1 from the npm package
``@vladmandic/face-api`` (``anonymizer/ssd_mobilenet.py``), rebuilt as ONNX from its weights."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from veilchain.anonymizer import ssd_mobilenet
from veilchain.anonymizer.detectors import build_detector
from veilchain.anonymizer.image_io import load_image
from veilchain.anonymizer.metrics import box_iou
from veilchain.anonymizer.ssd_mobilenet import MODEL_DIR_ENV, SsdFaces, model_dir
from veilchain.errors import ModelLoadError

RECALL = Path(__file__).resolve().parents[2] / "bench" / "data" / "recall"
PHOTOS = ("astronaut.jpg", "biden.jpg", "grace_hopper.jpg", "obama.jpg", "obama3.jpg")


@pytest.mark.parametrize("name", PHOTOS)
def test_the_network_finds_each_annotated_face_and_nothing_else(name):
    """On base photos of the recall set with one annotated face each (boxes drawn by eye), the
    network's one box lies on that face."""
    (face,) = json.loads((RECALL / "annotations.json").read_text())["images"][name]["faces"]
    boxes, scores = SsdFaces().detect(load_image(RECALL / "base" / name))
    assert len(boxes) == 1 and scores[0] >= 0.4
    assert box_iou(tuple(boxes[0]), tuple(face["box"])) >= 0.5


def test_few_face_free_scenes_get_a_box():
    """The 15 face-free scenes of the recall set: two get a box from 0.4 (a cat's face,
    chelsea.jpg, and a circuit board), the brick wall and the grass none."""
    marked = []
    for path in sorted((RECALL / "base" / "bg").glob("*.jpg")):
        boxes, _ = SsdFaces().detect(load_image(path))
        if len(boxes):
            marked.append(path.name)
    assert len(marked) <= 2 and "brick.jpg" not in marked and "grass.jpg" not in marked


def test_the_report_names_the_network_and_its_files_hash():
    """The default detector's description (the privacy report's, so the chain's) carries the
    second network's package, threshold and the sha256 of its manifest and weights."""
    d = model_dir()
    stem = "ssd_mobilenetv1_model"
    want = hashlib.sha256(
        (d / f"{stem}-weights_manifest.json").read_bytes() + (d / f"{stem}.bin").read_bytes()
    ).hexdigest()
    ssd = build_detector().describe()["ssd"]
    assert ssd == {"name": "ssd_mobilenetv1", "package": "@vladmandic/face-api@1.7.15",
                   "model_sha256": want, "threshold": 0.4}  # fmt: skip


def test_a_missing_or_damaged_model_is_a_clear_error(tmp_path, monkeypatch):
    """No model files: one line naming the fix; weights that do not match the manifest: an
    error, never a network built from shifted bytes."""
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path / "none"))
    ssd_mobilenet._onnx_model.cache_clear()
    try:
        with pytest.raises(ModelLoadError, match="make install"):
            SsdFaces().detect(np.zeros((64, 64, 3), np.uint8))
        copy = tmp_path / "model"
        copy.mkdir()
        monkeypatch.delenv(MODEL_DIR_ENV)
        for f in model_dir().glob("ssd_mobilenetv1_model*"):
            shutil.copy(f, copy / f.name)
        weights = copy / "ssd_mobilenetv1_model.bin"
        weights.write_bytes(weights.read_bytes()[:-100])
        monkeypatch.setenv(MODEL_DIR_ENV, str(copy))
        with pytest.raises(ModelLoadError, match="does not match its manifest"):
            SsdFaces().detect(np.zeros((64, 64, 3), np.uint8))
    finally:
        ssd_mobilenet._onnx_model.cache_clear()
