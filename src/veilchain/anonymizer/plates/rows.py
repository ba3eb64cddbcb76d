"""Text rows and plate outlines from connected components: the steps of
:class:`~veilchain.anonymizer.plates.detect.PlateDetector` on one image level (threshold,
character-like blobs, rows of them, the plate ground around a row)."""

from __future__ import annotations

import cv2
import numpy as np

#: Character heights (px, at one pyramid level) the row search looks for.
MIN_CHAR_PX = 7
MAX_CHAR_PX = 44
MIN_CHARS, MAX_CHARS = 4, 12
#: The median gap between a row's characters, in character heights, a plate stays under.
MAX_MEDIAN_GAP = 0.35
#: How many following components (in x order) a component may link to in a row.
_LINK_SPAN = 12
#: Heights (px, at the detector's first scale) of the plate grounds looked at again (see
#: :func:`ground_like`), magnified to ``GROUND_ZOOM_TO`` px tall, at most ``GROUND_ZOOM`` times.
GROUND_PX = (14, 64)
#: The narrowest a plate ground cut by the left or right border may be, in its heights.
SLIVER_WIDTH = 0.35


def order_quad(pts: np.ndarray) -> np.ndarray:
    """4 points ordered TL, TR, BR, BL."""
    pts = np.asarray(pts, np.float32).reshape(4, 2)
    c = pts.mean(0)
    ang = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])
    pts = pts[np.argsort(ang)]  # from -pi: TL, TR, BR, BL for a roughly upright box
    start = int(np.argmin(pts.sum(1)))
    return np.roll(pts, -start, axis=0)


#: The side of the box whose mean grey level each pixel is compared with (:func:`local_diff`).
BLOCK = 31


def local_diff(gray: np.ndarray) -> np.ndarray:
    """Each pixel minus the mean grey level of the ``BLOCK`` x ``BLOCK`` box around it (int16):
    what OpenCV's adaptive mean threshold compares with its offset, computed once for every
    offset and polarity :func:`components` thresholds at (the same pixels as
    ``cv2.adaptiveThreshold``)."""
    border = cv2.BORDER_REPLICATE | cv2.BORDER_ISOLATED
    mean = cv2.boxFilter(gray, -1, (BLOCK, BLOCK), borderType=border)
    return cv2.subtract(gray, mean, dtype=cv2.CV_16S)


def components(
    gray: np.ndarray, dark: bool, offset: int = 12, diff: np.ndarray | None = None
) -> np.ndarray:
    """Connected components of the ink (``dark``: pixels darker than their local mean by
    ``offset``; else lighter by it), as rows of (x, y, w, h, fill). A larger ``offset`` thins
    strokes and separates characters that blur made touch. ``diff``: ``gray``'s
    :func:`local_diff`, when the caller thresholds it more than once."""
    d = local_diff(gray) if diff is None else diff
    binary = ((d <= -offset) if dark else (d > offset)).view(np.uint8)
    # Grana's block-based labelling: the same components as the default (Spaghetti) here,
    # in about 0.6 of its time on one thread (bench/plates_speed.py)
    n, _, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
        binary, 8, cv2.CV_32S, cv2.CCL_GRANA
    )
    s = stats[1:].astype(np.float32)
    x, y, w, h, area = s.T
    return np.stack([x, y, w, h, area / np.maximum(w * h, 1)], 1)


def char_like(comps: np.ndarray) -> np.ndarray:
    """The components shaped like characters."""
    x, y, w, h, fill = comps.T
    keep = (
        (h >= MIN_CHAR_PX)
        & (h <= MAX_CHAR_PX)
        & (w >= 2)
        & (w <= 4.0 * h)  # wide letters (W, M) and touching characters (blur, small plates)
        & (h <= 8 * w)
        & (fill > 0.12)
        & (fill < 0.9)
    )
    return comps[keep]


def char_components(
    gray: np.ndarray, dark: bool, offset: int = 12, diff: np.ndarray | None = None
) -> np.ndarray:
    """Character-like components: rows of (x, y, w, h, fill)."""
    return char_like(components(gray, dark, offset, diff))


def ground_like(
    comps: np.ndarray, ground_px: tuple[int, int] = GROUND_PX, width: int | None = None
) -> np.ndarray:
    """Components shaped like a small plate's ground: a plate-proportioned blob, 14-64 px
    tall, with holes (its characters) that leave it 35-90 % filled. On a plate 20-30 px tall
    the characters are 8-12 px and blur joins them to each other and to the plate's edge, so
    the row search misses them; the ground is still one clean blob. With ``width`` (the
    image's), a blob touching the left or right border may be narrower than a plate, down to
    ``SLIVER_WIDTH`` of its height: the border cut it, and it is looked at mirrored across the
    border, which makes it plate-shaped again (see :func:`cut_by_border`), or taken as a
    sliver of a plate when it holds ink but no row."""
    x, y, w, h, fill = comps.T
    cut = cut_by_border(comps, width)
    keep = (
        (h >= ground_px[0])
        & (h <= ground_px[1])
        & ((w >= 1.2 * h) | (cut & (w >= SLIVER_WIDTH * h)))
        & (w <= 6.0 * h)
        & (fill > 0.35)
        & (fill < 0.9)
    )
    return comps[keep]


