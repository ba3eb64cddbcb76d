"""Find licence plates: rows of character-like blobs on a uniform plate background.

A plate is found through its text, which every format shares: at each level of a small image
pyramid, a local (adaptive) threshold in both polarities (dark on light, light on dark) gives
connected components; those shaped like characters are linked into rows (similar height,
aligned centres, gaps under ~1.3 character heights) and a row of 4-12 characters is a plate
candidate. The plate's quadrilateral is then the uniform background region around the row
(closed over the characters, approximated by 4 corners), or the row's rotated box widened by
margins when that region is not plate-like. Candidates from different levels or polarities
that overlap are merged.

This was chosen over OpenCV's shipped plate cascades and Tesseract's layout analysis by
recall on bench/data/plates (see docs/anonymizer.md, "Licence plates"); ``bench/plates.py``
measures all three.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import cv2
import numpy as np

#: Character heights (px, at one pyramid level) the row search looks for.
MIN_CHAR_PX = 7
MAX_CHAR_PX = 44
#: Pyramid levels (scale factors): 1.0 covers characters of 9-44 px, 0.5 up to ~88 px, ...
DEFAULT_SCALES = (1.0, 0.5)
MIN_CHARS, MAX_CHARS = 4, 12
#: Grey levels between ink and ground a row needs (plates on the benchmark: >= 106; half
#: of the false positives there: < 122).
MIN_CONTRAST = 90
#: The median gap between a row's characters, in character heights, a plate stays under.
MAX_MEDIAN_GAP = 0.35
#: How many following components (in x order) a component may link to in a row.
_LINK_SPAN = 12
#: Ink thresholds (grey levels beyond the local mean) tried at each level.
OFFSETS = (12, 32)
#: Heights (px, at the detector's first scale) of the plate grounds looked at again (see
#: :func:`_ground_like`), magnified to ``GROUND_ZOOM_TO`` px tall, at most ``GROUND_ZOOM`` times.
GROUND_PX = (14, 64)
GROUND_ZOOM = 3.0
GROUND_ZOOM_TO = 72.0


@dataclass
class PlateDetection:
    """One plate: ``quad`` (4x2 corners, clockwise from top-left, image pixels), the text
    row's quad (what OCR reads), its character height and count, and its polarity."""

    quad: np.ndarray
    row_quad: np.ndarray
    char_height: float
    n_chars: int
    dark_text: bool = True
    score: float = 1.0
    source: str = "text_rows"
    extra: dict = field(default_factory=dict)

    @property
    def box(self) -> tuple[float, float, float, float]:
        x0, y0 = self.quad.min(0)
        x1, y1 = self.quad.max(0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def height(self) -> float:
        """The plate's height in pixels (mean of its left and right sides)."""
        q = self.quad
        return float((np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2)


def order_quad(pts: np.ndarray) -> np.ndarray:
    """4 points ordered TL, TR, BR, BL."""
    pts = np.asarray(pts, np.float32).reshape(4, 2)
    c = pts.mean(0)
    ang = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])
    pts = pts[np.argsort(ang)]  # from -pi: TL, TR, BR, BL for a roughly upright box
    start = int(np.argmin(pts.sum(1)))
    return np.roll(pts, -start, axis=0)


def _components(gray: np.ndarray, dark: bool, offset: int = 12) -> np.ndarray:
    """Connected components of the ink (``dark``: pixels darker than their local mean by
    ``offset``; else lighter by it), as rows of (x, y, w, h, fill). A larger ``offset`` thins
    strokes and separates characters that blur made touch."""
    mode = cv2.THRESH_BINARY_INV if dark else cv2.THRESH_BINARY
    c = offset if dark else -offset
    binary = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, mode, 31, c)
    n, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    s = stats[1:].astype(np.float32)
    x, y, w, h, area = s.T
    return np.stack([x, y, w, h, area / np.maximum(w * h, 1)], 1)


def _char_like(comps: np.ndarray) -> np.ndarray:
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


