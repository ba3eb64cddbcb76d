"""A plate's whole extent: the found quad, grown along its row and across it while the plate
goes on.

A detection can cover only part of a plate: blur runs the characters of a Russian plate's
number and its boxed region code into separate smears, and a detector then takes the number
alone; on a US plate the row of characters is found and the state's name above it is not.
What the quad leaves out is published as it was (docs/anonymizer.md, "The whole plate").
:func:`whole_plate` rectifies a band around the quad (``MAX_GROWTH`` of its length to each
side, a quad height above and below), takes the colours around the plate from the band's
top rows and its bottom rows right above and below the quad (a car's paint, its bumper, the
road), and grows the quad column by column to either side, then row by row up and down,
while most of the pixels there differ from both (a plate's ground and its characters do)
and lie inside the image. A quad that does not stand out from what is around it is kept as
it was.
"""

from __future__ import annotations

import cv2
import numpy as np

#: How far the quad may grow: to each side in its own lengths, up and down in its heights.
MAX_GROWTH = 1.5
MAX_GROWTH_ACROSS = 0.6
#: Band resolution: rows per quad height (columns at the same scale).
BAND_PX = 16
#: A pixel is off the body when its colour is this far from the body's (RGB distance, or
#: ``BODY_SPREAD`` times the body's own median deviation when that is larger).
OFF_BODY = 30.0
BODY_SPREAD = 4.0
#: A column (row) is plate while this share of its pixels are off the body; the quad's own
#: columns must mostly be (``OWN_SHARE``) for it to grow at all.
PLATE_SHARE = 0.6
OWN_SHARE = 0.7
#: Columns or rows off the plate that it may hold and go on (a separator line, a screw).
MAX_GAP = 2


def whole_plate(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """``quad`` (TL, TR, BR, BL) grown over the rest of its plate; see the module docstring.
    ``image``: RGB."""
    q = np.asarray(quad, np.float64)
    along = ((q[1] - q[0]) + (q[2] - q[3])) / 2
    down = ((q[3] - q[0]) + (q[2] - q[1])) / 2
    length, height = float(np.hypot(*along)), float(np.hypot(*down))
    if length < 4 or height < 4:
        return np.asarray(quad, np.float32)
    n_mid = max(round(length / height * BAND_PX), 1)
    n_side = round(MAX_GROWTH * n_mid)
    band, inside = _rectified(image, q, along / n_mid, down / BAND_PX, n_side, n_mid)
    # off the body (unlike both what is above the plate and what is below it: a car's paint
    # and its bumper, or the road), and inside the image: a plate cut by the border stops there
    off = inside.copy()
    mid = slice(n_side, n_side + n_mid)  # the colours right above and below the quad
    for outer in (band[: BAND_PX // 4, mid], band[-BAND_PX // 4 :, mid]):
        body = np.median(outer.reshape(-1, 3), 0)
        spread = float(np.median(np.linalg.norm(outer - body, axis=2)))
        off &= np.linalg.norm(band - body, axis=2) > max(OFF_BODY, BODY_SPREAD * spread)
    cols = off[BAND_PX : 2 * BAND_PX].mean(0) >= PLATE_SHARE
    if cols[n_side : n_side + n_mid].mean() < OWN_SHARE:
        return np.asarray(quad, np.float32)
    left = _run(cols[:n_side][::-1])
    right = _run(cols[n_side + n_mid :])
    span = off[:, n_side - left : n_side + n_mid + right]
    rows = span.mean(1) >= PLATE_SHARE
    reach = round(MAX_GROWTH_ACROSS * BAND_PX)
    up = _run(rows[BAND_PX - reach : BAND_PX][::-1])
    below = _run(rows[2 * BAND_PX : 2 * BAND_PX + reach])
    step_a, step_d = along / n_mid, down / BAND_PX
    grown = q.copy()
    grown[[0, 3]] -= left * step_a
    grown[[1, 2]] += right * step_a
    grown[[0, 1]] -= up * step_d
    grown[[2, 3]] += below * step_d
    return grown.astype(np.float32)


def _rectified(image, q, step_a, step_d, n_side: int, n_mid: int) -> tuple[np.ndarray, np.ndarray]:
    """The band around ``q``, warped to a rectangle: ``n_side`` columns to each side of the
    quad's ``n_mid``, ``BAND_PX`` rows above and below its ``BAND_PX`` (float RGB), and
    which of its pixels lie inside the image."""
    tl = q[0] - n_side * step_a - BAND_PX * step_d
    tr = q[1] + n_side * step_a - BAND_PX * step_d
    br = q[2] + n_side * step_a + BAND_PX * step_d
    bl = q[3] - n_side * step_a + BAND_PX * step_d
    w, h = 2 * n_side + n_mid, 3 * BAND_PX
    src = np.array([tl, tr, br, bl], np.float32)
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    band = cv2.warpPerspective(
        image, m, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    ).astype(np.float32)
    ones = np.ones(image.shape[:2], np.uint8)
    inside = cv2.warpPerspective(ones, m, (w, h), flags=cv2.INTER_NEAREST, borderValue=0) > 0
    return band, inside


def _run(flags: np.ndarray) -> int:
    """How many leading entries of ``flags`` are True, across gaps of up to ``MAX_GAP``."""
    n = 0
    for i, f in enumerate(flags):
        if f:
            n = i + 1
        elif i - n >= MAX_GAP:
            break
    return n
