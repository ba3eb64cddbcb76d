"""The plates' second look: sweep the anonymized image for plates that no rewritten region
covers (fail closed).

The detector can miss a plate: faded ink below its contrast threshold, a small plate whose
ground blob is under the first pass's 14 px. After every plate is redrawn (and every face
anonymized), :func:`uncovered_plates` runs the detector again on the *output*, in a more
permissive setting: plate grounds only (no full row search, which would repeat the first
pass), contrast >= ``SWEEP_CONTRAST`` (60, against the first pass's 90), grounds from 10 px
tall, one ink threshold. Grounds mostly inside pixels already rewritten are skipped, and so
are grounds the first pass magnified and found no row in whose pixels are unchanged (the
stage passes its :class:`~veilchain.anonymizer.plates.memo.ZoomMemo`; same answer). Every
plate it finds whose quad is less than half rewritten is redrawn with uniform random text by
the stage (``found_by: "second_look"``); with ``strict`` the image is refused instead
(:func:`refuse_uncovered`).

Outside the rewritten regions the output equals the input, so the sweep sees the original
pixels there, through a second, more permissive view.
"""

from __future__ import annotations

import cv2
import numpy as np

from veilchain.anonymizer.plates.detect import PlateDetection, PlateDetector, PlateFinder
from veilchain.anonymizer.plates.memo import ZoomMemo
from veilchain.errors import UncoveredPlateError

#: The sweep's contrast threshold (grey levels between ink and ground; the first pass: 90)
#: and the heights of the plate grounds it looks at (the first pass: 14-64 px).
SWEEP_CONTRAST = 60.0
SWEEP_GROUND_PX = (10, 64)
#: The one ink threshold it tries in a magnified ground (the first pass: 12, then 32; the
#: second found nothing more on the tuning set and cost a fifth of the sweep's time).
SWEEP_OFFSETS = (12,)
#: A plate the sweep finds counts as handled when this fraction of its quad was rewritten.
COVERED_FRACTION = 0.5


def sweep_detector() -> PlateDetector:
    """The detector the second look runs."""
    return PlateDetector(
        scales=(1.0,),
        min_contrast=SWEEP_CONTRAST,
        ground_px=SWEEP_GROUND_PX,
        text_rows=False,
        offsets=SWEEP_OFFSETS,
    )


def covered_fraction(quad: np.ndarray, covered: np.ndarray) -> float:
    """The share of the pixels inside ``quad`` (inside the image) that ``covered`` marks
    (drawn in the quad's box only)."""
    H, W = covered.shape[:2]
    q = np.round(np.asarray(quad, np.float64))
    x0, y0 = (int(max(v, 0)) for v in q.min(0))
    x1, y1 = int(min(q[:, 0].max() + 1, W)), int(min(q[:, 1].max() + 1, H))
    if x1 <= x0 or y1 <= y0:
        return 1.0
    inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillConvexPoly(inside, (q - [x0, y0]).astype(np.int32), 1)
    n = int(inside.sum())
    return float(covered[y0:y1, x0:x1][inside > 0].sum() / n) if n else 1.0


def uncovered_plates(
    detector: PlateFinder,
    image: np.ndarray,
    covered: np.ndarray,
    memo: ZoomMemo | None = None,
) -> tuple[list[PlateDetection], int]:
    """Plates ``detector`` finds in ``image`` outside ``covered`` (H, W bool), and how many it
    found in all. ``memo``: the first pass's magnified grounds that held no row; the sweep
    does not magnify them again where their pixels are unchanged (same answer, less work)."""
    found = detector.detect(image, skip=covered, memo=memo)
    missed = [p for p in found if covered_fraction(p.quad, covered) < COVERED_FRACTION]
    return missed, len(found)


def refuse_uncovered(sweep: dict) -> None:
    """``strict``: an image in which the second look had to redraw a plate is refused."""
    if sweep.get("uncovered"):
        raise UncoveredPlateError(
            f"the plates' second look found {sweep['uncovered']} plate(s) that detection "
            "missed; they were redrawn with random text, but --strict refuses such an image"
        )
