"""Plate candidates on people: the face stage tells the plates stage where a plate cannot be.

Photos of people gave the plate detectors plenty of candidates that are no plates: a tie's
stripes, a collar, buttons, a hat, a flag's stars and a dark suit read as rows of characters
or as a plate's shape (docs/anonymizer.md, "Plates on people"). Two rules rule such
candidates out, using only what the face stage found:

``on_faces``   95 % of the candidate's pixels or more were already rewritten by the face stage
               (the plate stage would draw over an anonymized face; what it would remove is
               gone, but for a sliver).
``on_people``  unread by OCR, at least ``MIN_HEIGHT`` face heights tall, and lying mostly on
               the person around or below a face the detector is sure of (not one it covered
               as ``low_score``) (:func:`person_quads`): the head (hair or a hat included: up
               to a face height above the face's centre) and the chest, from half a face
               height below the face's centre down to 3, 1.5 face widths to either side;
               both turn with the face's own down direction (eyes to mouth). A licence plate
               is not seen there: the head and the body hide what is behind them, and plates
               are about 0.4 m above the ground. With the camera level at about head height,
               one at the person's depth lies (h - 0.4) / f face heights below the face's
               centre, for a face h metres up and f tall: 5.5 for a standing adult ((1.6 -
               0.4) / 0.22), 3.6 seated (1.2 m), 3.3 for a child (1.0 m, 0.18 m tall); one
               nearer the camera lies lower still (a higher camera moves both further down).
               The height floor keeps the rule off the small plates under a face that is
               larger than life (a poster, a billboard): a plate is about half a face height
               tall at the person's depth.

Where the argument fails (docs/anonymizer.md, "Plates on people"): a crouching adult or a
small child, whose plate-height band comes within 3 face heights; a person lying down; a
face printed on a car (a sticker, an advert) that the detector is sure of, above the car's
unread plate.

A plate whose text OCR reads is redrawn wherever it is. The second look's candidates are
never read and are ruled out the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from veilchain.anonymizer.plates.detect import PlateDetection
from veilchain.anonymizer.plates.second_look import covered_fraction

#: The zones around a face, along its down direction in face heights from its centre, and to
#: either side in face widths: the head (and what is just above it), then the torso.
HEAD_TOP, HEAD_HALF_WIDTH = -1.0, 0.9
TORSO_TOP, TORSO_BOTTOM, TORSO_HALF_WIDTH = 0.5, 3.0, 1.5
#: ``on_people`` needs a candidate at least this many face heights tall.
MIN_HEIGHT = 0.4
#: A candidate is ruled out when this share of its quad lies on rewritten face pixels (what
#: is left outside them stays as it was: almost none of it), or in the person's zones.
ON_FACES_FRACTION = 0.95
ON_PEOPLE_FRACTION = 0.5


def _down(face) -> np.ndarray:
    """The face's down direction (unit vector, image coordinates): from the eyes' midpoint to
    the mouth's, from the detector's five keypoints, else the 68 landmarks."""
    if getattr(face, "keypoints", None) is not None:
        kp = np.asarray(face.keypoints, np.float64)
        eyes, mouth = kp[:2].mean(0), kp[3:5].mean(0)
    else:
        lm = np.asarray(face.landmarks, np.float64)
        eyes, mouth = lm[36:48].mean(0), lm[48:68].mean(0)
    d = mouth - eyes
    n = float(np.hypot(*d))
    return d / n if n > 1e-6 else np.array([0.0, 1.0])


def person_quads(face) -> list[np.ndarray]:
    """The head and torso zones of the person whose face is ``face``: two quads of 4 corners
    (x, y), see the module docstring."""
    x0, y0, x1, y1 = face.box
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    fw, fh = x1 - x0, y1 - y0
    down = _down(face)
    right = np.array([-down[1], down[0]])

    def band(top: float, bottom: float, half_width: float) -> np.ndarray:
        a, b = centre + top * fh * down, centre + bottom * fh * down
        side = half_width * fw * right
        return np.array([a - side, a + side, b + side, b - side], np.float32)

    return [
        band(HEAD_TOP, TORSO_TOP, HEAD_HALF_WIDTH),
        band(TORSO_TOP, TORSO_BOTTOM, TORSO_HALF_WIDTH),
    ]


class People:
    """The face stage's faces as the plates stage needs them: their boxes and zones."""

    def __init__(self, faces: Sequence) -> None:
        # faces the detector was unsure of (covered over the head as "low_score") do not
        # rule out what lies around them
        sure = [f for f in faces if getattr(f, "fallback", None) != "low_score"]
        self.boxes = [tuple(float(v) for v in f.box) for f in sure]
        self.zones = [person_quads(f) for f in sure]

    def ruled_out(
        self, plate: PlateDetection, read: bool, covered: np.ndarray | None
    ) -> str | None:
        """Why ``plate`` is no plate ("on_faces", "on_people"), or None: it is redrawn.
        ``covered``: the pixels the face stage rewrote."""
        if covered is not None and covered_fraction(plate.quad, covered) >= ON_FACES_FRACTION:
            return "on_faces"
        if read:
            return None
        for box, zones in zip(self.boxes, self.zones, strict=True):
            tall = plate.height >= MIN_HEIGHT * (box[3] - box[1])
            if tall and _inside(plate.quad, zones) >= ON_PEOPLE_FRACTION:
                return "on_people"
        return None


def _inside(quad: np.ndarray, zones: list[np.ndarray]) -> float:
    """The share of ``quad``'s pixels inside the union of ``zones`` (drawn in its box only)."""
    x0, y0 = np.floor(quad.min(0)).astype(int)
    x1, y1 = np.ceil(quad.max(0)).astype(int) + 1
    shift = np.array([x0, y0], np.float32)
    own = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillConvexPoly(own, np.round(quad - shift).astype(np.int32), 1)
    zone = np.zeros_like(own)
    for z in zones:
        cv2.fillConvexPoly(zone, np.round(z - shift).astype(np.int32), 1)
    n = int(own.sum())
    return float((own & zone).sum() / n) if n else 0.0
