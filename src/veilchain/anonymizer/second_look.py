"""The second look: sweep an anonymized image for faces that no anonymized region covers.

Detection can miss a face (a profile, a bowed head, a face rolled 45 degrees). Before an image
is published, :func:`uncovered_faces` runs the detector again on the *output*, at a lower
threshold, at half resolution, upright and on copies turned by ``angles`` degrees (a CNN
trained on upright faces misses strongly rolled ones), and returns every face whose centre is
not covered by a region the pipeline rewrote. The pipeline covers those with its fallback
region method (or, with ``strict``, refuses the image), so a face the first pass missed is
not published as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from veilchain.anonymizer.detectors import DetectedFace

#: Turned copies the sweep also looks at (degrees, counter-clockwise), at half resolution
#: (faces rolled that far are found from about 48 px tall).
DEFAULT_SWEEP_ANGLES = (-40.0, 40.0)
TURNED_SCALE = 0.5
#: The upright sweep of the output runs at half resolution (faces from about 32 px tall):
#: smaller faces scoring above the sweep's threshold are already taken, at full resolution,
#: by the detection pass (see ``Anonymizer._detect``).
UPRIGHT_SCALE = 0.5
#: A found face counts as covered when this fraction of its central region was rewritten.
COVERED_FRACTION = 0.5
#: The central region: this fraction of the box's width and height around its centre.
_CORE = 0.5


def detect_turned(
    detector, image: np.ndarray, angle: float, threshold: float, scale: float = TURNED_SCALE
):
    """Faces found on a copy of ``image`` turned by ``angle`` degrees (at ``scale`` of the
    detector's resolution), with boxes (the upright bounding boxes of the turned boxes) and
    keypoints mapped back to ``image``."""
    h, w = image.shape[:2]
    f = min(1.0, getattr(detector, "max_side", max(h, w)) / max(h, w)) * scale
    small = image
    if f < 1.0:  # shrink before turning: cheaper, and OpenCV warps at most 32767 px
        size = (max(1, round(w * f)), max(1, round(h * f)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    m = cv2.getRotationMatrix2D((sw / 2, sh / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(np.ceil(sh * sin + sw * cos)), int(np.ceil(sh * cos + sw * sin))
    m[:, 2] += (nw / 2 - sw / 2, nh / 2 - sh / 2)
    turned = cv2.warpAffine(small, m, (nw, nh), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT)  # fmt: skip
    inv = cv2.invertAffineTransform(m)
    inv *= np.array([[w / sw], [h / sh]])  # back to the full-resolution image
    out = []
    for face in detector.detect_faces(turned, threshold=threshold):
        x0, y0, x1, y1 = face.box
        corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) @ inv[:, :2].T + inv[:, 2]
        bx0, by0 = np.maximum(corners.min(0), 0)
        bx1, by1 = np.minimum(corners.max(0), [w - 1, h - 1])
        if bx1 - bx0 < 2 or by1 - by0 < 2:
            continue
        kp = None
        if face.keypoints is not None:
            kp = (face.keypoints @ inv[:, :2].T + inv[:, 2]).astype(np.float32)
        out.append(DetectedFace((bx0, by0, bx1, by1), face.score, kp))
    return out


def _core(box: Sequence[float], shape) -> tuple[slice, slice]:
    h, w = shape[:2]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    hw, hh = max((box[2] - box[0]) * _CORE / 2, 1), max((box[3] - box[1]) * _CORE / 2, 1)
    x0, x1 = int(np.clip(cx - hw, 0, w - 1)), int(np.clip(np.ceil(cx + hw), 1, w))
    y0, y1 = int(np.clip(cy - hh, 0, h - 1)), int(np.clip(np.ceil(cy + hh), 1, h))
    return slice(y0, max(y1, y0 + 1)), slice(x0, max(x1, x0 + 1))


def is_covered(box: Sequence[float], covered: np.ndarray) -> bool:
    """Whether the central region of ``box`` lies mostly inside the rewritten pixels."""
    return float(covered[_core(box, covered.shape)].mean()) >= COVERED_FRACTION


def uncovered_faces(
    detector,
    image: np.ndarray,
    covered: np.ndarray,
    *,
    threshold: float,
    angles: Sequence[float] = DEFAULT_SWEEP_ANGLES,
) -> tuple[list[DetectedFace], int]:
    """Faces the sweep finds in ``image`` outside ``covered`` (H, W bool), without duplicates,
    and how many faces it found in all."""
    found = list(detector.detect_faces(image, threshold=threshold, scale=UPRIGHT_SCALE))
    for angle in angles:
        found += detect_turned(detector, image, angle, threshold)
    found.sort(key=lambda f: -f.score)
    missed: list[DetectedFace] = []
    for face in found:
        if is_covered(face.box, covered):
            continue
        cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
        if any(m.box[0] <= cx <= m.box[2] and m.box[1] <= cy <= m.box[3] for m in missed):
            continue  # the same face, seen again in a turned copy
        missed.append(face)
    return missed, len(found)
