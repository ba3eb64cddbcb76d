"""Plates smeared by camera shake (plates/deblurred.py): the stage also reads a deblurred
copy of a motion-blurred image, and leaves a sharp image's detection as it was."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.anonymizer.test_plates import scene_with
from tests.anonymizer.test_plates_learned import _iou
from veilchain.anonymizer.image_io import load_image
from veilchain.anonymizer.plates import PlateDetector, build_plate_anonymizer
from veilchain.anonymizer.plates.deblurred import DeblurringDetector
from veilchain.anonymizer.plates.learned import LearnedPlateDetector, UnionDetector

REAL = Path(__file__).resolve().parents[2] / "bench/data/plates/real"


@pytest.fixture(scope="module")
def union() -> UnionDetector:
    return UnionDetector(PlateDetector(), LearnedPlateDetector())


def test_the_real_motion_blurred_plate_is_found_only_in_the_deblurred_copy(union):
    """OpenCV's licenseplate_motion.jpg: the camera moved, the plate is a smear to both
    detectors; the deblurred copy shows a row of characters where the plate is."""
    truth = json.loads((REAL / "ground_truth.json").read_text())["images"][0]
    img = load_image(REAL / truth["file"])
    quad = np.array(truth["plates"][0]["quad"])
    box = (*quad.min(0), *quad.max(0))
    assert all(_iou(d.box, box) < 0.3 for d in union.detect(img))
    found = DeblurringDetector(union).detect(img)
    assert [d for d in found if _iou(d.box, box) >= 0.3]


def test_the_stage_redraws_the_real_plate():
    truth = json.loads((REAL / "ground_truth.json").read_text())["images"][0]
    img = load_image(REAL / truth["file"])
    x0, y0 = np.array(truth["plates"][0]["quad"]).min(0).astype(int)
    x1, y1 = np.array(truth["plates"][0]["quad"]).max(0).astype(int)
    stage = build_plate_anonymizer(1.0)
    assert isinstance(stage.detector, DeblurringDetector)
    assert stage.privacy_params()["detector"]["deblur"] == {"min_chars": 3}
    out = img.copy()
    stage.anonymize(out, img, lambda i: np.random.default_rng(i), {})
    changed = np.abs(out[y0:y1, x0:x1].astype(int) - img[y0:y1, x0:x1].astype(int)).max(2) > 0
    assert changed.mean() > 0.5


def test_a_sharp_image_gets_the_inner_detection_alone(union):
    img, quad = scene_with("KL 4821", width=140, tilt=3.0, ink=60)
    assert quad is not None
    inner = union.detect(img)
    assert [d.box for d in DeblurringDetector(union).detect(img)] == [d.box for d in inner]
