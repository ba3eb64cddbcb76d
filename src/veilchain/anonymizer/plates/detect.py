"""Find licence plates: rows of character-like blobs on a uniform plate background.

A plate is found through its text, which every format shares: at each level of a small image
pyramid, a local (adaptive) threshold in both polarities (dark on light, light on dark) gives
connected components; those shaped like characters are linked into rows (similar height,
aligned centres, gaps under ~1.3 character heights) and a row of 4-12 characters is a plate
candidate. The plate's quadrilateral is then the uniform background region around the row
(closed over the characters, approximated by 4 corners), or the row's rotated box widened by
margins when that region is not plate-like. Candidates from different levels or polarities
that overlap are merged. Three passes look again, magnified, where that search cannot see:
small plate grounds (blobs shaped like a plate's background; mirrored across the border when
it cuts them), rows of 2-3 touching blobs, and rows of characters under 7 px. Where no row
exists at all, two kinds of ground are taken as plates by their ink alone: a ground cut by
the border to a character or two (a "border sliver"), and a ground whose text blur has run
into one band.

This was chosen over OpenCV's shipped plate cascades and Tesseract's layout analysis by
recall on bench/data/plates (see docs/anonymizer.md, "Licence plates"); ``bench/plates.py``
measures all three.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

from veilchain.anonymizer.plates.memo import ZoomMemo, ground_roi
from veilchain.anonymizer.plates.rows import (
    GROUND_PX,
    MAX_CHAR_PX,
    MAX_CHARS,
    MIN_CHAR_PX,
    MIN_CHARS,
    at_border,
    char_components,
    char_count,
    char_like,
    components,
    contrast,
    cut_by_border,
    ground_like,
    local_diff,
    overlap_small,
    plate_quad,
    quad_of_row,
    row_ok,
    text_rows,
)

#: Pyramid levels (scale factors): 1.0 covers characters of 7-44 px, 0.5 up to 88 px, 0.25 up
#: to 176 px (a close-up plate 400-900 px wide; without it, half of those were missed). From
#: the third level on, only characters too tall for the level above are looked for.
DEFAULT_SCALES = (1.0, 0.5, 0.25)
#: Grey levels between ink and ground a row needs (plates on the benchmark: >= 106; half
#: of the false positives there: < 122).
MIN_CONTRAST = 90
#: Ink thresholds (grey levels beyond the local mean) tried at each level.
OFFSETS = (12, 32)
GROUND_ZOOM = 3.0
GROUND_ZOOM_TO = 72.0
#: Characters this tall (px, at full resolution) are below the row search's 7 px; a row of
#: them is looked at again at ``SMALL_ZOOM`` times (the text of a 20 px plate is 5-7 px).
SMALL_CHAR_PX = (4, MIN_CHAR_PX)
SMALL_ZOOM = 2.0


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


class PlateFinder(Protocol):
    """What the stage needs of a plate detector (this module's, or the union with the net's)."""

    def describe(self) -> dict: ...

    def detect(
        self, image: np.ndarray, skip: np.ndarray | None = None, memo: ZoomMemo | None = None
    ) -> list[PlateDetection]: ...


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
        small_rows: bool = True,
        slivers: bool = True,
        blurred_bands: bool = True,
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
        # rows of characters under 7 px looked at again magnified (with text_rows)
        self.small_rows = bool(small_rows)
        # grounds cut by the border to a character or two, and grounds whose text blur ran
        # into one band, taken as plates (with text_rows: the first pass only)
        self.slivers = bool(slivers)
        self.blurred_bands = bool(blurred_bands)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "scales": list(self.scales),
            "require_ground": self.require_ground,
            "min_contrast": self.min_contrast,
            "ground_px": list(self.ground_px),
            "text_rows": self.text_rows,
            "offsets": list(self.offsets),
            "small_rows": self.small_rows,
            "slivers": self.slivers,
            "blurred_bands": self.blurred_bands,
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
        for level, s in enumerate(self.scales):
            g = (
                gray
                if s == 1.0
                else cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            )
            if min(g.shape) < MIN_CHAR_PX * 2:
                break
            first = s == self.scales[0]
            grounds: list[tuple[bool, np.ndarray]] = []
            bands: list[tuple[bool, np.ndarray]] = []
            offsets = self.offsets if self.text_rows else self.offsets[:1]
            diff = local_diff(g)
            for dark, offset in itertools.product((True, False), offsets):
                comps = components(g, dark, offset, diff)
                if first and self.text_rows and self.blurred_bands and offset != self.offsets[0]:
                    # grounds at the thinner threshold: only the blurred-band test (below)
                    bands += [(not dark, b) for b in ground_like(comps, self.ground_px, g.shape[1])]
                if first and offset == self.offsets[0]:
                    # light blobs are the grounds of dark text, dark blobs of light text
                    grounds += [
                        (not dark, b) for b in ground_like(comps, self.ground_px, g.shape[1])
                    ]
                    if self.text_rows and self.small_rows:
                        self._small_rows(found, g, s, comps, dark)
                if not self.text_rows:
                    continue
                chars = char_like(comps)
                if level >= 2:  # only what the level above could not see (close-ups)
                    chars = chars[chars[:, 3] > MAX_CHAR_PX * s / self.scales[level - 1]]
                for members in text_rows(chars, g.shape[1]):
                    if not row_ok(members):
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
                if any(overlap_small(full, fb) > 0.3 for fb in boxes):
                    continue  # already found through its text
                if skip_sums is not None and _skipped(skip_sums, full):
                    continue
                if contrast(g, np.array([box[:2], box[2:]], np.float32)) < self.min_contrast:
                    continue
                if memo is not None and memo.empty(g, s, b, dark, self.offsets):
                    continue
                cut = bool(cut_by_border(b[None], g.shape[1])[0])
                row = _zoom_ground(g, b, dark, self.offsets, cut=cut)
                if row is None and cut and self.text_rows and self.slivers and _sliver(g, b, dark):
                    found.append(_sliver_detection(b, s, dark))
                    continue
                if row is None and memo is not None:
                    memo.record(g, s, b, dark, self.offsets)
                if row is not None:
                    self._add(found, g, s, row, dark, ground=box)
            if bands:
                self._bands(found, g, s, bands, skip_sums)
        return _merge(found)

    def _bands(self, found, g, s, bands, skip_sums) -> None:
        """Plate grounds whose text blur has run into one band (:func:`_blurred_band`)."""
        boxes = [d.box for d in found]
        for dark, b in bands:
            box = (b[0], b[1], b[0] + b[2], b[1] + b[3])
            full = tuple(v / s for v in box)
            if any(overlap_small(full, fb) > 0.3 for fb in boxes):
                continue
            if skip_sums is not None and _skipped(skip_sums, full):
                continue
            if contrast(g, np.array([box[:2], box[2:]], np.float32)) < self.min_contrast:
                continue
            n = _blurred_band(g, b, dark)
            if n:
                x, y, w, h = (float(v) for v in b[:4])
                quad = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)
                found.append(
                    PlateDetection(quad / s, quad / s, 0.5 * h / s, n, dark, source="blurred_band")
                )
                boxes.append(full)

    def _small_rows(self, found, g, s, comps, dark) -> None:
        """Rows of characters too small for the row search (a plate 20 px tall whose ground
        merged with the car body around it, so that no ground blob exists either), each
        looked at again at ``SMALL_ZOOM`` times, where they reach the row search's sizes."""
        x, y, w, h, fill = comps.T
        small = comps[
            (h >= SMALL_CHAR_PX[0])
            & (h < SMALL_CHAR_PX[1])
            & (w >= 2)
            & (w <= 4.0 * h)
            & (h <= 8 * w)
            & (fill > 0.12)
            & (fill < 0.9)
        ]
        for members in text_rows(small):
            hs = members[:, 3]
            if hs.std() / hs.mean() > 0.2:
                continue
            if contrast(g, quad_of_row(members, 0.25, 0.2)[0]) < self.min_contrast:
                continue
            row = _zoom_in(g, members, dark, self.offsets, SMALL_ZOOM)
            if row is not None:
                self._add(found, g, s, row, dark)

    def _add(self, found, g, s, members, dark, ground=None) -> None:
        """Turn a text row into a plate, unless it is not plate-like. ``ground``: the box of
        the plate ground the row was found in (its quad when no better one is found)."""
        row_quad, hh = quad_of_row(members, 0.25, 0.2)
        if contrast(g, row_quad) < self.min_contrast:
            return  # printed plates are high-contrast; textures mostly are not
        quad = plate_quad(g, row_quad, hh, dark)
        if quad is None and ground is not None:
            x0, y0, x1, y1 = ground
            quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
        few = len(members) < MIN_CHARS and not at_border(members, g.shape[1])
        if quad is None and (few or self.require_ground):
            return  # no plate ground around the row: texture, not a plate
        if quad is None:
            quad, _ = quad_of_row(members, 0.6, 0.4)
        det = PlateDetection(quad / s, row_quad / s, hh / s, char_count(members), dark)
        if ground is not None:
            det.source = "plate_ground"
        found.append(det)


