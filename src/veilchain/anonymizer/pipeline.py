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
when no attempt satisfies all three, the best one is kept (see ``_Check.rank``). DP retries
for identity only, since each attempt spends epsilon again. Every face's
:class:`FaceReport` carries its distance, attempts, ``passed``, ``detected`` and landmark
displacement; a face that stays recognizable is reported as failed (``strict=True`` raises
:class:`IdentityCheckError`).
Under-exposed images are enhanced (detection, landmarks, both embeddings, the generator's
input crop); the output pixels are never enhanced: a generated face is given the original's
lighting before blending.
Output is a pure function of (input pixels, method, seed): same input and seed, same bytes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from veilchain.anonymizer.baselines import DPPix, GaussianBlur, Pixelate, SolidMask
from veilchain.anonymizer.blending import blend
from veilchain.anonymizer.faces import (
    DEFAULT_CROP_SIZE,
    FaceDetection,
    FaceDetector,
    FaceEmbedder,
    align_face,
    enhance_low_light,
    face_distance,
    face_hull,
    face_mask,
    inter_ocular_distance,
    is_low_light,
    landmarks_for_box,
    match_lighting,
    transform_points,
    warp_back,
)
from veilchain.anonymizer.metrics import landmark_displacement
from veilchain.errors import (
    AnonymizationError,
    IdentityCheckError,
    InputError,
    ModelLoadError,
    PrivacyBudgetError,
)

METHODS = ("ciagan", "dp", "dppix", "blur", "pixelate", "mask")
DEFAULT_IDENTITY_THRESHOLD = 0.6
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


@runtime_checkable
class FaceGenerator(Protocol):
    """A model that replaces the face in an aligned crop (implemented by CIAGAN and DP)."""

    name: str  # "ciagan" | "dp"

    def model_hash(self) -> str: ...  # sha256 hex of the weights

    def privacy_params(self) -> dict: ...  # e.g. {"method": "dp", "epsilon": 1.0, "clip": 20.0}

    def generate(
        self,
        crop: np.ndarray,
        landmarks: np.ndarray,
        rng: np.random.Generator,
        *,
        embedding: np.ndarray | None = None,
    ) -> np.ndarray:
        """crop: 128x128x3 uint8 RGB aligned by faces.align_face; landmarks: 68x2 float32 in
        crop coordinates; embedding: the source face's 128-d dlib embedding (CIAGAN uses it to
        pick a target identity other than the source's). Returns a 128x128x3 uint8 RGB face in
        the same alignment."""
        ...


