"""The second look's turned sweeps, run around uncovered candidates only (``second_look.py``)."""

from __future__ import annotations

import cv2
import numpy as np

from veilchain.anonymizer.detectors import CenterFaceDetector
from veilchain.anonymizer.faces import HogDetector
from veilchain.anonymizer.pipeline import Anonymizer
from veilchain.anonymizer.second_look import (
    DEFAULT_CANDIDATE_FLOOR,
    UPRIGHT_SCALE,
    _windows,
    is_covered,
    uncovered_faces,
)
from veilchain.anonymizer.wiring import build_anonymizer

SECRET = b"test-second-look"


def _rolled(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The image turned by ``angle`` degrees on a canvas that keeps every pixel, and the
    matrix from the image to the canvas."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    nw = int(abs(h * m[0, 1]) + abs(w * m[0, 0])) + 1
    nh = int(abs(h * m[0, 0]) + abs(w * m[0, 1])) + 1
    m[:, 2] += (nw / 2 - w / 2, nh / 2 - h / 2)
    return cv2.warpAffine(image, m, (nw, nh), borderMode=cv2.BORDER_REFLECT), m


def test_a_rolled_face_is_found_by_a_turned_window(sample):
    """Biden rolled 45 degrees, his face about 45 px tall, in a larger grey frame: CenterFace
    upright (the detection pass and the upright sweep) scores him under the sweep's threshold;
    with everything but his surroundings covered, the turned sweep runs in windows around the
    uncovered weak candidates (not over the whole image) and finds him; where he is covered
    too, the turned sweeps do not run at all. Through the pipeline (HOG, which misses him),
    the second look finds and covers him."""
    photo = cv2.resize(sample("biden.jpg"), None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
    (upright,) = CenterFaceDetector().detect_faces(photo)
    rolled, m = _rolled(photo, -45)
    img = np.full((480, 640, 3), 128, np.uint8)
    img[100 : 100 + rolled.shape[0], 200 : 200 + rolled.shape[1]] = rolled
    x0, y0, x1, y1 = upright.box
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) @ m[:, :2].T + m[:, 2] + (200, 100)
    det = CenterFaceDetector()
    assert not any(_holds(f.box, centre) for f in det.detect_faces(img, threshold=0.15))
    covered = np.ones(img.shape[:2], bool)
    cx, cy = centre.astype(int)
    covered[cy - 40 : cy + 40, cx - 40 : cx + 40] = False
    weak = det.detect_faces(img, threshold=DEFAULT_CANDIDATE_FLOOR, scale=UPRIGHT_SCALE)
    assert not any(f.score >= 0.15 and _holds(f.box, centre) for f in weak)
    around = [f for f in weak if not is_covered(f.box, covered)]
    assert around and _windows([f.box for f in around], img.shape) is not None
    missed, _ = uncovered_faces(det, img, covered, threshold=0.15)
    assert any(_holds(f.box, centre) for f in missed)
    everything = np.ones(img.shape[:2], bool)
    assert uncovered_faces(det, img, everything, threshold=0.15) == ([], 0)

    r = Anonymizer(HogDetector(), build_anonymizer("blur").method, secret=SECRET).anonymize(img)
    (face,) = [f for f in r.faces if _holds(f.box, centre)]
    assert face.found_by == "second_look"
    core = (slice(cy - 5, cy + 5), slice(cx - 5, cx + 5))
    assert np.abs(r.image[core].astype(int) - img[core].astype(int)).max() >= 3


def _holds(box, point) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def test_windows_merge_and_give_way_to_the_whole_image_when_they_would_cover_most_of_it():
    shape = (480, 640)
    assert _windows([(10, 10, 40, 40)], shape) == [(0, 0, 89, 89)]
    assert _windows([(10, 10, 40, 40), (20, 20, 30, 30)], shape) == [(0, 0, 89, 89)]
    merged = _windows([(10, 10, 40, 40), (100, 100, 130, 130)], shape)
    assert merged == [(0, 0, 179, 179)]  # two overlapping windows: their bounding box
    apart = _windows([(10, 10, 40, 40), (300, 300, 330, 330)], shape)
    assert apart == [(0, 0, 89, 89), (251, 251, 379, 379)]
    many = [(x, y, x + 60, y + 60) for x in range(0, 600, 120) for y in range(0, 440, 120)]
    assert _windows(many, shape) is None
