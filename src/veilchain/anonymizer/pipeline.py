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
from pathlib import Path
from typing import Any

import numpy as np

from veilchain.anonymizer.alignment import (
    DEFAULT_CROP_SIZE,
    align_face,
    face_hull,
    face_mask,
    head_box_iod,
    head_mask,
    head_roi,
    inter_ocular_distance,
    transform_points,
    warp_back,
)
from veilchain.anonymizer.baselines import GaussianBlur
from veilchain.anonymizer.blending import blend
from veilchain.anonymizer.detectors import (
    DEFAULT_SWEEP_THRESHOLD,
    CenterFaceDetector,
    DetectedFace,
    build_detector,
    landmark_box,
    locate_face,
)
from veilchain.anonymizer.embedding import FaceEmbedder, face_distance
from veilchain.anonymizer.faces import (
    FaceDetection,
    HogDetector,
    enhance_low_light,
    is_low_light,
    landmarks_for_box,
    match_lighting,
)
from veilchain.anonymizer.files import gallery_embeddings
from veilchain.anonymizer.methods import (
    FaceGenerator,
    RegionMethod,
    build_fallback,
    build_method,
)
from veilchain.anonymizer.metrics import landmark_displacement
from veilchain.anonymizer.plates.second_look import refuse_uncovered as refuse_uncovered_plates
from veilchain.anonymizer.plates.stage import (
    DEFAULT_PLATE_EPSILON,
    PlateAnonymizer,
    build_plate_anonymizer,
)
from veilchain.anonymizer.report import AnonymizationResult, AttemptCheck, FaceReport, build_report
from veilchain.anonymizer.second_look import DEFAULT_SWEEP_ANGLES, uncovered_faces
from veilchain.errors import (
    AnonymizationError,
    IdentityCheckError,
    InputError,
    UncoveredFaceError,
)

DEFAULT_IDENTITY_THRESHOLD = 0.6
#: What an anonymizer covers, and the default of :func:`build_anonymizer`.
IDENTIFIERS = ("faces", "plates")
DEFAULT_IDENTIFIERS = ("faces",)
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


def _face_key_base(secret: bytes, image: np.ndarray) -> int:
    """A per-image random-stream key: HMAC-SHA256 of the pixels under a secret that is never
    published, so nobody can recompute it from a candidate photo."""
    h = hmac.new(secret, str(image.shape).encode(), hashlib.sha256)
    h.update(np.ascontiguousarray(image).data)
    return int.from_bytes(h.digest()[:8], "big")


_STAGES = ("detect", "landmarks", "generate", "blend", "identity", "fallback", "second_look")