#: A plate ground cut by the border (:func:`_sliver`): the share of its inner pixels on the
#: ink side of the mid grey level (a character or two, not a blank patch, not a pattern).
SLIVER_INK = (0.06, 0.45)
#: ... and the least share of its box the ground blob fills (the rest: its characters).
SLIVER_FILL = 0.45


def _sliver(gray: np.ndarray, ground: np.ndarray, dark: bool) -> bool:
    """Whether a plate ground that touches the left or right border, in which no row was
    found even mirrored, holds ink: what the border leaves of a plate can be one or two
    characters (or a blurred smear of them), too few for any row. Its inner part (a margin
    of 0.15 of its height off the top, the bottom and the side away from the border) must
    hold between 6 and 45 % ink: pixels beyond the mid grey level between the ground and
    the ink, on the ink's side. The ground's own box has a plate's contrast already."""
    x, y, w, h = (int(v) for v in ground[:4])
    if w >= 1.2 * h or ground[4] < SLIVER_FILL:
        return False  # wide enough for a row (searched already), or more hole than ground
    m = max(1, round(0.15 * h))
    left = x <= 0
    x0, x1 = (x, x + w - m) if left else (x + m, x + w)
    roi = gray[y + m : y + h - m, x0:x1]
    if roi.size < 16 or x1 - x0 < 3:
        return False
    lo, hi = np.percentile(gray[y : y + h, x : x + w], [5, 95])
    mid = (lo + hi) / 2
    ink = float(((roi < mid) if dark else (roi > mid)).mean())
    return SLIVER_INK[0] <= ink <= SLIVER_INK[1]


