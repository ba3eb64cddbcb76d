"""A plate's whole extent: the found quad, grown along its row and across it while the plate
goes on.

A detection can cover only part of a plate: blur runs the characters of a Russian plate's
number and its boxed region code into separate smears, and a detector then takes the number
alone; on a US plate the row of characters is found and the state's name above it is not.
What the quad leaves out is published as it was (docs/anonymizer.md, "The whole plate").
:func:`whole_plate` rectifies a band around the quad (``MAX_GROWTH`` of its length to each
side along its longer axis, a quad height above and below), and grows the quad column by
column to either side, then row by row up and down, while most of the pixels there are
plate-like:
  - unlike both the colour right above the quad and the colour right below it (a car's
    paint, its bumper, the road);
  - close to the plate's own colours: the line in colour space from its ground to its ink,
    blurred mixtures included (a face or a green verge beside the plate is not);
  - inside the image, and outside ``keep_out`` (pixels the face stage rewrote).
A quad whose own pixels are not mostly plate-like is kept as it was.
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
#: ``BODY_SPREAD`` times the body's own median deviation when that is larger), and of the
#: plate when it lies within ``PLATE_COLOUR`` of the line from the plate's ground to its ink.
OFF_BODY = 30.0
BODY_SPREAD = 4.0
PLATE_COLOUR = 40.0
#: A column (row) is plate while this share of its pixels are plate-like; the quad's own
#: columns must mostly be (``OWN_SHARE``) for it to grow at all.
PLATE_SHARE = 0.5
OWN_SHARE = 0.7
#: Columns or rows that are not plate-like that a plate may hold and go on (a separator
#: line, a screw).
MAX_GAP = 3


def whole_plate(
    image: np.ndarray, quad: np.ndarray, keep_out: np.ndarray | None = None
) -> np.ndarray:
    """``quad`` (4 corners) grown over the rest of its plate; see the module docstring.
    ``image``: RGB uint8 (anything else: ``quad`` unchanged); ``keep_out``: (H, W) bool."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] < 3:
        return np.asarray(quad, np.float32)
    q = _long_side_first(np.asarray(quad, np.float64))
    along = ((q[1] - q[0]) + (q[2] - q[3])) / 2
    down = ((q[3] - q[0]) + (q[2] - q[1])) / 2
    length, height = float(np.hypot(*along)), float(np.hypot(*down))
    if height < 4:
        return np.asarray(quad, np.float32)
    n_mid = max(round(length / height * BAND_PX), 1)
    n_side = round(MAX_GROWTH * n_mid)
    band, usable = _rectified(image[..., :3], q, along / n_mid, down / BAND_PX, n_side, n_mid)
    if keep_out is not None:
        # the mask read in place as 0/1 bytes: no image-sized copy for every plate
        mask = np.ascontiguousarray(keep_out).view(np.uint8)
        band_out, _ = _rectified(mask, q, along / n_mid, down / BAND_PX, n_side, n_mid)
        usable &= band_out[..., 0] < 0.5
    plate = _plate_like(band, usable, slice(n_side, n_side + n_mid))
    cols = plate[BAND_PX : 2 * BAND_PX].mean(0) >= PLATE_SHARE
    if cols[n_side : n_side + n_mid].mean() < OWN_SHARE:
        return np.asarray(quad, np.float32)
    left = _run(cols[:n_side][::-1])
    right = _run(cols[n_side + n_mid :])
    rows = plate[:, n_side - left : n_side + n_mid + right].mean(1) >= PLATE_SHARE
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


def _long_side_first(q: np.ndarray) -> np.ndarray:
    """The corners turned so that the first side (corner 0 to 1) is the longer: a plate's row
    runs along it whatever the tilt (corner order alone swaps the axes past 45 degrees)."""
    if np.hypot(*(q[1] - q[0])) >= np.hypot(*(q[3] - q[0])):
        return q
    return q[[3, 0, 1, 2]]


def _plate_like(band: np.ndarray, usable: np.ndarray, mid: slice) -> np.ndarray:
    """Which pixels of ``band`` are plate-like (see the module docstring); ``mid``: the quad's
    columns, whose middle rows give the plate's colours and whose outer rows the body's."""
    off = usable.copy()
    for outer in (band[: BAND_PX // 4, mid], band[-BAND_PX // 4 :, mid]):
        body = np.median(outer.reshape(-1, 3), 0)
        spread = float(np.median(np.linalg.norm(outer - body, axis=2)))
        off &= np.linalg.norm(band - body, axis=2) > max(OFF_BODY, BODY_SPREAD * spread)
    own = band[BAND_PX : 2 * BAND_PX, mid].reshape(-1, 3)
    luma = own @ np.array([0.299, 0.587, 0.114])
    lo, hi = np.percentile(luma, [10, 90])
    a = np.median(own[luma <= lo], 0)
    b = np.median(own[luma >= hi], 0)
    ab = b - a
    t = np.clip(((band - a) @ ab) / max(float(ab @ ab), 1e-6), 0.0, 1.0)
    near = np.linalg.norm(band - (a + t[..., None] * ab), axis=2) <= PLATE_COLOUR
    return off & near


def _rectified(
    image: np.ndarray, q: np.ndarray, step_a: np.ndarray, step_d: np.ndarray, n_side: int,
    n_mid: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The band around ``q``, warped to a rectangle: ``n_side`` columns to each side of the
    quad's ``n_mid``, ``BAND_PX`` rows above and below its ``BAND_PX`` (float, as many
    channels as ``image``), and which of its pixels fall inside the image."""
    tl = q[0] - n_side * step_a - BAND_PX * step_d
    w, h = 2 * n_side + n_mid, 3 * BAND_PX
    src = np.array([tl, tl + w * step_a, tl + w * step_a + h * step_d, tl + h * step_d], np.float32)
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    band = cv2.warpPerspective(
        image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    ).astype(np.float32)
    if band.ndim == 2:
        band = band[..., None]
    # each band pixel's place in the image (the band is an affine map of it: parallel sides)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    px = tl[0] + xs * step_a[0] + ys * step_d[0]
    py = tl[1] + xs * step_a[1] + ys * step_d[1]
    H, W = image.shape[:2]
    inside = (px >= 0) & (px < W) & (py >= 0) & (py < H)
    return band, inside


def _run(flags: np.ndarray) -> int:
    """How many leading entries of ``flags`` are True, across gaps of up to ``MAX_GAP``
    entries: ``n`` is the length so far, and a False entry ``i`` ends the run once ``i - n``
    (the False entries since the last True one) reaches ``MAX_GAP``."""
    n = 0
    for i, f in enumerate(flags):
        if f:
            n = i + 1
        elif i - n >= MAX_GAP:
            break
    return n
