"""What the plate detector's magnified grounds held: a memo that lets the second look skip
grounds the first pass already magnified in vain (:class:`ZoomMemo`)."""

from __future__ import annotations

import numpy as np


def ground_roi(shape: tuple[int, ...], ground: np.ndarray) -> tuple[int, int, int, int]:
    """The region (x0, y0, x1, y1) the detector magnifies around a plate ground: the ground
    and a margin."""
    x, y, w, h = (int(v) for v in ground[:4])
    m = max(2, h // 6)
    return max(0, x - m), max(0, y - m), min(shape[1], x + w + m), min(shape[0], y + h + m)


class ZoomMemo:
    """Plate grounds the detector magnified and found no row in (``_zoom_ground`` in
    :mod:`~veilchain.anonymizer.plates.detect`). Its answer depends only on the ground's box,
    its polarity, the ink thresholds and the pixels of :func:`ground_roi` (and on the image's
    width, which the memo's shape check fixes), so a ground seen again with the same box,
    polarity and pixels, and thresholds among those already tried, holds no row either.
    The second look sweeps the output, which equals the input outside the rewritten regions:
    most of its grounds there were already magnified by the first pass, in vain."""

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
        x0, y0, x1, y1 = ground_roi(gray.shape, ground)
        return bool(np.array_equal(seen[y0:y1, x0:x1], gray[y0:y1, x0:x1]))
