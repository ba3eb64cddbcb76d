"""The learned plate detector (plates/learned.py): it finds a motion-blurred plate the
text-row detector misses, the stage joins the two, and its weights fail to load in one line."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from tests.anonymizer.test_plates import scene_with
from veilchain.anonymizer.ciagan import file_sha256
from veilchain.anonymizer.plates import PlateDetector, build_plate_anonymizer
from veilchain.anonymizer.plates.deblurred import DeblurringDetector
from veilchain.anonymizer.plates.learned import (
    WEIGHTS,
    LearnedPlateDetector,
    UnionDetector,
    load_net,
)
from veilchain.anonymizer.plates.second_look import sweep_detector
from veilchain.errors import ModelLoadError


def _motion_blur(img: np.ndarray, length: int, angle_deg: float) -> np.ndarray:
    """A line kernel ``length`` px long at ``angle_deg`` (as scripts/blur_plate_set.py)."""
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    dx, dy = math.cos(math.radians(angle_deg)) * c, -math.sin(math.radians(angle_deg)) * c
    cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
    return cv2.filter2D(img, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def blurred() -> tuple[np.ndarray, tuple]:
    """A plate 140 px wide (about 30 px tall, grey ink) smeared by a 21 px diagonal motion
    blur: its characters run into streaks, so no row of them is left."""
    img, quad = scene_with("KL 4821", width=140, tilt=3.0, ink=60)
    assert quad is not None
    box = (*quad.min(0), *quad.max(0))
    return _motion_blur(img, 21, 45.0), tuple(float(v) for v in box)


def test_the_net_finds_a_motion_blurred_plate_the_text_rows_miss(blurred):
    img, box = blurred
    for rows in (PlateDetector(), sweep_detector()):  # the first pass and the second look
        assert all(_iou(d.box, box) < 0.3 for d in rows.detect(img))
    learned = LearnedPlateDetector().detect(img)
    assert [d for d in learned if _iou(d.box, box) >= 0.3]
    assert all(d.source == "platenet" for d in learned)


def test_the_stage_redraws_the_blurred_plate(blurred):
    img, box = blurred
    stage = build_plate_anonymizer(1.0)
    assert isinstance(stage.detector, DeblurringDetector)
    assert isinstance(stage.detector.inner, UnionDetector)
    out = img.copy()
    reports = stage.anonymize(out, img, lambda i: np.random.default_rng(i), {})
    assert [r for r in reports if _iou(r.box, box) >= 0.3]
    x0, y0, x1, y1 = (round(v) for v in box)
    changed = np.abs(out[y0:y1, x0:x1].astype(int) - img[y0:y1, x0:x1].astype(int)).max(2) > 0
    assert changed.mean() > 0.8


def test_the_weights_hash_is_in_the_privacy_params():
    params = build_plate_anonymizer(1.0).privacy_params()
    assert params["detector"]["learned"]["weights_sha256"] == file_sha256(WEIGHTS)
    assert params["detector"]["text_rows"]["name"] == "text_rows"


def test_missing_weights_fail_in_one_line(tmp_path):
    with pytest.raises(ModelLoadError, match="missing") as exc:
        LearnedPlateDetector(tmp_path / "platenet.pt")
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_weights_fail_in_one_line(tmp_path, damage):
    path = tmp_path / "platenet.pt"
    blob = WEIGHTS.read_bytes()
    path.write_bytes(b"not a checkpoint" * 10 if damage == "garbage" else blob[: len(blob) // 2])
    with pytest.raises(ModelLoadError, match="cannot be loaded") as exc:
        load_net(path)
    assert "\n" not in str(exc.value)


def test_the_faded_plate_the_sweep_was_for_is_found_in_the_first_pass():
    from tests.anonymizer.test_plates import _faded_plate

    img, quad = _faded_plate()  # the text-row detector misses it (asserted there)
    out, sweep = img.copy(), {}
    stage = build_plate_anonymizer(1.0)
    reports = stage.anonymize(out, img, lambda i: np.random.default_rng(i), {}, sweep=sweep)
    assert [r.found_by for r in reports] == ["detection"] and sweep["uncovered"] == 0
