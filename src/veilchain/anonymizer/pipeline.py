"""The anonymization pipeline: detect, replace every face, check identity, report.

``Anonymizer(detector, method)`` runs one method on images. A method is either a
:class:`FaceGenerator` (CIAGAN, the DP latent autoencoder: works on aligned 128x128 crops) or a
:class:`RegionMethod` (blur, pixelate, mask, DP-Pix: works on the face region in place). For a
generator each face is aligned, generated, given the original's lighting, warped back and
blended into the dilated face mask; for a region method the new pixels are copied into the
mask. Pixels outside the dilated masks are never touched.

Identity check: the original and the anonymized face are embedded with dlib's 128-d model; a
distance under ``identity_threshold`` means a recognizer still matches them, and a stochastic
method is retried with a fresh random stream (up to ``identity_retries`` more times; by
default 9 for a generator held to the face checks below, else 5). With a
``gallery`` (embeddings of other photos of known people) the distance is to the nearest of the
original and every gallery face, so an output matching another photo of the person fails. For a
generator without epsilon (CIAGAN) an attempt must also still be a face: HOG finds it again
and its re-predicted landmarks moved at most ``landmark_tolerance`` inter-ocular distances;
when no attempt satisfies all three, the best one is kept (see ``AttemptCheck.rank``). DP retries
for identity only, since each attempt spends epsilon again. Every face's
:class:`FaceReport` carries its distance, attempts, ``passed``, ``detected`` and landmark
displacement; a face that stays recognizable is reported as failed (``strict=True`` raises
:class:`IdentityCheckError`).
Under-exposed images are enhanced (detection, landmarks, both embeddings, the generator's
input crop); the output pixels are never enhanced: a generated face is given the original's
lighting before blending.
Output is a pure function of (input pixels, method, seed): same input and seed, same bytes.

Identifiers: ``identifiers`` names what is anonymized, "faces" and/or "plates". The plates
stage (:mod:`veilchain.anonymizer.plates`) runs after the faces on the original pixels and
redraws every licence plate with epsilon-DP text; its parameters join
:meth:`Anonymizer.privacy_params` under "plates" and each plate's entry the report's "plates".
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from veilchain.anonymizer.alignment import DEFAULT_CROP_SIZE
from veilchain.anonymizer.attempts import FaceChecks, Trial
from veilchain.anonymizer.baselines import GaussianBlur
from veilchain.anonymizer.detectors import (
    DEFAULT_SWEEP_THRESHOLD,
    CenterFaceDetector,
    DetectedFace,
    locate_face,
    same_place,
)
from veilchain.anonymizer.embedding import FaceEmbedder
from veilchain.anonymizer.faces import (
    FaceDetection,
    HogDetector,
    enhance_low_light,
    is_low_light,
)
from veilchain.anonymizer.methods import FaceGenerator, RegionMethod, is_face_generator
from veilchain.anonymizer.plates.second_look import refuse_uncovered as refuse_uncovered_plates
from veilchain.anonymizer.plates.stage import PlateAnonymizer
from veilchain.anonymizer.replacement import (
    FaceShape,
    Written,
    changed_share,
    cover_head,
    plan_face,
    write_face,
)
from veilchain.anonymizer.report import AnonymizationResult, AttemptCheck, FaceReport, build_report
from veilchain.anonymizer.second_look import DEFAULT_SWEEP_ANGLES, uncovered_faces
from veilchain.errors import IdentityCheckError, InputError, UncoveredFaceError

DEFAULT_IDENTITY_THRESHOLD = 0.6
#: A dark image's candidate pass also reads the brightened image at this scale.
DARK_SCALE = 0.5
DEFAULT_IDENTITY_RETRIES = 5
#: Generators held to the face checks (CIAGAN) must pass three checks at once and spend no
#: privacy budget per attempt, so they get more retries by default.
DEFAULT_FACE_RETRIES = 9
#: Detections scoring below this (dlib HOG score; real faces in the samples score 0.7-2.2) are
#: "low confidence": anonymized and checked like any face, but a match that survives every
#: attempt is reported as unverifiable (``passed=None``) instead of failed, since dlib's
#: recognizer also "matches" a non-face patch to itself (e.g. a mission patch scoring 0.10).
DEFAULT_CHECK_SCORE_FLOOR = 0.25
#: Generators: an attempt whose landmarks (re-predicted on the output) moved more than this
#: (mean, in inter-ocular distances) is retried like a recognized one.
DEFAULT_LANDMARK_TOLERANCE = 0.10
#: Dilation of the face mask, as a fraction of the inter-ocular distance.
DEFAULT_DILATION = 0.15
#: Width of the feathered blend band, as a fraction of the inter-ocular distance.
DEFAULT_FEATHER = 0.25
#: A rewritten face whose output changed less than this share of the centre of the
#: detector's box (see :func:`~veilchain.anonymizer.replacement.changed_share`) left part of
#: the face the detector saw as it was (a generated face aligned to landmarks that fit only
#: part of a turned head): the face is covered over its head instead ("partly_unchanged").
#: Every rewritten face of the recall set's upright images changes 0.90 or more; the misses
#: on its turned copy 0.44-0.84 (docs/anonymizer.md, "Faces the rewrite leaves in part").
MIN_CHANGED_SHARE = 0.85


def _face_key_base(secret: bytes, image: np.ndarray) -> int:
    """A per-image random-stream key: HMAC-SHA256 of the pixels under a secret that is never
    published, so nobody can recompute it from a candidate photo."""
    h = hmac.new(secret, str(image.shape).encode(), hashlib.sha256)
    h.update(np.ascontiguousarray(image).data)
    return int.from_bytes(h.digest()[:8], "big")


_STAGES = ("detect", "landmarks", "generate", "blend", "identity", "fallback", "second_look")


class Anonymizer:
    """Replace every face in an image with ``method``; see the module docstring."""

    _sweeper: CenterFaceDetector | None  # the second look's detector, opened on first use

    def __init__(
        self,
        detector: HogDetector,
        method: FaceGenerator | RegionMethod,
        *,
        embedder: FaceEmbedder | None = None,
        identity_threshold: float = DEFAULT_IDENTITY_THRESHOLD,
        identity_retries: int | None = None,
        seed: int = 0,
        strict: bool = False,
        dilation: float = DEFAULT_DILATION,
        feather: float = DEFAULT_FEATHER,
        blend_mode: str = "feather",
        crop_size: int = DEFAULT_CROP_SIZE,
        check_score_floor: float | None = None,
        landmark_tolerance: float = DEFAULT_LANDMARK_TOLERANCE,
        gallery: np.ndarray | None = None,
        fallback: RegionMethod | None = None,
        second_look: bool = True,
        sweep_threshold: float = DEFAULT_SWEEP_THRESHOLD,
        sweep_angles: Sequence[float] = DEFAULT_SWEEP_ANGLES,
        secret: bytes | None = None,
        plates: PlateAnonymizer | None = None,
        faces: bool = True,
        min_changed_share: float = MIN_CHANGED_SHARE,
    ) -> None:
        if not isinstance(method, FaceGenerator | RegionMethod):
            raise InputError(f"{method!r} is neither a FaceGenerator nor a RegionMethod")
        if fallback is not None and not isinstance(fallback, RegionMethod):
            raise InputError(f"the fallback {fallback!r} must be a region method")
        if identity_retries is not None and identity_retries < 0:
            raise InputError("identity_retries must be >= 0")
        self.detector = detector
        self.method = method
        self.embedder = embedder
        self.identity_threshold = float(identity_threshold)
        self.seed = int(seed)
        self.strict = strict
        # 0 turns the partly_unchanged rule off: for a measurement that must see the rewrite,
        # and for feature-selective faces, which keep the rest of the face by design
        self.min_changed_share = (
            0.0 if getattr(method, "features", ()) else float(min_changed_share)
        )
        self.dilation = dilation
        self.feather = feather
        self.blend_mode = blend_mode
        self.crop_size = crop_size
        # None: the detector's own floor (its scores have their own scale)
        self.check_score_floor = None if check_score_floor is None else float(check_score_floor)
        self.landmark_tolerance = float(landmark_tolerance)
        # known faces (dlib embeddings) every output must also stay away from, e.g. other
        # photos of the same people: the check then covers more than the face's own source
        self.gallery = None if gallery is None else np.asarray(gallery, np.float64).reshape(-1, 128)
        if self.gallery is not None and embedder is None:
            raise InputError("a gallery needs the identity check (an embedder)")
        self.is_generator = is_face_generator(method)
        # a DP attempt spends epsilon again: DP retries for identity only (faces still reported)
        dp = "epsilon" in method.privacy_params()
        self.face_tolerance = self.landmark_tolerance if self.is_generator and not dp else None
        if identity_retries is None:  # None: the default for this kind of method
            face_checked = self.face_tolerance is not None
            identity_retries = DEFAULT_FACE_RETRIES if face_checked else DEFAULT_IDENTITY_RETRIES
        self.identity_retries = int(identity_retries)
        # faces the generator cannot take (and those the second look finds) are covered over
        # the whole head by a region method: the method itself, or for a generator this one
        self.fallback = fallback or (GaussianBlur() if self.is_generator else method)
        self.second_look = bool(second_look)
        self.sweep_threshold = float(sweep_threshold)
        self.sweep_angles = tuple(float(a) for a in sweep_angles)
        # random streams are keyed by this secret (never published); None: fresh entropy
        self.secret = os.urandom(32) if secret is None else bytes(secret)
        self._face_checker = HogDetector() if self.is_generator else None
        # the second look always uses the CNN, whatever detected the faces first
        self._sweeper = detector if isinstance(detector, CenterFaceDetector) else None
        # the plates stage (None: plates are left alone); faces=False skips the face stages
        self.plates = plates
        self.faces = bool(faces)
        if not self.faces and plates is None:
            raise InputError("nothing to anonymize: name faces, plates or both")

    @property
    def shape(self) -> FaceShape:
        return FaceShape(self.dilation, self.feather, self.blend_mode, self.crop_size)

    @property
    def identifiers(self) -> list[str]:
        return [n for n, on in (("faces", self.faces), ("plates", self.plates)) if on]

    @property
    def name(self) -> str:
        return self.method.name

    def model_hash(self) -> str:
        return self.method.model_hash()

    def privacy_params(self) -> dict[str, Any]:
        params = dict(self.method.privacy_params())
        if self.plates is not None:
            params["plates"] = self.plates.privacy_params(second_look=self.second_look)
        if not self.faces:
            params["faces"] = "off"
        return params

    def _stochastic(self) -> bool:
        return self.is_generator or bool(getattr(self.method, "stochastic", False))

    def describe_detection(self) -> dict[str, Any]:
        """What the privacy report records about detection and the second look."""
        describe = getattr(self.detector, "describe", None)
        return {
            **(describe() if describe else {"name": type(self.detector).__name__}),
            "second_look": self.second_look,
            "sweep_threshold": self.sweep_threshold if self.second_look else None,
            "sweep_angles": list(self.sweep_angles) if self.second_look else [],
        }

    def track_key(self, track: int) -> int:
        """The random-stream key of a tracked face in a video (secret-keyed, like
        :meth:`anonymize`'s per-image keys), so a person keeps one target identity."""
        digest = hmac.new(self.secret, f"track:{int(track)}".encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") % (1 << 63)

    def rng_for(self, key: int, attempt: int) -> np.random.Generator:
        """The random stream for one face (``key``) and attempt: a pure function of the seed
        and the key (itself keyed by the secret)."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, key, attempt]))

    # -- the per-face step ---------------------------------------------------
    def _cover_head(self, out, covered, box, key: int, timing: dict[str, float]) -> None:
        assert isinstance(self.fallback, RegionMethod), "a generator falls back to a blur"
        cover_head(out, covered, box, self.fallback, self.rng_for(key, 1), timing)

    # -- public --------------------------------------------------------------
    def detect(self, image: np.ndarray) -> list[FaceDetection]:
        """Every face in an RGB image, with 68 landmarks and, where they cannot be trusted,
        the reason the face will fall back to a head region (low light handled as in
        :meth:`anonymize`)."""
        low_light = self._low_light(image)
        work = enhance_low_light(image) if low_light else image
        return [self._locate(work, f) for f in self._detect(work, low_light)]

    def _detect(self, work: np.ndarray, low_light: bool) -> list[DetectedFace]:
        """The detector's faces; with the second look on, also those scoring between the
        sweep's threshold and the detector's (found in the same pass, at full resolution).
        A brightened dark image is also read at :data:`DARK_SCALE` for candidates: shrinking
        it averages the noise the brightening lifted (see docs/anonymizer.md, "Face recall")."""
        if not self.second_look:
            return self.detector.detect_faces(work)
        threshold = self._candidate_threshold()
        found = self.detector.detect_faces(work, threshold=threshold)
        if low_light and threshold is not None:
            small = self.detector.detect_faces(
                work, threshold=threshold, scale=DARK_SCALE, verify=False
            )
            found += [f for f in small if not any(same_place(f.box, o.box) for o in found)]
        return found

    def _candidate_threshold(self) -> float | None:
        own = getattr(self.detector, "threshold", None)
        return None if own is None else min(own, self.sweep_threshold)

    def _locate(self, work: np.ndarray, face: DetectedFace) -> FaceDetection:
        """68 landmarks for a face; one under the detector's own threshold (a candidate) is
        covered over the whole head ("low_score")."""
        own = getattr(self.detector, "threshold", None)
        if own is not None and face.score < own:
            return FaceDetection(face.box, face.score, np.zeros((68, 2), np.float32),
                                 keypoints=face.keypoints, fallback="low_score")  # fmt: skip
        return locate_face(work, face)

    def _low_light(self, image: np.ndarray) -> bool:
        return bool(getattr(self.detector, "low_light", True)) and is_low_light(image)

    def anonymize(
        self,
        image: np.ndarray,
        *,
        detections: Sequence[FaceDetection] | None = None,
        face_keys: Sequence[int] | None = None,
        first_attempts: Sequence[int] | None = None,
    ) -> AnonymizationResult:
        """Anonymize every face of an RGB uint8 image; see :class:`AnonymizationResult`.

        ``detections`` skips detection (e.g. from a video tracker); ``face_keys`` fixes each
        face's random stream (the default derives it from the image under the secret), so
        a tracked person keeps one target identity across frames; ``first_attempts`` names the
        attempt (random stream) each face tries first, e.g. the one a track kept last frame
        (its :attr:`FaceReport.kept_attempt`), so retries do not switch identities mid-video.
        """
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"expected an RGB uint8 image, got {image.dtype} {image.shape}")
        timing = dict.fromkeys(_STAGES, 0.0)
        low_light = self._low_light(image)
        work = enhance_low_light(image) if low_light else image
        if not self.faces:
            detections = []
        elif detections is None:
            detections = self._find(work, low_light, timing)
        detections = list(detections)
        base = _face_key_base(self.secret, image)
        if face_keys is None:
            face_keys = [(base + i) % (1 << 63) for i in range(len(detections))]
        firsts = [1] * len(detections) if first_attempts is None else list(first_attempts)
        if len(face_keys) != len(detections) or len(firsts) != len(detections):
            raise InputError("face_keys and first_attempts need one entry per detection")

        out = image.copy()
        covered = np.zeros(image.shape[:2], bool)
        originals = self._original_embeddings(work, detections, timing)
        reports: list[FaceReport] = []
        for i, (det, key) in enumerate(zip(detections, face_keys, strict=True)):
            if det.fallback is None:
                reports.append(self._anonymize_face(
                    out, covered, image, work, low_light, det, i, key, firsts[i],
                    originals[i], timing,
                ))  # fmt: skip
                continue
            self._cover_head(out, covered, det.box, key, timing)
            reports.append(FaceReport(i, det.box, det.score, 1, None, None, key=int(key),
                                      fallback=det.fallback))  # fmt: skip
        plate_reports, plate_sweep = [], {"found": 0, "uncovered": 0}
        plate_ruled = {"on_faces": 0, "on_people": 0}
        if self.plates is not None:
            plate_reports = self.plates.anonymize(
                out, image, lambda i: self.rng_for(self._plate_key(base, i), 1), timing,
                second_look=self.second_look, covered=covered, sweep=plate_sweep,
                faces=detections, ruled=plate_ruled,
            )  # fmt: skip
        sweep = {"found": 0, "uncovered": 0}
        if self.second_look and self.faces:
            sweep = self._sweep(out, covered, low_light, base, reports, timing)
        report = build_report(
            self, reports, low_light, sweep, timing,
            plates=plate_reports, plate_sweep=plate_sweep, plate_ruled=plate_ruled,
        )  # fmt: skip
        if self.strict:
            self._refuse(reports, sweep, report)
            refuse_uncovered_plates(plate_sweep)
        return AnonymizationResult(out, reports, report, detections, plate_reports)

    def _find(
        self, work: np.ndarray, low_light: bool, timing: dict[str, float]
    ) -> list[FaceDetection]:
        t = time.perf_counter()
        found = self._detect(work, low_light)
        timing["detect"] = time.perf_counter() - t
        t = time.perf_counter()
        detections = [self._locate(work, f) for f in found]
        timing["landmarks"] = time.perf_counter() - t
        return detections

    def _original_embeddings(
        self, work: np.ndarray, detections: list[FaceDetection], timing: dict[str, float]
    ) -> list[np.ndarray | None]:
        """Each face's dlib embedding before anonymization (None: not checked)."""
        checked = [n for n, d in enumerate(detections) if d.fallback is None]
        result: list[np.ndarray | None] = [None] * len(detections)
        if self.embedder is None or not checked:
            return result
        t = time.perf_counter()
        embeddings = self.embedder.embed(work, [detections[n].landmarks for n in checked])
        for row, n in enumerate(checked):
            result[n] = embeddings[row]
        timing["identity"] += time.perf_counter() - t
        return result

    def _sweep(self, out, covered, low_light, base, reports, timing) -> dict[str, int]:
        """The second look: cover (and report) every face the output still shows that no
        anonymized region covers."""
        t = time.perf_counter()
        seen = enhance_low_light(out) if low_light else out
        if self._sweeper is None:
            self._sweeper = CenterFaceDetector()
        missed, found = uncovered_faces(
            self._sweeper, seen, covered, threshold=self.sweep_threshold, angles=self.sweep_angles,
            also=out if low_light else None,
        )  # fmt: skip
        timing["second_look"] += time.perf_counter() - t
        for face in missed:
            i = len(reports)
            key = (base + i) % (1 << 63)
            self._cover_head(out, covered, face.box, key, timing)
            reports.append(FaceReport(i, face.box, face.score, 1, None, None, key=int(key),
                                      fallback="second_look", found_by="second_look"))  # fmt: skip
        return {"found": found, "uncovered": len(missed)}

    def _refuse(self, reports: list[FaceReport], sweep: dict[str, int], report: dict) -> None:
        """``strict``: a face that still matches, or one only the second look found, fails
        the image."""
        failed = [r.index for r in reports if r.passed is False]
        if failed:
            raise IdentityCheckError(
                f"{len(failed)} face(s) still matched the original (distance < "
                f"{self.identity_threshold}) after {report['max_attempts']} attempt(s); "
                "try another method"
            )
        if sweep["uncovered"]:
            raise UncoveredFaceError(
                f"the second look found {sweep['uncovered']} face(s) that detection missed; "
                "they were covered by the fallback, but --strict refuses such an image"
            )

    def _plate_key(self, base: int, index: int) -> int:
        digest = hmac.new(self.secret, f"plate:{base}:{index}".encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") % (1 << 63)

    def _anonymize_face(
        self, out, covered, image, work, low_light, det, index, key, first, emb, timing
    ) -> FaceReport:
        """Replace one face (retrying while a check fails, see attempts.py) and say what
        happened."""
        max_attempts = self.max_attempts()
        first = first if 1 <= first <= max_attempts else 1
        order = [first, *(a for a in range(1, max_attempts + 1) if a != first)]
        t = time.perf_counter()
        plan = plan_face(out.shape, image, work, det.landmarks, self.method, self.shape)
        timing["generate"] += time.perf_counter() - t
        if plan is None:  # the landmarks gave no region to write: cover the head instead
            self._cover_head(out, covered, det.box, key, timing)
            return FaceReport(index, det.box, det.score, 1, None, None, key=int(key),
                              fallback="no_face_region")  # fmt: skip
        checks = None  # emb is None exactly when there is no identity check
        if emb is not None:
            assert self.embedder is not None
            checks = FaceChecks(self.embedder, self._face_checker, self.gallery,
                                self.identity_threshold, self.face_tolerance, out, plan.rows,
                                plan.cols, low_light, det, emb, timing)  # fmt: skip
        trials: list[Trial] = []
        kept: Trial | None = None
        written: Written | None = None
        for position, attempt in enumerate(order):
            if written is not None:  # restore the face region before the next attempt
                written.undo(out)
            written = write_face(
                out, plan, self.method, self.shape, self.rng_for(key, attempt), emb, timing
            )
            if checks is None:
                break
            trial = checks.trial(position)
            trials.append(trial)
            if checks.accepts_now(trial):
                kept = trial
                break
            trial.seen = None  # ``out`` gets the next attempt
        assert written is not None, "at least one attempt is made"
        tried = len(trials) if trials else 1
        check = AttemptCheck(None, None, None, None)
        if checks is not None:
            kept = kept or checks.pick(trials)
            checks.measure(kept, "identity")
            checks.measure(kept, "face")  # reported, whatever decided the pick
            out[written.rows, written.cols] = kept.pixels
            check = kept.check(self.identity_threshold)
        if changed_share(image, out, det.box) < self.min_changed_share:
            written.undo(out)
            self._cover_head(out, covered, det.box, key, timing)
            return FaceReport(index, det.box, det.score, tried, None, None, key=int(key),
                              fallback="partly_unchanged")  # fmt: skip
        covered[written.rows, written.cols] |= written.mask
        passed = check.passed
        low = det.score < self.score_floor()
        if low and passed is False:
            passed = None  # still "matched", but nothing says it is a face: unverifiable
        return FaceReport(
            index,
            det.box,
            det.score,
            tried,
            check.distance,
            passed,
            key=int(key),
            low_confidence=low,
            detected=check.detected,
            landmark_displacement=check.displacement,
            kept_attempt=order[kept.position] if kept is not None else order[0],
        )

    def max_attempts(self) -> int:
        return 1 + (self.identity_retries if self._stochastic() else 0)

    def score_floor(self) -> float:
        if self.check_score_floor is not None:
            return self.check_score_floor
        return getattr(self.detector, "low_confidence_below", DEFAULT_CHECK_SCORE_FLOOR)