def _char_components(gray: np.ndarray, dark: bool, offset: int = 12) -> np.ndarray:
    """Character-like components: rows of (x, y, w, h, fill)."""
    return _char_like(_components(gray, dark, offset))


def _ground_like(comps: np.ndarray, ground_px: tuple[int, int] = GROUND_PX) -> np.ndarray:
    """Components shaped like a small plate's ground: a plate-proportioned blob, 14-64 px
    tall, with holes (its characters) that leave it 35-90 % filled. On a plate 20-30 px tall
    the characters are 8-12 px and blur joins them to each other and to the plate's edge, so
    the row search misses them; the ground is still one clean blob."""
    x, y, w, h, fill = comps.T
    keep = (
        (h >= ground_px[0])
        & (h <= ground_px[1])
        & (w >= 1.2 * h)
        & (w <= 6.0 * h)
        & (fill > 0.35)
        & (fill < 0.9)
    )
    return comps[keep]


def _rows(comps: np.ndarray, width: int | None = None) -> list[np.ndarray]:
    """Link components into text rows: pairs near in x (among the next ``_LINK_SPAN`` in x
    order), vertically aligned and of similar height are joined (connected components of
    that graph), vectorized over each offset."""
    n = len(comps)
    if n < 2:
        return []
    c = comps[np.argsort(comps[:, 0])]
    x, y, w, h = c[:, 0], c[:, 1], c[:, 2], c[:, 3]
    cy, right = y + h / 2, x + w
    srcs, dsts = [], []
    for k in range(1, min(_LINK_SPAN, n - 1) + 1):
        i = np.arange(n - k)
        j = i + k
        gap = x[j] - right[i]
        hr = np.minimum(h[j], h[i]) / np.maximum(h[j], h[i])
        dy = np.abs(cy[j] - cy[i])
        ok = (
            (gap > -0.3 * h[i])
            & (gap < 1.5 * h[i])
            & (hr > 0.7)
            & (dy < 0.25 * h[i] + 0.2 * np.maximum(gap, 0))
        )
        srcs.append(i[ok])
        dsts.append(j[ok])
    src, dst = np.concatenate(srcs), np.concatenate(dsts)
    if not len(src):
        return []
    labels = _linked_labels(n, src, dst)
    rows = []
    linked = np.unique(np.concatenate([src, dst]))
    for r in np.unique(labels[linked]):
        members = c[labels == r]
        n_chars = _n_chars(members)
        if len(members) < 2 or n_chars > MAX_CHARS:
            continue
        # a plate cut by the left or right border shows only some of its characters
        if n_chars >= MIN_CHARS or (n_chars >= 2 and _at_border(members, width)):
            rows.append(members)
    return rows