def cut_by_border(comps: np.ndarray, width: int | None) -> np.ndarray:
    """Which components (rows of x, y, w, h, ...) touch the left or right image border."""
    if width is None:
        return np.zeros(len(comps), bool)
    return (comps[:, 0] <= 0) | (comps[:, 0] + comps[:, 2] >= width)


def text_rows(comps: np.ndarray, width: int | None = None) -> list[np.ndarray]:
    """Link components into text rows: pairs near in x (among the next ``_LINK_SPAN`` in x
    order), vertically aligned and of similar height are joined (connected components of
    that graph), vectorized over all pairs."""
    n = len(comps)
    if n < 2:
        return []
    c = comps[np.argsort(comps[:, 0])]
    x, y, w, h = c[:, 0], c[:, 1], c[:, 2], c[:, 3]
    cy, right = y + h / 2, x + w
    # every pair (i, i + k), k = 1 .. _LINK_SPAN, at once: one (n, k) array per quantity
    i = np.arange(n)[:, None]
    j = i + np.arange(1, min(_LINK_SPAN, n - 1) + 1)[None, :]
    pair = j < n
    j = np.minimum(j, n - 1)
    gap = x[j] - right[i]
    hi = h[i]
    hr = np.minimum(h[j], hi) / np.maximum(h[j], hi)
    dy = np.abs(cy[j] - cy[i])
    ok = (
        pair
        & (gap > -0.3 * hi)
        & (gap < 1.5 * hi)
        & (hr > 0.7)
        & (dy < 0.25 * hi + 0.2 * np.maximum(gap, 0))
    )
    src, dst = np.broadcast_to(i, j.shape)[ok], j[ok]
    if not len(src):
        return []
    labels = linked_labels(n, src, dst)
    rows = []
    linked = np.unique(np.concatenate([src, dst]))
    for r in np.unique(labels[linked]):
        members = c[labels == r]
        n_chars = char_count(members)
        if len(members) < 2 or n_chars > MAX_CHARS:
            continue
        # a plate cut by the left or right border shows only some of its characters
        if n_chars >= MIN_CHARS or (n_chars >= 2 and at_border(members, width)):
            rows.append(members)
    return rows