def _roi(mask_box: tuple[int, int, int, int], shape, pad: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = mask_box
    h, w = shape[:2]
    return max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad)


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
        self.is_generator = isinstance(method, FaceGenerator) and hasattr(method, "generate")
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
            params["plates"] = self.plates.privacy_params()
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
    def _replace(
        self,
        out: np.ndarray,
        original: np.ndarray,
        work: np.ndarray,
        lm: np.ndarray,
        rng: np.random.Generator,
        embedding: np.ndarray | None,
        timing: dict[str, float],
    ) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
        """Write one anonymized face into ``out`` (in place), inside its dilated mask.

        Returns the region written and its previous pixels (to undo a failed attempt)."""
        iod = max(inter_ocular_distance(lm), 2.0)
        hull = face_hull(lm)
        r = int(round(self.dilation * inter_ocular_distance(lm))) + 2
        lo, hi = np.floor(hull.min(0)).astype(int), np.ceil(hull.max(0)).astype(int) + 1
        x0, y0, x1, y1 = _roi((lo[0], lo[1], hi[0], hi[1]), out.shape, r)
        if x1 <= x0 or y1 <= y0:
            return None
        mask = face_mask(lm, (y1 - y0, x1 - x0), dilation=self.dilation, offset=(x0, y0))
        if not mask.any():
            return None
        region = out[y0:y1, x0:x1]
        t0 = time.perf_counter()
        if self.is_generator:
            assert isinstance(self.method, FaceGenerator), "is_generator is this isinstance"
            crop, matrix = align_face(work, lm, self.crop_size)
            crop_lm = transform_points(lm, matrix)
            fake = self.method.generate(crop, crop_lm, rng, embedding=embedding)
            fake = np.asarray(fake)
            if fake.shape != crop.shape or fake.dtype != np.uint8:
                raise AnonymizationError(
                    f"{self.method.name} returned {fake.dtype} {fake.shape}, "
                    f"expected uint8 {crop.shape}"
                )
            t1 = time.perf_counter()
            orig_crop = crop if work is original else align_face(original, lm, self.crop_size)[0]
            crop_mask = face_mask(crop_lm, crop.shape)
            fake = match_lighting(fake, orig_crop, crop_mask)
            new = warp_back(fake, matrix, region.shape, offset=(x0, y0))
            ones = np.full(crop.shape[:2], 255, np.uint8)
            cover = warp_back(ones, matrix, region.shape, offset=(x0, y0)) >= 254
            mask = mask & cover
            blended = blend(region, new, mask, feather_px=self.feather * iod, mode=self.blend_mode)
        else:
            assert isinstance(self.method, RegionMethod), "__init__ admits only the two kinds"
            new = self.method.apply(region.copy(), mask, iod, rng)
            t1 = time.perf_counter()
            blended = blend(region, new, mask, mode="hard")
        previous = region.copy()
        out[y0:y1, x0:x1] = blended
        t2 = time.perf_counter()
        timing["generate"] += t1 - t0
        timing["blend"] += t2 - t1
        return slice(y0, y1), slice(x0, x1), previous, mask

    def _cover_head(
        self,
        out: np.ndarray,
        covered: np.ndarray,
        box: Sequence[float],
        rng: np.random.Generator,
        timing: dict[str, float],
    ) -> None:
        """Rewrite the whole head around ``box`` with the fallback region method."""
        t = time.perf_counter()
        x0, y0, x1, y1 = head_roi(box, out.shape)
        if x1 <= x0 or y1 <= y0:
            return
        mask = head_mask(box, (y1 - y0, x1 - x0), offset=(x0, y0))
        region = out[y0:y1, x0:x1]
        assert isinstance(self.fallback, RegionMethod), "a generator falls back to a blur"
        new = self.fallback.apply(region.copy(), mask, head_box_iod(box), rng)
        out[y0:y1, x0:x1] = blend(region, new, mask, mode="hard")
        covered[y0:y1, x0:x1] |= mask
        timing["fallback"] += time.perf_counter() - t

    def _check(
        self,
        out: np.ndarray,
        low_light: bool,
        det: FaceDetection,
        original: np.ndarray,
        timing: dict[str, float],
    ) -> AttemptCheck:
        """Embed the new face (as an attacker would: enhanced when dark) and, for a generator,
        ask whether HOG still finds it and how far its landmarks moved."""
        t = time.perf_counter()
        seen = enhance_low_light(out) if low_light else out
        lm = landmarks_for_box(seen, landmark_box(det))
        assert self.embedder is not None, "checks run only with an embedder"
        new_emb = self.embedder.embed(seen, [lm])
        distance = float(face_distance(new_emb, original)[0, 0])
        if self.gallery is not None:  # the nearest known face counts
            distance = min(distance, float(face_distance(new_emb, self.gallery).min()))
        detected = displacement = None
        if self._face_checker is not None:  # set for a generator only
            detected = self._face_checker.redetects(seen, landmark_box(det))
            displacement = landmark_displacement(det.landmarks, lm)
        timing["identity"] += time.perf_counter() - t
        return AttemptCheck(distance, distance >= self.identity_threshold, detected, displacement)

    # -- public --------------------------------------------------------------
    def detect(self, image: np.ndarray) -> list[FaceDetection]:
        """Every face in an RGB image, with 68 landmarks and, where they cannot be trusted,
        the reason the face will fall back to a head region (low light handled as in
        :meth:`anonymize`)."""
        low_light = self._low_light(image)
        work = enhance_low_light(image) if low_light else image
        return [self._locate(work, f) for f in self._detect(work)]

    def _detect(self, work: np.ndarray) -> list[DetectedFace]:
        """The detector's faces; with the second look on, also those scoring between the
        sweep's threshold and the detector's (found in the same pass, at full resolution)."""
        if not self.second_look:
            return self.detector.detect_faces(work)
        return self.detector.detect_faces(work, threshold=self._candidate_threshold())

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
        if detections is None:
            t = time.perf_counter()
            found = self._detect(work)
            timing["detect"] = time.perf_counter() - t
            t = time.perf_counter()
            detections = [self._locate(work, f) for f in found]
            timing["landmarks"] = time.perf_counter() - t
        detections = list(detections)
        base = _face_key_base(self.secret, image)
        if face_keys is None:
            face_keys = [(base + i) % (1 << 63) for i in range(len(detections))]
        if len(face_keys) != len(detections):
            raise InputError("face_keys must have one key per detection")
        firsts = list(first_attempts) if first_attempts is not None else [1] * len(detections)
        if len(firsts) != len(detections):
            raise InputError("first_attempts must have one attempt per detection")

        out = image.copy()
        covered = np.zeros(image.shape[:2], bool)
        checked = [d for d in detections if d.fallback is None]
        t = time.perf_counter()
        embeddings = (
            self.embedder.embed(work, [d.landmarks for d in checked])
            if self.embedder is not None and checked
            else None
        )
        originals = {id(d): (None if embeddings is None else embeddings[n])
                     for n, d in enumerate(checked)}  # fmt: skip
        timing["identity"] += time.perf_counter() - t
        reports: list[FaceReport] = []
        for i, (det, key) in enumerate(zip(detections, face_keys, strict=True)):
            if det.fallback is not None:
                self._cover_head(out, covered, det.box, self.rng_for(key, 1), timing)
                reports.append(
                    FaceReport(
                        i, det.box, det.score, 1, None, None, key=int(key), fallback=det.fallback
                    )  # fmt: skip
                )
                continue
            face_report = self._anonymize_face(
                out, covered, image, work, low_light, det, i, key, firsts[i],
                originals[id(det)], timing,
            )  # fmt: skip
            reports.append(face_report)

        plate_reports, plate_sweep = [], {"found": 0, "uncovered": 0}
        if self.plates is not None:
            plate_reports = self.plates.anonymize(
                out, image, lambda i: self.rng_for(self._plate_key(base, i), 1), timing,
                second_look=self.second_look, covered=covered, sweep=plate_sweep,
            )  # fmt: skip
        sweep = {"found": 0, "uncovered": 0}
        if self.second_look and self.faces:
            t = time.perf_counter()
            seen = enhance_low_light(out) if low_light else out
            if self._sweeper is None:
                self._sweeper = CenterFaceDetector()
            missed, sweep["found"] = uncovered_faces(
                self._sweeper, seen, covered,
                threshold=self.sweep_threshold, angles=self.sweep_angles,
            )  # fmt: skip
            sweep["uncovered"] = len(missed)
            timing["second_look"] += time.perf_counter() - t
            for face in missed:
                i = len(reports)
                key = (base + i) % (1 << 63)
                self._cover_head(out, covered, face.box, self.rng_for(key, 1), timing)
                reports.append(
                    FaceReport(
                        i,
                        face.box,
                        face.score,
                        1,
                        None,
                        None,
                        key=int(key),
                        fallback="second_look",
                        found_by="second_look",
                    )  # fmt: skip
                )
        report = build_report(
            self, reports, low_light, sweep, timing, plates=plate_reports, plate_sweep=plate_sweep
        )
        failed = [r.index for r in reports if r.passed is False]
        if failed and self.strict:
            raise IdentityCheckError(
                f"{len(failed)} face(s) still matched the original (distance < "
                f"{self.identity_threshold}) after {report['max_attempts']} attempt(s); "
                "try another method"
            )
        if sweep["uncovered"] and self.strict:
            raise UncoveredFaceError(
                f"the second look found {sweep['uncovered']} face(s) that detection missed; "
                "they were covered by the fallback, but --strict refuses such an image"
            )
        if self.strict:
            refuse_uncovered_plates(plate_sweep)
        return AnonymizationResult(out, reports, report, detections, plate_reports)

    def _plate_key(self, base: int, index: int) -> int:
        digest = hmac.new(self.secret, f"plate:{base}:{index}".encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") % (1 << 63)

    def _anonymize_face(
        self, out, covered, image, work, low_light, det, index, key, first, emb, timing
    ) -> FaceReport:
        """Replace one face (retrying while a check fails) and say what happened."""
        max_attempts = self.max_attempts()
        best: tuple | None = None  # (rank, attempt, check, pixels)
        undo = None
        first = first if 1 <= first <= max_attempts else 1
        order = [first, *(a for a in range(1, max_attempts + 1) if a != first)]
        tried = 0
        attempt = first
        for attempt in order:
            tried += 1
            if undo is not None:  # restore the face region before the next attempt
                out[undo[0], undo[1]] = undo[2]
            undo = self._replace(
                out, image, work, det.landmarks, self.rng_for(key, attempt), emb, timing
            )
            if self.embedder is None:
                best = (None, attempt, AttemptCheck(None, None, None, None), None)
                break
            check = self._check(out, low_light, det, emb, timing)
            rank = check.rank(self.face_tolerance)
            if best is None or rank > best[0]:
                pixels = None if undo is None else out[undo[0], undo[1]].copy()
                best = (rank, attempt, check, pixels)
            if check.acceptable(self.face_tolerance):
                break
        assert best is not None
        _, kept, check, pixels = best
        if undo is not None and pixels is not None and kept != attempt:  # an earlier one won
            out[undo[0], undo[1]] = pixels
        if undo is None:  # the landmarks gave no region to write: cover the head instead
            self._cover_head(out, covered, det.box, self.rng_for(key, 1), timing)
            return FaceReport(index, det.box, det.score, tried, None, None, key=int(key),
                              fallback="no_face_region")  # fmt: skip
        covered[undo[0], undo[1]] |= undo[3]
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
            kept_attempt=kept,
        )

    def max_attempts(self) -> int:
        return 1 + (self.identity_retries if self._stochastic() else 0)

    def score_floor(self) -> float:
        if self.check_score_floor is not None:
            return self.check_score_floor
        return getattr(self.detector, "low_confidence_below", DEFAULT_CHECK_SCORE_FLOOR)


