"""The ``plates`` stage of the pipeline: detect, read, perturb the text under epsilon-DP,
draw the new plate in place of the old one, and report what happened to each plate.

Per plate, one of three things happens, and the plate is never left as it was:
  ``dp_text``      OCR read it: the new text is the read text under k-ary randomized response
                   (:mod:`veilchain.anonymizer.plates.dp`), and the report carries the edit
                   distance between the two, measured here (the read text is never stored)
  ``random_text``  OCR could not read it (or no OCR engine is installed): the new text is
                   uniform random of the row's length, independent of the plate
  ``masked``       the plate is too small or degenerate to draw on: filled with its ground colour

Then the second look (:mod:`veilchain.anonymizer.plates.second_look`) sweeps the output for
plates detection missed and redraws each with random text (``found_by: "second_look"``).

Every plate's quad is first grown over the rest of its plate
(:mod:`veilchain.anonymizer.plates.extent`: a detection may hold only part of it). Candidates
on anonymized faces, and unread ones on a person's head or torso, are no plates and are left
alone (:mod:`veilchain.anonymizer.plates.people`); the report counts them under
``plates_ruled_out``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import cv2
import numpy as np

from veilchain.anonymizer.plates.deblurred import DeblurringDetector
from veilchain.anonymizer.plates.detect import PlateDetection, PlateDetector, PlateFinder
from veilchain.anonymizer.plates.dp import (
    MECHANISM,
    PLATE_ALPHABET,
    edit_distance,
    random_text,
    randomized_response,
)
from veilchain.anonymizer.plates.extent import whole_plate
from veilchain.anonymizer.plates.learned import LearnedPlateDetector, UnionDetector
from veilchain.anonymizer.plates.memo import ZoomMemo
from veilchain.anonymizer.plates.ocr import OcrResult, PlateReader
from veilchain.anonymizer.plates.people import People
from veilchain.anonymizer.plates.render import font_path, mask_plate, measure_look, paste_plate
from veilchain.anonymizer.plates.second_look import sweep_detector, uncovered_plates
from veilchain.errors import AnonymizationError, InputError

DEFAULT_PLATE_EPSILON = 1.0
#: Plates smaller than this (quad area, px^2) are masked instead of redrawn.
MIN_DRAW_AREA = 60.0


@dataclass
class PlateReport:
    """What happened to one plate. ``box`` and ``quad`` stay local (:meth:`to_dict` drops
    them): they are functions of the original pixels."""

    index: int
    box: tuple[float, float, float, float]
    quad: list[list[float]]
    height_px: float
    action: str  # dp_text, random_text or masked
    ocr_read: bool
    ocr_reason: str | None
    epsilon: float | None  # spent on this plate's text (None: no text was read)
    n_chars: int
    edit_distance: int | None  # read text -> published text (None: nothing was read)
    changed_fraction: float  # of the plate's pixels, how many the new plate changed
    found_by: str = "detection"  # or "second_look"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for private in ("box", "quad", "height_px"):
            del d[private]
        d["changed_fraction"] = round(d["changed_fraction"], 4)
        return d


class PlateAnonymizer:
    """Replace every licence plate (see the module docstring). ``reader`` None: no OCR, every
    plate gets random text (fails closed; the report says so). ``sweeper``: the second
    look's detector (None: :func:`~veilchain.anonymizer.plates.second_look.sweep_detector`)."""

    def __init__(
        self,
        detector: PlateFinder | None = None,
        reader: PlateReader | None = None,
        *,
        epsilon: float = DEFAULT_PLATE_EPSILON,
        reader_error: str | None = None,
        sweeper: PlateFinder | None = None,
    ) -> None:
        if not (isinstance(epsilon, int | float) and 0 < epsilon < float("inf")):
            raise InputError(f"the plate epsilon must be a positive number, got {epsilon!r}")
        self.detector: PlateFinder = detector or PlateDetector()
        self.reader = reader
        self.reader_error = reader_error
        self.epsilon = float(epsilon)
        self.sweeper: PlateFinder = sweeper or sweep_detector()

    def privacy_params(self, *, second_look: bool = True) -> dict[str, Any]:
        """What goes on chain and in the manifest next to the face method's parameters.
        ``second_look``: whether the pipeline runs the sweep (off: ``"second_look": "off"``)."""
        return {
            "epsilon": self.epsilon,
            "mechanism": MECHANISM,
            "alphabet_size": len(PLATE_ALPHABET),
            "unread_plates": "uniform random text",
            "detector": self.detector.describe(),
            "ocr": self.reader.describe() if self.reader else None,
            "second_look": self.sweeper.describe() if second_look else "off",
            "font": font_path().rsplit("/", 1)[-1],
        }

    def anonymize(
        self,
        out: np.ndarray,
        original: np.ndarray,
        rng_for,
        timing: dict[str, float],
        *,
        second_look: bool = True,
        covered: np.ndarray | None = None,
        sweep: dict[str, int] | None = None,
        faces: Sequence = (),
        ruled: dict[str, int] | None = None,
    ) -> list[PlateReport]:
        """Find plates in ``original`` and redraw them in ``out`` (in place). ``rng_for(i)``
        gives plate i's random stream. With ``second_look``, then sweep ``out`` for plates
        outside the redrawn ones and ``covered`` (pixels already rewritten, e.g. faces) and
        redraw those with random text; ``sweep`` (if given) receives how many plates the
        sweep saw (``found``) and had to redraw (``uncovered``). ``faces``: the face stage's
        detections (``box``, ``keypoints``/``landmarks``); candidates on them or on the
        torsos below them are ruled out (:mod:`~veilchain.anonymizer.plates.people`), and
        ``ruled`` (if given) receives how many, by reason."""
        t = time.perf_counter()
        memo = ZoomMemo()  # the first pass's fruitless magnifications, which the sweep skips
        plates = self.detector.detect(original, memo=memo)
        timing["plates_detect"] = timing.get("plates_detect", 0.0) + time.perf_counter() - t
        t = time.perf_counter()
        if self.reader is not None:
            readings = self.reader.read_all(original, plates)
        else:
            reason = self.reader_error or "no OCR engine"
            readings = [OcrResult(None, 0.0, reason) for _ in plates]
        timing["plates_ocr"] = timing.get("plates_ocr", 0.0) + time.perf_counter() - t
        t = time.perf_counter()
        people = People(faces)
        counts_out = {"on_faces": 0, "on_people": 0}
        kept = []
        for p, r in zip(plates, readings, strict=True):
            why = people.ruled_out(p, r.text is not None, covered)  # the quad as detected
            if why is None:
                kept.append((_whole(p, original, covered), r))
            else:
                counts_out[why] += 1
        rewritten = np.zeros(out.shape[:2], bool) if covered is None else covered.copy()
        reports = [
            self._replace(out, original, p, r, rng_for(i), i, rewritten)
            for i, (p, r) in enumerate(kept)
        ]
        timing["plates_render"] = timing.get("plates_render", 0.0) + time.perf_counter() - t
        counts = {"found": 0, "uncovered": 0}
        if second_look:
            t = time.perf_counter()
            missed, counts["found"] = uncovered_plates(self.sweeper, out, rewritten, memo)
            for p in list(missed):  # the sweep's plates are never read
                why = people.ruled_out(p, False, None)
                if why is not None:
                    missed.remove(p)
                    counts_out[why] += 1
            missed = [_whole(p, original, covered) for p in missed]
            counts["uncovered"] = len(missed)
            unread = OcrResult(None, 0.0, "found by the second look; not read")
            for p in missed:
                i = len(reports)
                reports.append(
                    self._replace(out, original, p, unread, rng_for(i), i, rewritten,
                                  found_by="second_look")
                )  # fmt: skip
            timing["plates_second_look"] = (
                timing.get("plates_second_look", 0.0) + time.perf_counter() - t
            )
        if sweep is not None:
            sweep.update(counts)
        if ruled is not None:
            ruled.update(counts_out)
        return reports

    def _replace(
        self,
        out,
        original,
        plate: PlateDetection,
        reading: OcrResult,
        rng,
        index,
        rewritten: np.ndarray | None = None,
        found_by: str = "detection",
    ) -> PlateReport:
        """Redraw one plate in ``out``; marks the pixels it rewrote in ``rewritten``."""
        area = float(cv2.contourArea(plate.quad.astype(np.float32)))
        # colours and light from the text row: inside the plate whatever quad was found
        look = measure_look(original, plate.row_quad, plate.dark_text)
        eps = dist = None
        if area < MIN_DRAW_AREA:
            action = "masked"
            drawn = mask_plate(out, plate.quad, look)
        else:
            if reading.text is not None:
                action, eps = "dp_text", self.epsilon
                new = randomized_response(reading.text, self.epsilon, rng)
                dist = edit_distance(reading.text, new)
            else:
                action = "random_text"
                new = random_text(max(plate.n_chars, 1), rng)
            try:
                drawn = paste_plate(out, plate.quad, new, look, rng)
            except (cv2.error, ValueError) as exc:  # a degenerate quad: cover it anyway
                action, eps, dist = "masked", None, None
                reason = f"could not draw a plate here ({type(exc).__name__}); masked"
                reading = OcrResult(reading.text, reading.confidence, reason)
                drawn = mask_plate(out, plate.quad, look)
        if not drawn.mask.any():
            raise AnonymizationError(f"plate {index} lies outside the image; nothing to redraw")
        box = (drawn.rows, drawn.cols)
        if rewritten is not None:
            rewritten[box] |= drawn.mask
        changed = (out[box][drawn.mask] != original[box][drawn.mask]).any(1).mean()
        return PlateReport(
            index=index,
            box=plate.box,
            quad=np.round(plate.quad, 1).tolist(),
            height_px=round(plate.height, 1),
            action=action,
            ocr_read=reading.text is not None,
            ocr_reason=reading.reason,
            epsilon=eps,
            n_chars=plate.n_chars,
            edit_distance=dist,
            changed_fraction=float(changed),
            found_by=found_by,
        )


def _whole(plate: PlateDetection, image: np.ndarray, covered: np.ndarray | None) -> PlateDetection:
    """``plate`` with its quad grown over the rest of the plate, not into the pixels the face
    stage rewrote (:func:`~veilchain.anonymizer.plates.extent.whole_plate`)."""
    return replace(plate, quad=whole_plate(image, plate.quad, keep_out=covered))


def build_plate_anonymizer(epsilon: float = DEFAULT_PLATE_EPSILON) -> PlateAnonymizer:
    """The default stage: the text-row detector joined by the learned one
    (:class:`~veilchain.anonymizer.plates.learned.UnionDetector`; its weights missing or
    damaged: :class:`~veilchain.errors.ModelLoadError`), both reading a deblurred copy of an
    image smeared by camera shake too (:mod:`~veilchain.anonymizer.plates.deblurred`), and
    Tesseract, or (when Tesseract is
    missing) no OCR, in which case every plate gets random text and the report says why."""
    try:
        reader = PlateReader()
        error = None
    except AnonymizationError as exc:
        reader, error = None, str(exc)
    detector = DeblurringDetector(UnionDetector(PlateDetector(), LearnedPlateDetector()))
    return PlateAnonymizer(detector, reader, epsilon=epsilon, reader_error=error)
