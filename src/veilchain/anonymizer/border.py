"""Faces cut by the image border, read on a copy padded by reflection.

CenterFace scores a face cut by the border low: what it sees ends at the image's edge, and
the network pads with zeros. Reflecting the image outwards continues the face past the
edge (a forehead cut below the eyebrows gets a mirrored second half), and the network then
sees a whole-looking head. On the recall set Biden's face cut at 57 % (forehead and brows,
53 px) scored 0.05 as it is and 0.38 on a copy reflected by 15 % of the image's shorter
side (read at 0.75 of the resolution). Reflection also makes faces of plain texture,
mostly at the corners, where it mirrors both ways; so only faces that stick out over
exactly one side of the image are kept, with their centre inside it (docs/anonymizer.md,
"Faces cut by the border").
"""

from __future__ import annotations

import cv2
import numpy as np

from veilchain.anonymizer.detectors import DetectedFace

#: The reflected margin on each side, as a fraction of the image's shorter side.
BORDER_PAD_FRACTION = 0.15
#: The reflected copy is read at this fraction of the detection resolution: Biden's cut face
#: scored 0.31-0.51 there whatever the margin (10-25 %), 0.19-0.71 at full resolution, and the
#: copy costs about half as much.
BORDER_SCALE = 0.75


def faces_across_border(
    detector, image: np.ndarray, threshold: float, scale: float = 1.0
) -> list[DetectedFace]:
    """CenterFace's faces (from ``threshold``, no verifier) on ``image`` reflected outwards by
    :data:`BORDER_PAD_FRACTION` of its shorter side and read at :data:`BORDER_SCALE` of the
    detection resolution, that cross exactly one of its sides and have their centre inside
    it, with boxes clipped to ``image`` and keypoints mapped back."""
    h, w = image.shape[:2]
    p = max(1, round(BORDER_PAD_FRACTION * min(h, w)))
    padded = cv2.copyMakeBorder(image, p, p, p, p, cv2.BORDER_REFLECT_101)
    side = getattr(detector, "max_side", max(h, w))  # read at the plain image's resolution
    scale *= BORDER_SCALE * min(1.0, side / max(h, w)) / min(1.0, side / (max(h, w) + 2 * p))
    out = []
    for face in detector.detect_faces(padded, threshold=threshold, scale=scale, verify=False):
        x0, y0, x1, y1 = (v - p for v in face.box)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        if not (0 <= cx < w and 0 <= cy < h):
            continue  # a face mirrored into the margin
        if sum((x0 < 0, y0 < 0, x1 > w - 1, y1 > h - 1)) != 1:
            continue  # inside the image (the plain pass's), or in a corner
        box = (max(x0, 0.0), max(y0, 0.0), min(x1, w - 1.0), min(y1, h - 1.0))
        kp = None if face.keypoints is None else (face.keypoints - p).astype(np.float32)
        out.append(DetectedFace(box, face.score, kp))
    return out
