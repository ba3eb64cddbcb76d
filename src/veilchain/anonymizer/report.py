"""What the anonymizer reports: per face (:class:`FaceReport`), per attempt
(:class:`AttemptCheck`) and per image (:func:`build_report`, the published privacy report).

Nothing published is derived from the original pixels beyond the measured figures
(distances, counts): a face's box, detector score and random-stream key stay local.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from veilchain.anonymizer.faces import FaceDetection


@dataclass
class FaceReport:
    """What happened to one face. ``passed`` is None when no identity check ran.

    ``box``, ``score`` and ``key`` stay local: :meth:`to_dict`, the published form, leaves
    them out, since each is a function of the original pixels that a holder of a candidate
    photo could recompute and match (see docs/anonymizer.md, "What the report publishes")."""

    index: int
    box: tuple[float, float, float, float]
    score: float
    attempts: int
    distance: float | None  # dlib distance to the original (or the nearest gallery face)
    passed: bool | None
    key: int | None = None
    low_confidence: bool = False
    detected: bool | None = None  # generators: HOG finds the new face again
    landmark_displacement: float | None = None  # generators: mean landmark shift / IOD
    kept_attempt: int = 1  # which attempt's random stream the output comes from
    #: why the whole head was covered by the fallback region method instead (None: it was not)
    fallback: str | None = None
    found_by: str = "detector"  # or "second_look": missed by detection, caught in the output

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for private in ("box", "score", "key"):
            del d[private]
        for k in ("distance", "landmark_displacement"):
            d[k] = None if d[k] is None else round(d[k], 4)
        return d


@dataclass(frozen=True)
class AttemptCheck:
    """What the checks saw in one attempt's output (None: not checked)."""

    distance: float | None
    passed: bool | None
    detected: bool | None
    displacement: float | None

    def acceptable(self, tolerance: float | None) -> bool:
        """Not recognized and (unless ``tolerance`` is None) still a face with its pose
        kept: stop retrying."""
        if tolerance is None:
            return bool(self.passed)
        return (
            bool(self.passed)
            and self.detected is not False
            and (self.displacement is None or self.displacement <= tolerance)
        )

    def rank(self, tolerance: float | None) -> tuple:
        """Order of preference when no attempt is acceptable: unrecognized faces first (HOG
        finds before HOG misses, each by least landmark shift), then recognized ones (HOG
        finds first, each by largest identity distance). ``tolerance`` None: by identity
        distance only."""
        if tolerance is None:
            return (int(bool(self.passed)), self.distance or 0.0)
        found = int(self.detected is not False)
        if self.passed:
            return (1, found, -(self.displacement or 0.0))
        return (0, found, self.distance or 0.0)


@dataclass
class AnonymizationResult:
    image: np.ndarray
    faces: list[FaceReport]
    report: dict[str, Any]
    detections: list[FaceDetection] = field(default_factory=list, repr=False)
    plates: list = field(default_factory=list)  # PlateReport per plate (boxes: local only)

    @property
    def failed(self) -> list[FaceReport]:
        return [f for f in self.faces if f.passed is False]


def build_report(
    anon, reports, low_light, sweep, timing, plates=(), plate_sweep=None, plate_ruled=None
) -> dict[str, Any]:
    """The published privacy report: nothing in it is derived from the original pixels
    beyond the measured figures (distances, counts); see :class:`FaceReport`. ``plates``:
    the plates stage's :class:`PlateReport` list (published without boxes or text);
    ``plate_sweep``: what the plates' second look found and had to redraw; ``plate_ruled``:
    how many plate candidates were ruled out on faces and on people (not redrawn)."""
    failed = [r.index for r in reports if r.passed is False]
    unverified = [
        r.index for r in reports if r.low_confidence and r.passed is None and r.distance is not None
    ]
    fell_back = [r for r in reports if r.fallback is not None]
    report = {
        "method": anon.method.name,
        "model_hash": anon.model_hash(),
        "privacy_params": anon.privacy_params(),
        "seed": anon.seed,
        "detector": anon.describe_detection(),
        "fallback_method": anon.fallback.name,
        "n_faces": len(reports),
        "n_failed": len(failed),
        "n_unverified": len(unverified),
        "n_fallback": len(fell_back),
        "second_look": sweep,
        "low_light": low_light,
        "identity_check": anon.embedder is not None,
        "identity_threshold": anon.identity_threshold,
        "gallery_faces": 0 if anon.gallery is None else len(anon.gallery),
        "check_score_floor": anon.score_floor(),
        "max_attempts": anon.max_attempts(),
        "landmark_tolerance": anon.face_tolerance,
        "faces": [r.to_dict() for r in reports],
        "identifiers": list(getattr(anon, "identifiers", ["faces"])),
        "timing_s": {k: round(v, 5) for k, v in timing.items()},
    }
    eps = report["privacy_params"].get("epsilon")
    if eps is not None and reports:
        spent = max(r.attempts for r in reports) * float(eps)
        report["epsilon_spent_max"] = spent
        report["privacy_note"] = (
            "each attempt releases a fresh eps-DP output; k attempts compose to k*eps "
            "(basic composition), and the identity check reads the original face"
        )
    if getattr(anon, "plates", None) is not None:
        report["n_plates"] = len(plates)
        report["plates"] = [p.to_dict() for p in plates]
        report["plates_second_look"] = plate_sweep or {"found": 0, "uncovered": 0}
        report["plates_ruled_out"] = plate_ruled or {"on_faces": 0, "on_people": 0}
        unread = [p for p in plates if not p.ocr_read]
        if unread:
            report["plates_note"] = (
                f"{len(unread)} plate(s) not read by OCR got uniform random text (or a mask); "
                "each read plate's text is eps-DP (k-ary randomized response)"
            )
    warnings = []
    plates_on = getattr(anon, "plates", None) is not None
    if not reports and not plates:
        found = "no face or plate found" if plates_on else "no face found"
        warnings.append(f"{found}; image returned unchanged")
    elif not reports and getattr(anon, "faces", True):
        warnings.append("no face found")
    if unverified:
        warnings.append(
            f"{len(unverified)} low-confidence detection(s) (score < "
            f"{anon.score_floor()}) were anonymized but still embed close to their "
            "original; likely not faces, so they are not counted as failed"
        )
    if fell_back:
        reasons = sorted({r.fallback for r in fell_back})
        warnings.append(
            f"{len(fell_back)} face(s) covered over the whole head with "
            f"{anon.fallback.name} ({', '.join(reasons)}); no identity check on those"
        )
    if warnings:
        report["warning"] = "; ".join(warnings)
    return report