def _blurred_band(gray: np.ndarray, ground: np.ndarray, dark: bool) -> int:
    """How many characters a plate ground's blurred text holds, or 0: blur that has run a
    plate's characters into one another leaves, on a plate-shaped ground, one band of ink
    across most of its width (>= 60 %), 25-65 % of its height, centred in it, and no other
    ink of size inside it (ink touching its box is its frame). No row exists in it at any
    magnification."""
    x, y, w, h = (int(v) for v in ground[:4])
    roi = gray[y : y + h, x : x + w]
    lo, hi = np.percentile(roi, [5, 95])
    mid = (lo + hi) / 2
    ink = ((roi < mid) if dark else (roi > mid)).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    if n < 2:
        return 0
    st = stats[1:]
    k = int(np.argmax(st[:, 4]))
    bx, by, bw, bh, area = (int(v) for v in st[k])
    ox, oy, ow, oh, oa = np.delete(st, k, axis=0).T
    # ink touching the ground's box is its frame or the car around it, not text
    others = oa[(ox > 0) & (oy > 0) & (ox + ow < w) & (oy + oh < h)]
    if bw < 0.6 * w or not 0.25 * h <= bh <= 0.65 * h:
        return 0
    if abs(by + bh / 2 - h / 2) > 0.15 * h or area < 0.4 * bw * bh:
        return 0
    if len(others) and others.max() > 0.15 * area:
        return 0  # other ink of size: strokes or a pattern, not one smeared row
    return max(1, round(bw / (0.6 * bh)))


def _sliver_detection(ground: np.ndarray, s: float, dark: bool) -> PlateDetection:
    """A plate cut by the border to a sliver (:func:`_sliver`): its ground box is plate and row."""
    x, y, w, h = (float(v) for v in ground[:4])
    quad = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32) / s
    n = max(1, round(w / (0.45 * h)))  # characters about 0.45 of a plate's height wide
    return PlateDetection(quad, quad.copy(), 0.6 * h / s, n, dark, source="border_sliver")


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