@runtime_checkable
class RegionMethod(Protocol):
    """A method that rewrites the face region in place (the baselines)."""

    name: str
    stochastic: bool

    def model_hash(self) -> str: ...

    def privacy_params(self) -> dict: ...

    def apply(
        self,
        region: np.ndarray,
        mask: np.ndarray,
        landmarks: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """region: (h, w, 3) uint8 around one face; mask: (h, w) bool; landmarks in region
        coordinates. Returns new (h, w, 3) uint8 pixels; only those inside mask are used."""
        ...


@dataclass
class FaceReport:
    """What happened to one face. ``passed`` is None when no identity check ran."""

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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["box"] = [round(v, 1) for v in self.box]
        d["score"] = round(self.score, 4)
        for k in ("distance", "landmark_displacement"):
            d[k] = None if d[k] is None else round(d[k], 4)
        return d


@dataclass(frozen=True)
class _Check:
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

    @property
    def failed(self) -> list[FaceReport]:
        return [f for f in self.faces if f.passed is False]


def _digest_key(image: np.ndarray) -> int:
    h = hashlib.sha256()
    h.update(str(image.shape).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return int.from_bytes(h.digest()[:8], "big")


def _roi(mask_box: tuple[int, int, int, int], shape, pad: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = mask_box
    h, w = shape[:2]
    return max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad)


class Anonymizer:
    """Replace every face in an image with ``method``; see the module docstring."""

    def __init__(
        self,
        detector: FaceDetector,
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
        check_score_floor: float = DEFAULT_CHECK_SCORE_FLOOR,
        landmark_tolerance: float = DEFAULT_LANDMARK_TOLERANCE,
        gallery: np.ndarray | None = None,
    ) -> None:
        if not isinstance(method, FaceGenerator | RegionMethod):
            raise InputError(f"{method!r} is neither a FaceGenerator nor a RegionMethod")
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
        self.check_score_floor = float(check_score_floor)
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

    @property
    def name(self) -> str:
        return self.method.name

    def model_hash(self) -> str:
        return self.method.model_hash()

    def privacy_params(self) -> dict[str, Any]:
        return dict(self.method.privacy_params())

    def _stochastic(self) -> bool:
        return self.is_generator or bool(getattr(self.method, "stochastic", False))

    def rng_for(self, key: int, attempt: int) -> np.random.Generator:
        """The random stream for one face (``key``) and attempt; a pure function of the seed."""
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
    ) -> tuple[slice, slice, np.ndarray] | None:
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
        lm_roi = lm - np.array([x0, y0], np.float32)
        t0 = time.perf_counter()
        if self.is_generator:
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
            new = self.method.apply(region.copy(), mask, lm_roi, rng)
            t1 = time.perf_counter()
            blended = blend(region, new, mask, mode="hard")
        previous = region.copy()
        out[y0:y1, x0:x1] = blended
        t2 = time.perf_counter()
        timing["generate"] += t1 - t0
        timing["blend"] += t2 - t1
        return slice(y0, y1), slice(x0, x1), previous

    def _check(
        self,
        out: np.ndarray,
        low_light: bool,
        det: FaceDetection,
        original: np.ndarray,
        timing: dict[str, float],
    ) -> _Check:
        """Embed the new face (as an attacker would: enhanced when dark) and, for a generator,
        ask whether HOG still finds it and how far its landmarks moved."""
        t = time.perf_counter()
        seen = enhance_low_light(out) if low_light else out
        lm = landmarks_for_box(seen, det.box)
        new_emb = self.embedder.embed(seen, [lm])
        distance = float(face_distance(new_emb, original)[0, 0])
        if self.gallery is not None:  # the nearest known face counts
            distance = min(distance, float(face_distance(new_emb, self.gallery).min()))
        detected = displacement = None
        if self.is_generator:
            detected = self.detector.redetects(seen, det.box)
            displacement = landmark_displacement(det.landmarks, lm)
        timing["identity"] += time.perf_counter() - t
        return _Check(distance, distance >= self.identity_threshold, detected, displacement)

    # -- public --------------------------------------------------------------
    def detect(self, image: np.ndarray) -> list[FaceDetection]:
        return self.detector.detect(image)

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
        face's random stream (the default derives it from the image bytes and face index), so
        a tracked person keeps one target identity across frames; ``first_attempts`` names the
        attempt (random stream) each face tries first, e.g. the one a track kept last frame
        (its :attr:`FaceReport.kept_attempt`), so retries do not switch identities mid-video.
        """
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"expected an RGB uint8 image, got {image.dtype} {image.shape}")
        timing = dict.fromkeys(("detect", "landmarks", "generate", "blend", "identity"), 0.0)
        low_light = bool(getattr(self.detector, "low_light", True)) and is_low_light(image)
        work = enhance_low_light(image) if low_light else image
        t = time.perf_counter()
        if detections is None:
            boxes = self.detector.detect_boxes(work)
            timing["detect"] = time.perf_counter() - t
            t = time.perf_counter()
            lms = [landmarks_for_box(work, b) for b, _ in boxes]
            detections = [FaceDetection(b, s, lm) for (b, s), lm in zip(boxes, lms, strict=True)]
            timing["landmarks"] = time.perf_counter() - t
        detections = list(detections)
        if face_keys is None:
            base = _digest_key(image)
            face_keys = [(base + i) % (1 << 63) for i in range(len(detections))]
        if len(face_keys) != len(detections):
            raise InputError("face_keys must have one key per detection")
        firsts = list(first_attempts) if first_attempts is not None else [1] * len(detections)
        if len(firsts) != len(detections):
            raise InputError("first_attempts must have one attempt per detection")

        out = image.copy()
        t = time.perf_counter()
        originals = (
            self.embedder.embed(work, [d.landmarks for d in detections])
            if self.embedder is not None and detections
            else None
        )
        timing["identity"] += time.perf_counter() - t
        max_attempts = 1 + (self.identity_retries if self._stochastic() else 0)
        reports: list[FaceReport] = []
        for i, (det, key) in enumerate(zip(detections, face_keys, strict=True)):
            emb = None if originals is None else originals[i]
            best: tuple | None = None  # (rank, attempt, check, pixels)
            undo = None
            first = firsts[i] if 1 <= firsts[i] <= max_attempts else 1
            order = [first, *(a for a in range(1, max_attempts + 1) if a != first)]
            tried = 0
            for attempt in order:
                tried += 1
                if undo is not None:  # restore the face region before the next attempt
                    out[undo[0], undo[1]] = undo[2]
                undo = self._replace(
                    out, image, work, det.landmarks, self.rng_for(key, attempt), emb, timing
                )
                if self.embedder is None:
                    best = (None, attempt, _Check(None, None, None, None), None)
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
            if pixels is not None and kept != attempt:  # an earlier attempt was better
                out[undo[0], undo[1]] = pixels
            passed = check.passed
            low = det.score < self.check_score_floor
            if low and passed is False:
                passed = None  # still "matched", but nothing says it is a face: unverifiable
            reports.append(
                FaceReport(
                    i,
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
            )

        failed = [r.index for r in reports if r.passed is False]
        unverified = [
            r.index
            for r in reports
            if r.low_confidence and r.passed is None and r.distance is not None
        ]
        report = {
            "method": self.method.name,
            "model_hash": self.model_hash(),
            "privacy_params": self.privacy_params(),
            "seed": self.seed,
            "size": [int(image.shape[1]), int(image.shape[0])],
            "n_faces": len(reports),
            "n_failed": len(failed),
            "n_unverified": len(unverified),
            "low_light": low_light,
            "identity_check": self.embedder is not None,
            "identity_threshold": self.identity_threshold,
            "gallery_faces": 0 if self.gallery is None else len(self.gallery),
            "check_score_floor": self.check_score_floor,
            "max_attempts": max_attempts,
            "landmark_tolerance": self.face_tolerance,
            "faces": [r.to_dict() for r in reports],
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
        if not reports:
            report["warning"] = "no face found; image returned unchanged"
        elif unverified:
            report["warning"] = (
                f"{len(unverified)} low-confidence detection(s) (score < "
                f"{self.check_score_floor}) were anonymized but still embed close to their "
                "original; likely not faces, so they are not counted as failed"
            )
        if failed and self.strict:
            raise IdentityCheckError(
                f"{len(failed)} face(s) still matched the original (distance < "
                f"{self.identity_threshold}) after {max_attempts} attempt(s); try another method"
            )
        return AnonymizationResult(out, reports, report, detections)


# --- factory ----------------------------------------------------------------
def build_method(
    method: str, *, epsilon: float | None = None, seed: int = 0, weights_dir: Path | None = None
) -> FaceGenerator | RegionMethod:
    """The method object for a name in :data:`METHODS` (generators are imported lazily)."""
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if epsilon is not None and method not in ("dp", "dppix"):
        raise InputError(f"--epsilon applies to dp and dppix only, not {method}")
    if epsilon is not None and not (epsilon > 0 and np.isfinite(epsilon)):
        raise PrivacyBudgetError(f"epsilon must be a positive number, got {epsilon}")
    if method == "blur":
        return GaussianBlur()
    if method == "pixelate":
        return Pixelate()
    if method == "mask":
        return SolidMask()
    if method == "dppix":
        return DPPix(epsilon=1.0 if epsilon is None else epsilon)
    try:
        if method == "ciagan":
            from veilchain.anonymizer.ciagan import build_ciagan_generator

            return build_ciagan_generator(weights_dir=weights_dir, seed=seed)
        from veilchain.anonymizer.dp_latent import build_dp_generator

        return build_dp_generator(
            epsilon=1.0 if epsilon is None else epsilon, weights_dir=weights_dir
        )
    except ImportError as exc:
        raise ModelLoadError(
            f"the {method} generator is not installed ({exc}); use a baseline method "
            "(blur, pixelate, mask, dppix) or update veilchain"
        ) from exc
    except (FileNotFoundError, OSError) as exc:
        raise ModelLoadError(
            f"{method} weights not found ({exc}); train them (veilchain train {method}) or "
            "pass --weights-dir"
        ) from exc


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
    upsample: int | None = None,
    detector: FaceDetector | None = None,
    embedder: FaceEmbedder | None = None,
    gallery: Sequence[str | Path] = (),
) -> Anonymizer:
    """Wire a detector, the method and (unless ``identity_check=False``) a dlib embedder.

    ``gallery``: photos (files or folders) of known people; every output face must also be
    at least ``identity_threshold`` from each face in them (see :func:`gallery_embeddings`)."""
    m = build_method(method, epsilon=epsilon, seed=seed, weights_dir=weights_dir)
    detector = detector or FaceDetector(upsample=upsample)
    embedder = (embedder or FaceEmbedder()) if identity_check else None
    if gallery and embedder is None:
        raise InputError("--gallery needs the identity check")
    return Anonymizer(
        detector,
        m,
        embedder=embedder,
        identity_threshold=identity_threshold,
        identity_retries=identity_retries,
        seed=seed,
        strict=strict,
        gallery=gallery_embeddings(gallery, detector, embedder) if gallery else None,
    )


def gallery_embeddings(
    inputs: Iterable[str | Path], detector: FaceDetector, embedder: FaceEmbedder
) -> np.ndarray:
    """dlib embeddings (N, 128) of every face in these photos (files or folders; videos are
    skipped). An unreadable photo or a gallery without a face is a one-line error."""
    from veilchain.anonymizer.image_io import load_image
    from veilchain.anonymizer.video import is_video_path

    found = []
    for path, _ in collect_inputs(inputs):
        if is_video_path(path):
            continue
        img = load_image(path)
        lms = [d.landmarks for d in detector.detect(img)]
        if lms:
            found.append(embedder.embed(img, lms))
    if not found:
        raise InputError("no face found in the gallery photos")
    return np.concatenate(found).astype(np.float32)


# --- files and folders ------------------------------------------------------
@dataclass
class FileResult:
    """Outcome for one input file (an image or a video)."""

    input: str
    output: str | None
    kind: str  # "image" | "video"
    n_faces: int = 0
    n_failed: int = 0
    error: str | None = None
    report: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect_inputs(inputs: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """Expand files and folders into (file, relative output stem) pairs, sorted per folder."""
    from veilchain.anonymizer.image_io import is_image_path
    from veilchain.anonymizer.video import is_video_path

    found: list[tuple[Path, Path]] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                if (is_image_path(f) or is_video_path(f)) and not f.name.startswith("."):
                    found.append((f, f.relative_to(p).with_suffix("")))
        elif p.is_file():
            found.append((p, Path(p.stem)))
        else:
            raise InputError(f"{p}: no such file or folder")
    return found


def anonymize_paths(
    inputs: Iterable[str | Path],
    outdir: str | Path,
    *,
    method: str = "pixelate",
    epsilon: float | None = None,
    seed: int = 0,
    fmt: str | None = None,
    weights_dir: Path | None = None,
    strict: bool = False,
    anonymizer: Anonymizer | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[FileResult]:
    """Anonymize image files, folders and videos into ``outdir``; one :class:`FileResult` each.

    Images keep their stem and pixel size and are written as PNG (or ``fmt``) with no
    metadata; videos keep their container (.mp4 or .avi), frame count and size. A file that
    cannot be read is reported with its one-line error and the others still run.
    ``progress(path, done, total)`` is called after each file.
    """
    from veilchain.anonymizer.image_io import load_image, save_image
    from veilchain.anonymizer.video import anonymize_video, is_video_path
    from veilchain.errors import VeilchainError

    files = collect_inputs(inputs)
    outdir = Path(outdir)
    anon = anonymizer or build_anonymizer(
        method,
        epsilon=epsilon,
        seed=seed,
        weights_dir=weights_dir,
        strict=strict,
    )
    ext = "." + (fmt or "png").lower().lstrip(".")
    results: list[FileResult] = []
    for n, (path, rel) in enumerate(files, start=1):
        is_video = is_video_path(path)
        target = outdir / (rel.as_posix() + (path.suffix.lower() if is_video else ext))
        res = FileResult(str(path), str(target), "video" if is_video else "image")
        try:
            if target.resolve() == path.resolve():
                raise InputError(f"{path}: output would overwrite the input; choose another -o")
            if is_video:
                vr = anonymize_video(path, target, anon)
                res.n_faces, res.n_failed, res.report = vr.n_faces, vr.n_failed, vr.to_dict()
            else:
                img = load_image(path)  # an explicit file with an odd suffix: the decoder decides
                r = anon.anonymize(img)
                save_image(r.image, target)
                res.n_faces, res.n_failed, res.report = len(r.faces), len(r.failed), r.report
        except VeilchainError as exc:
            if strict or not isinstance(exc, AnonymizationError | InputError):
                raise
            res.output, res.error = None, str(exc)
        results.append(res)
        if progress is not None:
            progress(str(path), n, len(files))
    return results
