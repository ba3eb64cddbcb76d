"""The second look: sweep an anonymized image for faces that no anonymized region covers.

Detection can miss a face (a profile, a bowed head, a face rolled 45 degrees). Before an image
is published, :func:`uncovered_faces` runs the detector again on the *output*, at a lower
threshold, at half resolution, upright and on copies turned by ``angles`` degrees (a CNN
trained on upright faces misses strongly rolled ones; the turned copies only around the
upright pass's uncovered weak candidates, see :data:`DEFAULT_CANDIDATE_FLOOR`, which also get
the detector's verifier's second opinion), and returns every face whose centre is not
covered by a region the pipeline rewrote (a dark image's output is swept brightened and,
upright, as it is too). The pipeline covers those with its fallback region method (or, with
``strict``, refuses the image), so a face the first pass missed is not published as it was.
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
#: The upright sweep's weak candidates (from this score up to the sweep's threshold) that no
#: rewritten region covers get the detector's verifier's second opinion (MTCNN, see
#: :mod:`veilchain.anonymizer.mtcnn`), and the turned sweeps look only around uncovered
#: candidates scoring at least this (a face rolled 40 degrees still lights CenterFace's
#: upright heatmap that much: the recall set's tilted faces, see docs/anonymizer.md
#: "Throughput"): a window of
#: :data:`TURN_WINDOW` times the candidate's size (at least :data:`TURN_WINDOW_MIN_PX`) around
#: each, overlapping windows merged. When the windows would cover more than
#: :data:`TURN_WHOLE_FRACTION` of the image, the whole image is turned instead.
DEFAULT_CANDIDATE_FLOOR = 0.02
TURN_WINDOW = 3.0
TURN_WINDOW_MIN_PX = 128
TURN_WHOLE_FRACTION = 0.5
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
    for face in _detect(detector, turned, threshold):
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


Window = tuple[int, int, int, int]


def _overlap(a: Window, b: Window) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _windows(boxes: Sequence[Sequence[float]], shape) -> list[Window] | None:
    """The windows (x0, y0, x1, y1) the turned sweeps look at around ``boxes`` (overlapping
    ones merged into their bounding box), or None when they would cover so much of the image
    that turning the whole of it is cheaper."""
    h, w = shape[:2]
    out: list[Window] = []
    for b in boxes:
        half = max(TURN_WINDOW * max(b[2] - b[0], b[3] - b[1]), TURN_WINDOW_MIN_PX) / 2
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        win = (x0, y0, int(min(w, np.ceil(cx + half))), int(min(h, np.ceil(cy + half))))
        while touching := [o for o in out if _overlap(o, win)]:  # merge until none overlaps
            out = [o for o in out if o not in touching]
            corners = np.array([win, *touching])
            win = (*corners[:, :2].min(0).tolist(), *corners[:, 2:].max(0).tolist())
        out.append(win)
        if sum((o[2] - o[0]) * (o[3] - o[1]) for o in out) > TURN_WHOLE_FRACTION * h * w:
            return None
    return out


def _turned_around(
    detector,
    image: np.ndarray,
    candidates: Sequence[DetectedFace],
    angles: Sequence[float],
    threshold: float,
) -> list[DetectedFace]:
    """Faces found on turned copies of the windows around ``candidates`` (see
    :data:`DEFAULT_CANDIDATE_FLOOR`), in ``image``'s pixels, at the resolution the whole image would
    be turned at."""
    if not candidates:
        return []
    windows = _windows([c.box for c in candidates], image.shape)
    if windows is None:
        return [f for a in angles for f in detect_turned(detector, image, a, threshold)]
    h, w = image.shape[:2]
    scale = min(1.0, getattr(detector, "max_side", max(h, w)) / max(h, w)) * TURNED_SCALE
    out = []
    for x0, y0, x1, y1 in windows:
        part = image[y0:y1, x0:x1]
        for angle in angles:
            for f in detect_turned(detector, part, angle, threshold, scale=scale):
                b = (f.box[0] + x0, f.box[1] + y0, f.box[2] + x0, f.box[3] + y0)
                kp = None if f.keypoints is None else f.keypoints + np.array([x0, y0], np.float32)
                out.append(DetectedFace(b, f.score, kp))
    return out


def _detect(detector, image: np.ndarray, threshold: float, scale: float = 1.0):
    """The sweep's detections, CenterFace's alone: :func:`uncovered_faces` shows the upright
    sweep's uncovered weak candidates to the verifier (verifying the turned copies' candidates
    found no further face on the recall set, only false positives)."""
    return detector.detect_faces(image, threshold=threshold, scale=scale, verify=False)


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
    candidate_floor: float = DEFAULT_CANDIDATE_FLOOR,
    also: np.ndarray | None = None,
) -> tuple[list[DetectedFace], int]:
    """Faces the sweep finds in ``image`` outside ``covered`` (H, W bool), without duplicates,
    and how many faces it found in all. Uncovered candidates from ``candidate_floor`` up to
    ``threshold`` are shown to the detector's verifier (when it has one), and the turned
    copies are swept around uncovered candidates only. ``also``: another view of the same
    pixels (the output as it is, when ``image`` is its brightened copy) that gets the upright
    pass too: brightening a dark image lifts most faces but buries a few in its noise."""
    found: list[DetectedFace] = []
    uncovered: list[DetectedFace] = []  # the turned copies look around those of ``image``
    for view in (image,) if also is None else (image, also):
        upright = _detect(detector, view, min(threshold, candidate_floor), scale=UPRIGHT_SCALE)
        found += [f for f in upright if f.score >= threshold]
        open_ = [f for f in upright if not is_covered(f.box, covered)]
        if view is image:
            uncovered = open_
        weak = [f for f in open_ if f.score < threshold]
        verifier = getattr(detector, "verifier", None)
        if verifier is not None and weak:
            boxes, scores = np.array([f.box for f in weak]), np.array([f.score for f in weak])
            found += verifier.verify(view, boxes, scores)
    if angles:
        found += _turned_around(detector, image, uncovered, angles, threshold)
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