def build_anonymizer(
    method: str,
    *,
    epsilon: float | None = None,
    seed: int = 0,
    weights_dir: Path | None = None,
    identity_check: bool = True,
    identity_threshold: float = DEFAULT_IDENTITY_THRESHOLD,
    identity_retries: int | None = None,
    strict: bool = False,
    detector_name: str = "centerface",
    detector_threshold: float | None = None,
    upsample: int | None = None,
    second_look: bool = True,
    sweep_threshold: float | None = None,
    secret: bytes | None = None,
    detector=None,
    embedder: FaceEmbedder | None = None,
    gallery: Sequence[str | Path] = (),
    features: Sequence[str] = (),
    identifiers: Sequence[str] | str = DEFAULT_IDENTIFIERS,
    plate_epsilon: float | None = None,
) -> Anonymizer:
    """Wire a detector, the method and (unless ``identity_check=False``) a dlib embedder.

    ``detector_name``: "centerface" (default) or "hog" (``upsample`` is HOG's).
    ``second_look``: sweep each output for faces detection missed (on by default), and
    cover candidates down to ``sweep_threshold`` (None: :data:`DEFAULT_SWEEP_THRESHOLD`).
    ``secret``: keys the per-face random streams (None: fresh entropy, so two anonymizers
    differ; pass the installation's secret for reproducible output).
    ``gallery``: photos (files or folders) of known people; every output face must also be
    at least ``identity_threshold`` from each face in them (see :func:`gallery_embeddings`).
    ``features``: regenerate only these features of each face (anonymizer/features.py).
    ``identifiers``: "faces", "plates" or both (a list or a comma string); ``plate_epsilon``
    is the plates' text budget (None: :data:`DEFAULT_PLATE_EPSILON`)."""
    wanted = parse_identifiers(identifiers)
    m = build_method(
        method, epsilon=epsilon, seed=seed, weights_dir=weights_dir, features=tuple(features)
    )
    detector = detector or build_detector(
        detector_name, threshold=detector_threshold, upsample=upsample
    )
    embedder = (embedder or FaceEmbedder()) if identity_check else None
    if gallery and embedder is None:
        raise InputError("--gallery needs the identity check")
    anonymizer = Anonymizer(
        detector,
        m,
        embedder=embedder,
        identity_threshold=identity_threshold,
        identity_retries=identity_retries,
        seed=seed,
        strict=strict,
        fallback=build_fallback(method, epsilon),
        second_look=second_look,
        sweep_threshold=DEFAULT_SWEEP_THRESHOLD if sweep_threshold is None else sweep_threshold,
        secret=secret,
        plates=(
            build_plate_anonymizer(
                DEFAULT_PLATE_EPSILON if plate_epsilon is None else plate_epsilon
            )
            if "plates" in wanted
            else None
        ),
        faces="faces" in wanted,
    )
    if gallery:
        assert embedder is not None
        anonymizer.gallery = gallery_embeddings(gallery, anonymizer, embedder)
    return anonymizer


def parse_identifiers(identifiers: Sequence[str] | str) -> tuple[str, ...]:
    """("faces", "plates") from a list or a comma string; unknown names are an InputError."""
    if isinstance(identifiers, str):
        identifiers = identifiers.split(",")
    names = tuple(dict.fromkeys(n.strip().lower() for n in identifiers if n.strip()))
    unknown = [n for n in names if n not in IDENTIFIERS]
    if unknown or not names:
        raise InputError(
            f"unknown identifier(s) {', '.join(unknown) or '(none)'}: choose from "
            f"{', '.join(IDENTIFIERS)} (e.g. --identifiers faces,plates)"
        )
    return names