def _zoom_ground(
    gray: np.ndarray,
    ground: np.ndarray,
    dark: bool,
    offsets: tuple[int, ...] = OFFSETS,
    *,
    cut: bool = False,
) -> np.ndarray | None:
    """The text row inside a small plate's ground (:func:`ground_like`), looked for at a
    higher resolution; in ``gray``'s coordinates, or None. ``cut``: the ground touches the
    left or right border, and when no row is found in it as it is, it is looked at again
    mirrored across that border (:func:`_mirrored`)."""
    h = int(ground[3])
    x0, y0, x1, y1 = ground_roi(gray.shape, ground)
    z = min(GROUND_ZOOM, max(1.0, GROUND_ZOOM_TO / h))
    roi = gray[y0:y1, x0:x1]
    tries = [(roi, 0)] if ground[2] >= 1.2 * h else []  # narrower: only a cut plate fits
    if cut:
        tries.append(_mirrored(roi, left=x0 == 0))
    for part, shift in tries:
        big = cv2.resize(part, None, fx=z, fy=z, interpolation=cv2.INTER_CUBIC)
        diff = local_diff(big)
        for offset in offsets:
            for row in text_rows(char_components(big, dark, offset, diff)):
                if char_count(row) >= MIN_CHARS and row_ok(row):
                    row = row.copy()
                    row[:, :4] /= z
                    row[:, 0] -= shift
                    # a mirrored row: the characters on the image's side of the border
                    row = row[(row[:, 0] + row[:, 2] / 2 >= 0) & (row[:, 0] < x1 - x0)]
                    if not len(row):
                        continue
                    row[:, 0] += x0
                    row[:, 1] += y0
                    return row
    return None


def _mirrored(roi: np.ndarray, left: bool) -> tuple[np.ndarray, int]:
    """``roi`` (a ground cut by the image border) beside its mirror image across that border,
    and where the roi starts in it. What the border kept of a plate, doubled, is shaped like
    a plate again: a ground cut to half a plate becomes a whole plate's ground, two visible
    characters a row of four, so the row search applies with its usual thresholds."""
    if left:
        return np.ascontiguousarray(np.hstack([roi[:, ::-1], roi])), roi.shape[1]
    return np.ascontiguousarray(np.hstack([roi, roi[:, ::-1]])), 0


def _zoomable(gray: np.ndarray, members: np.ndarray, min_contrast: float) -> bool:
    """A rejected row worth a second look: 2-3 blobs of one height, one of them wide (touching
    characters), with a plate's contrast."""
    h = members[:, 3]
    if len(members) > 3 or not (members[:, 2] > 1.1 * h).any() or h.std() / h.mean() > 0.16:
        return False
    return contrast(gray, quad_of_row(members, 0.25, 0.2)[0]) >= min_contrast


def _zoom_in(
    gray: np.ndarray,
    members: np.ndarray,
    dark: bool,
    offsets: tuple[int, ...] = OFFSETS,
    z: float = 2.0,
) -> np.ndarray | None:
    """A row of few, wide blobs (characters blur made touch, on small plates), or of
    characters too small for the row search, looked at again at ``z`` times the resolution,
    where the strokes separate; the row found there (in ``gray``'s coordinates) or None."""
    h = float(np.median(members[:, 3]))
    x0 = max(0, int(members[:, 0].min() - h))
    y0 = max(0, int(members[:, 1].min() - h))
    x1 = min(gray.shape[1], int((members[:, 0] + members[:, 2]).max() + h))
    y1 = min(gray.shape[0], int((members[:, 1] + members[:, 3]).max() + h))
    roi = cv2.resize(gray[y0:y1, x0:x1], None, fx=z, fy=z, interpolation=cv2.INTER_CUBIC)
    diff = local_diff(roi)
    for offset in offsets:
        for row in text_rows(char_components(roi, dark, offset, diff)):
            if row_ok(row):
                row = row.copy()
                row[:, :4] /= z
                row[:, 0] += x0
                row[:, 1] += y0
                return row
    return None


def _merge(found: list[PlateDetection]) -> list[PlateDetection]:
    """One detection per plate: of overlapping ones keep the one with most characters, unless
    a later one is larger and has characters 1.5 times as tall or more (:func:`_holds`): that is
    the plate's main row, and the kept one a line of smaller text on it (a US plate's state
    name has more characters than its number), which then gives way."""
    found = sorted(found, key=lambda d: (-d.n_chars, -d.char_height))
    kept: list[PlateDetection] = []
    for d in found:
        hit = [k for k in kept if overlap_small(d.box, k.box) >= 0.5]
        if not hit:
            kept.append(d)
        elif all(_holds(d, k) for k in hit):
            kept = [k for k in kept if all(k is not h for h in hit)] + [d]
    return kept


def _holds(big: PlateDetection, small: PlateDetection) -> bool:
    """Whether ``small`` (overlapping ``big``: half its box or more) is a line of smaller text
    on the plate ``big``: ``big``'s box the larger, its characters at least 1.5 times as tall.
    Two plates never overlap that much, so no plate gives way to another."""
    a, b = big.box, small.box
    larger = (a[2] - a[0]) * (a[3] - a[1]) > (b[2] - b[0]) * (b[3] - b[1])
    return larger and big.char_height >= 1.5 * small.char_height
