"""Linear motion blur found in a whole image and undone before detection (``motion.py``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from veilchain.anonymizer.image_io import load_image
from veilchain.anonymizer.motion import (
    MotionBlur,
    deblur,
    estimate_motion_blur,
    line_kernel,
)

SAMPLES = Path(__file__).resolve().parents[2] / "src" / "veilchain" / "data" / "samples"


def _smeared(image: np.ndarray, length: float, angle: float) -> np.ndarray:
    k = line_kernel(length, angle)
    return cv2.filter2D(image, -1, k, borderType=cv2.BORDER_REFLECT)


def _angle_gap(a: float, b: float) -> float:
    return abs((a - b + 90.0) % 180.0 - 90.0)


def test_line_kernel_is_a_normalised_line_along_its_angle():
    k = line_kernel(17, 0.0)
    assert k.shape == (17, 17) and k.sum() == pytest.approx(1.0)
    assert k[8].sum() > 0.95  # horizontal: all its weight on the middle row
    v = line_kernel(17, 90.0)
    assert v[:, 8].sum() > 0.95


@pytest.mark.parametrize(("length", "angle"), [(13, 30.0), (21, 100.0), (25, 160.0)])
def test_the_estimate_finds_the_length_and_angle_of_a_smear(length, angle):
    """On a 512x640 photo (smears under about 6 px at the 320 px analysis copy go unseen)."""
    img = load_image(SAMPLES / "obama.jpg")
    blur = estimate_motion_blur(_smeared(img, length, angle))
    assert blur is not None
    assert _angle_gap(blur.angle, angle) <= 5.0
    assert abs(blur.length - length) <= 0.15 * length


@pytest.mark.parametrize("name", ["group.jpg", "obama.jpg", "astronaut.jpg"])
def test_sharp_photos_show_no_motion_blur(name):
    assert estimate_motion_blur(load_image(SAMPLES / name)) is None


def test_a_small_image_is_not_estimated():
    assert estimate_motion_blur(np.zeros((60, 60, 3), np.uint8)) is None


def test_deblur_brings_a_smeared_image_closer_to_the_sharp_one():
    img = load_image(SAMPLES / "obama.jpg")
    smeared = _smeared(img, 17, 45.0)
    blur = estimate_motion_blur(smeared)
    assert blur is not None
    sharp = deblur(smeared, blur)
    assert sharp.shape == img.shape and sharp.dtype == np.uint8
    core = (slice(40, -40), slice(40, -40))  # the borders ring (the transform wraps)

    def error(a: np.ndarray) -> float:
        return float(np.abs(a[core].astype(float) - img[core].astype(float)).mean())

    assert error(sharp) < 0.8 * error(smeared)


def test_deblur_with_the_wrong_direction_does_not_help():
    img = load_image(SAMPLES / "obama.jpg")
    smeared = _smeared(img, 17, 45.0)
    right = deblur(smeared, MotionBlur(45.0, 17.0, 99.0))
    wrong = deblur(smeared, MotionBlur(135.0, 17.0, 99.0))
    core = (slice(40, -40), slice(40, -40))
    err_right = np.abs(right[core].astype(float) - img[core]).mean()
    err_wrong = np.abs(wrong[core].astype(float) - img[core]).mean()
    assert err_right < err_wrong


def test_the_deblurred_pass_maps_faces_back_from_the_detection_resolution():
    """The copy is deblurred at the detection resolution: with a detector that halves the
    image, the face it finds there lies where the plain pass at that resolution puts it, in
    the image's own pixels."""
    from veilchain.anonymizer.detectors import CenterFaceDetector

    img = _smeared(load_image(SAMPLES / "obama.jpg"), 17, 30.0)
    detector = CenterFaceDetector(max_side=320)
    (plain,) = detector.detect_faces(img, threshold=0.15, verify=False)
    sharp = detector._deblurred(img, 0.15, 1.0)
    assert sharp
    a, b = np.array(sharp[0].box), np.array(plain.box)
    assert np.abs(a - b).max() < 0.1 * (b[2] - b[0])
    kp = sharp[0].keypoints
    assert kp is not None and (kp[:, 0] >= a[0]).all() and (kp[:, 0] <= a[2]).all()


def test_a_sharp_image_gets_no_deblurred_pass():
    from veilchain.anonymizer.detectors import CenterFaceDetector

    assert CenterFaceDetector()._deblurred(load_image(SAMPLES / "obama.jpg"), 0.15, 1.0) == []