def linked_labels(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Each of ``n`` nodes labelled with the smallest node index in its connected component
    of the undirected graph with edges ``src[k]``-``dst[k]`` (label propagation with pointer
    jumping; for these graphs of tens to a few thousand nodes much cheaper than building a
    sparse matrix for scipy's ``connected_components``, which the row search did per call)."""
    labels = np.arange(n)
    while True:
        low = np.minimum(labels[src], labels[dst])
        new = labels.copy()
        np.minimum.at(new, src, low)
        np.minimum.at(new, dst, low)
        new = new[new]
        if np.array_equal(new, labels):
            return labels
        labels = new


def at_border(members: np.ndarray, width: int | None) -> bool:
    if width is None:
        return False
    h = float(np.median(members[:, 3]))
    return members[:, 0].min() < 1.5 * h or (members[:, 0] + members[:, 2]).max() > width - 1.5 * h


def char_count(members: np.ndarray) -> int:
    """Characters in a row, counting a wide blob as the touching characters it holds."""
    w, h = members[:, 2], members[:, 3]
    return int(np.maximum(1, np.round(w / (0.7 * h))).sum())


def row_ok(members: np.ndarray) -> bool:
    h = members[:, 3]
    if h.std() / h.mean() > 0.16:
        return False
    if np.median(members[:, 4]) > 0.8:  # solid blocks (windows), not strokes
        return False
    single = members[members[:, 2] < 1.1 * h]
    # characters stand taller than wide; pebbles, leaves and windows are about square
    if len(single) < 2 or np.median(single[:, 3] / single[:, 2]) < 1.1:
        return False
    widths = members[:, 2]
    gaps = np.diff(members[:, 0]) - widths[:-1]
    # characters on a plate are set close: most gaps well under a character height
    if len(gaps) and np.median(gaps) > MAX_MEDIAN_GAP * np.median(h):
        return False
    # a row of identical solid rectangles (a window grid) has near-constant widths and gaps
    gaps = np.diff(members[:, 0]) - widths[:-1]
    return not (widths.std() / widths.mean() < 0.04 and gaps.std() < 0.5)


def quad_of_row(members: np.ndarray, pad_x: float, pad_y: float) -> tuple[np.ndarray, float]:
    """The row's rotated box (from a line fit through the character centres), widened."""
    x, y, w, h = members[:, 0], members[:, 1], members[:, 2], members[:, 3]
    cx, cy = x + w / 2, y + h / 2
    # the least-squares line's slope (np.polyfit's, in a tenth of its time)
    dx = cx.astype(np.float64) - cx.mean(dtype=np.float64)
    sxx = float(dx @ dx)
    slope = float(dx @ (cy - cy.mean(dtype=np.float64))) / sxx if sxx > 0 else 0.0
    ang = np.arctan(slope)
    u = np.array([np.cos(ang), np.sin(ang)])
    v = np.array([-np.sin(ang), np.cos(ang)])
    right, bottom = x + w, y + h
    # the characters' corners: top-left, top-right, bottom-right, bottom-left
    pts = np.stack(
        [np.concatenate([x, right, right, x]), np.concatenate([y, y, bottom, bottom])], 1
    )
    c = np.array([cx.mean(), cy.mean()])
    pu, pv = (pts - c) @ u, (pts - c) @ v
    hh = float(np.median(h))
    u0, u1 = pu.min() - pad_x * hh, pu.max() + pad_x * hh
    v0, v1 = pv.min() - pad_y * hh, pv.max() + pad_y * hh
    quad = np.array(
        [c + u0 * u + v0 * v, c + u1 * u + v0 * v, c + u1 * u + v1 * v, c + u0 * u + v1 * v],
        np.float32,
    )
    return quad, hh


def contrast(gray: np.ndarray, row_quad: np.ndarray) -> float:
    """Ink against ground inside the row: the 95th minus the 5th grey-level percentile."""
    x0, y0 = np.maximum(np.floor(row_quad.min(0)).astype(int), 0)
    x1, y1 = np.ceil(row_quad.max(0)).astype(int)
    roi = gray[y0:y1, x0:x1]
    if roi.size < 16:
        return 0.0
    # percentiles of uint8 pixels from their histogram (np.percentile costs ~10x more)
    cum = np.cumsum(np.bincount(roi.ravel(), minlength=256))
    lo, hi = np.searchsorted(cum, [0.05 * roi.size, 0.95 * roi.size])
    return float(hi - lo)


def plate_quad(gray: np.ndarray, row_quad: np.ndarray, hh: float, dark: bool) -> np.ndarray | None:
    """The uniform background region around a text row, as 4 corners (None: not plate-like)."""
    H, W = gray.shape
    c = row_quad.mean(0)
    half = np.abs(row_quad - c).max(0) + [1.2 * hh, 1.0 * hh]
    x0, y0 = np.maximum(np.floor(c - half).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(c + half).astype(int), [W, H])
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    roi = gray[y0:y1, x0:x1]
    rmask = np.zeros(roi.shape, np.uint8)
    cv2.fillConvexPoly(rmask, np.round(row_quad - [x0, y0]).astype(np.int32), 255)
    inside = roi[rmask > 0]
    if inside.size < 16:
        return None
    lo, hi = np.percentile(inside, [10, 90])
    if hi - lo < 30:
        return None
    thr = (lo + hi) / 2
    bg = (roi > thr) if dark else (roi < thr)
    k = max(3, int(hh * 0.6) | 1)  # close over the strokes: the plate becomes one region
    bg = cv2.morphologyEx(bg.astype(np.uint8) * 255, cv2.MORPH_CLOSE, np.ones((k, k), np.uint8))
    n, labels = cv2.connectedComponents(bg)
    ids, counts = np.unique(labels[(rmask > 0) & (bg > 0)], return_counts=True)
    if not len(ids):
        return None
    region = (labels == ids[np.argmax(counts)]).astype(np.uint8)
    if region[rmask > 0].mean() < 0.8 or region.sum() > 3 * max(rmask.sum() / 255, 1):
        return None
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cnt = max(contours, key=cv2.contourArea)
    hull = cv2.convexHull(cnt)
    peri = cv2.arcLength(hull, True)
    quad = None
    for f in (0.02, 0.04, 0.06, 0.1):
        approx = cv2.approxPolyDP(hull, f * peri, True)
        if len(approx) == 4:
            quad = approx.reshape(4, 2).astype(np.float32)
            break
    if quad is None:
        quad = cv2.boxPoints(cv2.minAreaRect(hull)).astype(np.float32)
    quad = order_quad(quad + [x0, y0])
    if cv2.contourArea(quad) < 0.7 * cv2.contourArea(row_quad):
        return None
    # a plate is at most ~3 character heights tall and a few wider than its text
    height = (np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1])) / 2
    width = (np.linalg.norm(quad[1] - quad[0]) + np.linalg.norm(quad[2] - quad[3])) / 2
    row_w = np.linalg.norm(row_quad[1] - row_quad[0])
    if height > 3.0 * hh or width > row_w + 4.0 * hh:
        return None
    return quad


def overlap_small(a: tuple, b: tuple) -> float:
    """Intersection over the smaller box's area."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / small if small > 0 else 0.0