def _linked_labels(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
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


def _at_border(members: np.ndarray, width: int | None) -> bool:
    if width is None:
        return False
    h = float(np.median(members[:, 3]))
    return members[:, 0].min() < 1.5 * h or (members[:, 0] + members[:, 2]).max() > width - 1.5 * h


def _n_chars(members: np.ndarray) -> int:
    """Characters in a row, counting a wide blob as the touching characters it holds."""
    w, h = members[:, 2], members[:, 3]
    return int(np.maximum(1, np.round(w / (0.7 * h))).sum())


def _row_ok(members: np.ndarray) -> bool:
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


def _row_quad(members: np.ndarray, pad_x: float, pad_y: float) -> tuple[np.ndarray, float]:
    """The row's rotated box (from a line fit through the character centres), widened."""
    x, y, w, h = members[:, 0], members[:, 1], members[:, 2], members[:, 3]
    cx, cy = x + w / 2, y + h / 2
    slope = float(np.polyfit(cx, cy, 1)[0]) if len(cx) > 1 and np.ptp(cx) > 0 else 0.0
    ang = np.arctan(slope)
    u = np.array([np.cos(ang), np.sin(ang)])
    v = np.array([-np.sin(ang), np.cos(ang)])
    pts = np.concatenate(
        [
            np.stack([x, y], 1),
            np.stack([x + w, y], 1),
            np.stack([x + w, y + h], 1),
            np.stack([x, y + h], 1),
        ]
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


def _contrast(gray: np.ndarray, row_quad: np.ndarray) -> float:
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


def _plate_quad(gray: np.ndarray, row_quad: np.ndarray, hh: float, dark: bool) -> np.ndarray | None:
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


def _iou(a: tuple, b: tuple) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _overlap_small(a: tuple, b: tuple) -> float:
    """Intersection over the smaller box's area."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / small if small > 0 else 0.0


class PlateDetector:
    """Licence plates in RGB images (see the module docstring)."""

    name = "text_rows"

    def __init__(
        self,
        scales: tuple[float, ...] = DEFAULT_SCALES,
        require_ground: bool = False,
        min_contrast: float = MIN_CONTRAST,
        ground_px: tuple[int, int] = GROUND_PX,
        text_rows: bool = True,
        offsets: tuple[int, ...] = OFFSETS,
    ) -> None:
        self.scales = tuple(scales)
        # True: a row counts only with a uniform plate ground around it (fewer false
        # positives on textures such as brick; see the recall table in the docs)
        self.require_ground = bool(require_ground)
        # the second look (plates/second_look.py) looks at plate grounds only
        # (text_rows=False), with a lower contrast and smaller grounds
        self.min_contrast = float(min_contrast)
        self.ground_px = (int(ground_px[0]), int(ground_px[1]))
        self.text_rows = bool(text_rows)
        self.offsets = tuple(int(o) for o in offsets)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "scales": list(self.scales),
            "require_ground": self.require_ground,
            "min_contrast": self.min_contrast,
            "ground_px": list(self.ground_px),
            "text_rows": self.text_rows,
            "offsets": list(self.offsets),
            "chars": [MIN_CHARS, MAX_CHARS],
            "char_px": [MIN_CHAR_PX, MAX_CHAR_PX],
        }

    def detect(
        self,
        image: np.ndarray,
        skip: np.ndarray | None = None,
        memo: ZoomMemo | None = None,
    ) -> list[PlateDetection]:
        """The plates in ``image``. ``skip`` (H, W bool): plate grounds mostly inside it are
        not looked at again (the second look passes the pixels already rewritten). ``memo``:
        magnified grounds that held no row are recorded there, and one already recorded
        with the same pixels is not magnified again (the stage shares one between the first
        pass and the sweep; the result is the same either way)."""
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        found: list[PlateDetection] = []
        # sums of ``skip`` over any box in O(1): most of the sweep's grounds are tested
        skip_sums = None if skip is None else cv2.integral(skip.astype(np.uint8))
        for s in self.scales:
            g = (
                gray
                if s == 1.0
                else cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            )
            if min(g.shape) < MIN_CHAR_PX * 2:
                break
            grounds: list[tuple[bool, np.ndarray]] = []
            offsets = self.offsets if self.text_rows else self.offsets[:1]
            for dark, offset in itertools.product((True, False), offsets):
                comps = _components(g, dark, offset)
                if s == self.scales[0] and offset == self.offsets[0]:
                    # light blobs are the grounds of dark text, dark blobs of light text
                    grounds += [(not dark, b) for b in _ground_like(comps, self.ground_px)]
                if not self.text_rows:
                    continue
                for members in _rows(_char_like(comps), g.shape[1]):
                    if not _row_ok(members):
                        if not _zoomable(g, members, self.min_contrast):
                            continue
                        members = _zoom_in(g, members, dark, self.offsets)  # type: ignore[assignment]  # None: skipped below
                        if members is None:
                            continue
                    self._add(found, g, s, members, dark)
            boxes = [d.box for d in found]  # kept in step with found (box is computed)
            for dark, b in grounds:
                box = (b[0], b[1], b[0] + b[2], b[1] + b[3])
                full = tuple(v / s for v in box)  # detections' boxes are at full resolution
                boxes += [d.box for d in found[len(boxes) :]]
                if any(_overlap_small(full, fb) > 0.3 for fb in boxes):
                    continue  # already found through its text
                if skip_sums is not None and _skipped(skip_sums, full):
                    continue
                if _contrast(g, np.array([box[:2], box[2:]], np.float32)) < self.min_contrast:
                    continue
                if memo is not None and memo.empty(g, s, b, dark, self.offsets):
                    continue
                row = _zoom_ground(g, b, dark, self.offsets)
                if row is None and memo is not None:
                    memo.record(g, s, b, dark, self.offsets)
                if row is not None:
                    self._add(found, g, s, row, dark, ground=box)
        return _merge(found)

    def _add(self, found, g, s, members, dark, ground=None) -> None:
        """Turn a text row into a plate, unless it is not plate-like. ``ground``: the box of
        the plate ground the row was found in (its quad when no better one is found)."""
        row_quad, hh = _row_quad(members, 0.25, 0.2)
        if _contrast(g, row_quad) < self.min_contrast:
            return  # printed plates are high-contrast; textures mostly are not
        quad = _plate_quad(g, row_quad, hh, dark)
        if quad is None and ground is not None:
            x0, y0, x1, y1 = ground
            quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
        few = len(members) < MIN_CHARS and not _at_border(members, g.shape[1])
        if quad is None and (few or self.require_ground):
            return  # no plate ground around the row: texture, not a plate
        if quad is None:
            quad, _ = _row_quad(members, 0.6, 0.4)
        det = PlateDetection(quad / s, row_quad / s, hh / s, _n_chars(members), dark)
        if ground is not None:
            det.source = "plate_ground"
        found.append(det)


def _skipped(skip_sums: np.ndarray, box: tuple) -> bool:
    """Whether most of ``box`` (its pixels inside the image, at least one) lies inside the
    mask whose integral image (``cv2.integral``, (H + 1, W + 1)) is ``skip_sums``."""
    H, W = skip_sums.shape[0] - 1, skip_sums.shape[1] - 1
    x0, y0, x1, y1 = (round(v) for v in box)
    x0, y0 = min(max(x0, 0), W), min(max(y0, 0), H)
    x1, y1 = min(max(x1, x0 + 1), W), min(max(y1, y0 + 1), H)
    n = (x1 - x0) * (y1 - y0)
    if n <= 0:
        return False
    inside = skip_sums[y1, x1] - skip_sums[y0, x1] - skip_sums[y1, x0] + skip_sums[y0, x0]
    return bool(2 * int(inside) >= n)


def _ground_roi(shape: tuple[int, ...], ground: np.ndarray) -> tuple[int, int, int, int]:
    """The region (x0, y0, x1, y1) :func:`_zoom_ground` magnifies: the ground and a margin."""
    x, y, w, h = (int(v) for v in ground[:4])
    m = max(2, h // 6)
    return max(0, x - m), max(0, y - m), min(shape[1], x + w + m), min(shape[0], y + h + m)


class ZoomMemo:
    """Plate grounds :func:`_zoom_ground` magnified and found no row in. Its answer depends
    only on the ground's box, its polarity, the ink thresholds and the pixels of
    :func:`_ground_roi`, so a ground seen again with the same box, polarity and pixels, and
    thresholds among those already tried, holds no row either. The second look sweeps the
    output, which equals the input outside the rewritten regions: most of its grounds there
    were already magnified by the first pass, in vain."""

    def __init__(self) -> None:
        self._gray: dict[float, np.ndarray] = {}
        self._empty: dict[tuple, set[int]] = {}

    @staticmethod
    def _key(s: float, ground: np.ndarray, dark: bool) -> tuple:
        return (s, bool(dark), *(int(v) for v in ground[:4]))

    def record(
        self, gray: np.ndarray, s: float, ground: np.ndarray, dark: bool, offsets: tuple
    ) -> None:
        """``_zoom_ground(gray, ground, dark, offsets)`` returned None."""
        if self._gray.setdefault(s, gray) is not gray:
            return  # a second image at this scale: only the first one's grounds are kept
        self._empty.setdefault(self._key(s, ground, dark), set()).update(offsets)

    def empty(
        self, gray: np.ndarray, s: float, ground: np.ndarray, dark: bool, offsets: tuple
    ) -> bool:
        """Whether ``_zoom_ground(gray, ground, dark, offsets)`` is known to return None."""
        tried = self._empty.get(self._key(s, ground, dark))
        seen = self._gray.get(s)
        if tried is None or seen is None or seen.shape != gray.shape:
            return False
        if not set(offsets) <= tried:
            return False
        x0, y0, x1, y1 = _ground_roi(gray.shape, ground)
        return bool(np.array_equal(seen[y0:y1, x0:x1], gray[y0:y1, x0:x1]))


def _zoom_ground(
    gray: np.ndarray, ground: np.ndarray, dark: bool, offsets: tuple[int, ...] = OFFSETS
) -> np.ndarray | None:
    """The text row inside a small plate's ground (:func:`_ground_like`), looked for at a
    higher resolution; in ``gray``'s coordinates, or None."""
    h = int(ground[3])
    x0, y0, x1, y1 = _ground_roi(gray.shape, ground)
    z = min(GROUND_ZOOM, max(1.0, GROUND_ZOOM_TO / h))
    roi = cv2.resize(gray[y0:y1, x0:x1], None, fx=z, fy=z, interpolation=cv2.INTER_CUBIC)
    for offset in offsets:
        for row in _rows(_char_components(roi, dark, offset)):
            if _n_chars(row) >= MIN_CHARS and _row_ok(row):
                row = row.copy()
                row[:, :4] /= z
                row[:, 0] += x0
                row[:, 1] += y0
                return row
    return None


def _zoomable(gray: np.ndarray, members: np.ndarray, min_contrast: float) -> bool:
    """A rejected row worth a second look: 2-3 blobs of one height, one of them wide (touching
    characters), with a plate's contrast."""
    h = members[:, 3]
    if len(members) > 3 or not (members[:, 2] > 1.1 * h).any() or h.std() / h.mean() > 0.16:
        return False
    return _contrast(gray, _row_quad(members, 0.25, 0.2)[0]) >= min_contrast


def _zoom_in(
    gray: np.ndarray, members: np.ndarray, dark: bool, offsets: tuple[int, ...] = OFFSETS
) -> np.ndarray | None:
    """A row of few, wide blobs (characters blur made touch, on small plates) looked at
    again at twice the resolution, where the strokes separate; the row found there (in
    ``gray``'s coordinates) or None."""
    h = float(np.median(members[:, 3]))
    x0 = max(0, int(members[:, 0].min() - h))
    y0 = max(0, int(members[:, 1].min() - h))
    x1 = min(gray.shape[1], int((members[:, 0] + members[:, 2]).max() + h))
    y1 = min(gray.shape[0], int((members[:, 1] + members[:, 3]).max() + h))
    roi = cv2.resize(gray[y0:y1, x0:x1], None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    for offset in offsets:
        for row in _rows(_char_components(roi, dark, offset)):
            if _row_ok(row):
                row = row.copy()
                row[:, :4] /= 2
                row[:, 0] += x0
                row[:, 1] += y0
                return row
    return None


def _merge(found: list[PlateDetection]) -> list[PlateDetection]:
    """One detection per plate: of overlapping ones keep the one with most characters."""
    found = sorted(found, key=lambda d: (-d.n_chars, -d.char_height))
    kept: list[PlateDetection] = []
    for d in found:
        if all(_overlap_small(d.box, k.box) < 0.5 for k in kept):
            kept.append(d)
    return kept
