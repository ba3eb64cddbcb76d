"""Plates smeared by camera shake: a second read of a deblurred copy.

A camera that moved during the exposure smears the whole image along one line; a plate's
characters run into streaks that neither the text rows nor the learned net take for a plate
(docs/anonymizer.md, "Motion blur"). The smear leaves a signature in the image's cepstrum,
which :mod:`veilchain.anonymizer.motion` finds and undoes (the faces' candidate pass uses the
same). :class:`DeblurringDetector` wraps a plate detector: on an image that shows such a blur
it also reads the deblurred copy, and adds the plates found there at places where the first
read found none. The plates are redrawn in the published image as any other; the deblurred
copy is never published.
"""

from __future__ import annotations

import numpy as np

from veilchain.anonymizer.motion import deblur, estimate_motion_blur
from veilchain.anonymizer.plates.detect import PlateDetection, PlateFinder
from veilchain.anonymizer.plates.learned import at_new_places
from veilchain.anonymizer.plates.memo import ZoomMemo

#: A plate found only in the deblurred copy must hold at least this many characters: the
#: filter's ringing draws short dark-light bars at the image's border and around strong
#: edges, which the border-sliver rule reads as 1-2 character plates (chosen on the
#: motion-blurred tuning sets; docs/anonymizer.md "Motion blur").
MIN_DEBLURRED_CHARS = 3


class DeblurringDetector:
    """``inner``'s plates, plus, on an image showing a linear motion blur, those it finds in
    the deblurred copy at other places (see the module docstring)."""

    def __init__(self, inner: PlateFinder, *, min_chars: int = MIN_DEBLURRED_CHARS) -> None:
        self.inner = inner
        self.min_chars = int(min_chars)

    def describe(self) -> dict:
        return {**self.inner.describe(), "deblur": {"min_chars": self.min_chars}}

    def detect(
        self, image: np.ndarray, skip: np.ndarray | None = None, memo: ZoomMemo | None = None
    ) -> list[PlateDetection]:
        found = self.inner.detect(image, skip=skip, memo=memo)
        blur = estimate_motion_blur(image)
        if blur is None:
            return found
        extra = self.inner.detect(deblur(image, blur), skip=skip)
        return found + at_new_places([d for d in extra if d.n_chars >= self.min_chars], found)
