"""Face detection (dlib HOG, OpenCV Haar; dlib's CNN for evaluation only), 68-point landmarks
and lighting.

Everything here works on RGB ``uint8`` arrays of shape (H, W, 3). Boxes are ``(x0, y0, x1, y1)``
floats in image pixels; landmarks are (68, 2) ``float32`` arrays of (x, y) in the iBUG 300-W
order that dlib's 68-point predictor uses.

The dlib model files come from ``face_recognition_models`` (no download). A detector loads its
models lazily and holds them; :func:`landmarks_for_box` shares one lazily loaded, read-only
shape predictor per process. Alignment and masks are in :mod:`veilchain.anonymizer.alignment`,
the embedding in :mod:`veilchain.anonymizer.embedding`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from veilchain.anonymizer.detectors import DetectedFace
from veilchain.anonymizer.dlib_io import (
    dlib_rect,
    model_path,
    require_rgb8,
    shape_to_array,
    shared_shape_predictor,
)
from veilchain.anonymizer.metrics import box_iou
from veilchain.errors import InputError, ModelLoadError

DEFAULT_MAX_DETECT_SIDE = 1280
#: Under-exposure test thresholds on the luma channel (0-255): mean below 70 or 95th
#: percentile below 120.
LOW_LIGHT_MEAN = 70.0
LOW_LIGHT_P95 = 120.0


@dataclass(frozen=True, eq=False)
class FaceDetection:
    """One detected face: box ``(x0, y0, x1, y1)``, detector score, (68, 2) landmarks.

    ``keypoints``: the detector's own five points when it has them (CenterFace). ``fallback``
    names why the 68 landmarks cannot be trusted for this face (e.g. ``"profile"``); such a
    face is covered by a region method over the whole head instead of a generator."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray = field(repr=False)
    keypoints: np.ndarray | None = field(default=None, repr=False)
    fallback: str | None = None

    def __post_init__(self) -> None:
        lm = np.asarray(self.landmarks, dtype=np.float32).reshape(68, 2)
        lm.setflags(write=False)
        object.__setattr__(self, "landmarks", lm)
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        object.__setattr__(self, "score", float(self.score))
        if self.keypoints is not None:
            kp = np.asarray(self.keypoints, dtype=np.float32).reshape(5, 2)
            kp.setflags(write=False)
            object.__setattr__(self, "keypoints", kp)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [round(v, 2) for v in self.box],
            "score": round(self.score, 4),
            "landmarks": np.round(self.landmarks, 2).tolist(),
            "keypoints": None if self.keypoints is None else np.round(self.keypoints, 2).tolist(),
            "fallback": self.fallback,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaceDetection:
        return cls(
            box=tuple(data["box"]),
            score=data["score"],
            landmarks=data["landmarks"],
            keypoints=data.get("keypoints"),
            fallback=data.get("fallback"),
        )


# --- lighting ---------------------------------------------------------------
def _luma(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def is_low_light(image: np.ndarray) -> bool:
    """True when the image is under-exposed (luma mean < 70 or 95th percentile < 120)."""
    y = _luma(require_rgb8(image))
    if y.size > 1_000_000:  # a subsample is enough for the statistics
        step = int(np.ceil(np.sqrt(y.size / 1_000_000)))
        y = y[::step, ::step]
    # mean and 95th percentile (numpy's linear interpolation) from the histogram: no sort
    hist = cv2.calcHist([np.ascontiguousarray(y)], [0], None, [256], [0, 256]).ravel()
    mean = float(hist @ np.arange(256)) / y.size
    cum = np.cumsum(hist)
    pos = 0.95 * (y.size - 1)
    lo = int(np.floor(pos))
    v0 = int(np.searchsorted(cum, lo + 1))  # the value at sorted index lo
    v1 = int(np.searchsorted(cum, min(lo + 1, y.size - 1) + 1))
    p95 = v0 + (pos - lo) * (v1 - v0)
    return bool(mean < LOW_LIGHT_MEAN or p95 < LOW_LIGHT_P95)


def enhance_low_light(image: np.ndarray) -> np.ndarray:
    """Brighten an under-exposed image for detection and landmarks only (never for output).

    Gamma on the L channel (Lab) brings the median luminance near 0.45, then CLAHE (clip 2.0,
    8x8 tiles) restores local contrast; chroma is left alone.
    """
    lab = cv2.cvtColor(require_rgb8(image), cv2.COLOR_RGB2LAB)
    lum = lab[..., 0]
    med = max(float(np.median(lum)) / 255.0, 1e-3)
    gamma = float(np.clip(np.log(0.45) / np.log(med), 0.25, 1.0)) if med < 0.45 else 1.0
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma, 0, 255).astype(np.uint8)
    lum = cv2.LUT(lum, lut)
    lab[..., 0] = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(lum)
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def match_lighting(generated: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Give ``generated`` the lighting of ``original`` inside ``mask`` (same-shape RGB arrays).

    Matches the mean and standard deviation of L and the means of a and b (Lab) over the mask,
    so a face generated at normal exposure takes on the original's brightness and colour cast.
    """
    m = np.asarray(mask) > 0
    if m.sum() < 16:
        return generated.copy()
    g = cv2.cvtColor(require_rgb8(generated), cv2.COLOR_RGB2LAB).astype(np.float32)
    o = cv2.cvtColor(require_rgb8(original), cv2.COLOR_RGB2LAB).astype(np.float32)
    gl, ol = g[..., 0][m], o[..., 0][m]
    scale = float(np.clip(ol.std() / max(gl.std(), 1.0), 0.25, 4.0))
    g[..., 0] = (g[..., 0] - gl.mean()) * scale + ol.mean()
    for c in (1, 2):
        g[..., c] += o[..., c][m].mean() - g[..., c][m].mean()
    out = np.clip(np.rint(g), 0, 255).astype(np.uint8)
    return cv2.cvtColor(out, cv2.COLOR_LAB2RGB)


# --- detection --------------------------------------------------------------
class HogDetector:
    """dlib HOG face detector plus the 68-point landmark predictor (frontal faces only: it
    misses profiles and bowed heads; :class:`~veilchain.anonymizer.detectors.CenterFaceDetector`
    is the default).

    ``upsample=None`` (auto) runs at the detection scale first and, only when nothing is found,
    again with 1 (and for images under 400 px, 2) upsampling steps, so small faces are found
    without paying 4x on every photo; pass an int to force a level (e.g. 1 for group photos
    with small faces). Images whose longer side exceeds ``max_side`` are downscaled for
    detection; landmarks are always predicted at full resolution. Under-exposed images are
    enhanced (:func:`enhance_low_light`) for detection and landmarks when ``low_light``.
    """

    name = "hog"
    #: real faces in the samples score 0.7-2.2; a mission patch scored 0.10
    low_confidence_below = 0.25

    def __init__(
        self,
        *,
        upsample: int | None = None,
        max_side: int = DEFAULT_MAX_DETECT_SIDE,
        min_score: float = 0.0,
        low_light: bool = True,
        max_faces: int | None = None,
    ) -> None:
        if upsample is not None and not 0 <= upsample <= 3:
            raise InputError(f"upsample must be 0-3 (or None for auto), got {upsample}")
        self.upsample = upsample
        self.max_side = max_side
        self.min_score = min_score
        self.low_light = low_light
        self.max_faces = max_faces
        self._hog = None
        self._predictor = None

    def _models(self):
        if self._hog is None:
            import dlib

            self._hog = dlib.get_frontal_face_detector()
            self._predictor = shared_shape_predictor()
        return self._hog, self._predictor

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The image detection and landmarks run on (enhanced when under-exposed)."""
        image = require_rgb8(image)
        if self.low_light and is_low_light(image):
            return enhance_low_light(image)
        return image

    def _detection_scale(self, image: np.ndarray) -> float:
        """The factor images are downscaled by for detection (1 up to ``max_side``)."""
        return min(1.0, self.max_side / max(image.shape[:2]))

    def detect_boxes(
        self, image: np.ndarray
    ) -> list[tuple[tuple[float, float, float, float], float]]:
        """Face boxes (full-resolution coordinates) and scores, best first."""
        hog, _ = self._models()
        h, w = image.shape[:2]
        scale = self._detection_scale(image)
        small = image
        if scale < 1.0:
            # Bilinear: the thresholds were tuned with it. (An INTER_AREA once sat in the
            # ``dst`` position here and was ignored by OpenCV, so bilinear is what always ran.)
            small = cv2.resize(
                image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR
            )
        levels = [self.upsample] if self.upsample is not None else [0, 1]
        if self.upsample is None and max(small.shape[:2]) < 400:
            levels.append(2)
        rects, scores = [], []
        for level in levels:
            rects, scores, _ = hog.run(small, level, self.min_score)
            if len(rects):
                break
        found = sorted(zip(scores, rects, strict=True), key=lambda t: -t[0])
        if self.max_faces is not None:  # a cap leaves faces un-anonymized: opt-in only
            found = found[: self.max_faces]
        out = []
        for s, r in found:
            box = (r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale)
            box = (max(box[0], 0.0), max(box[1], 0.0), min(box[2], w - 1.0), min(box[3], h - 1.0))
            if box[2] > box[0] and box[3] > box[1]:
                out.append((box, float(s)))
        return out

    def detect_faces(self, image: np.ndarray, **_: Any) -> list[DetectedFace]:
        """Face boxes and scores as :class:`DetectedFace` (no keypoints), best first."""
        return [DetectedFace(box, score) for box, score in self.detect_boxes(image)]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model_sha256": _hog_model_sha256(),
            "threshold": self.min_score,
            "upsample": self.upsample,
        }

    def redetects(self, image: np.ndarray, box: Sequence[float], *, iou: float = 0.5) -> bool:
        """Whether HOG finds a face overlapping ``box`` (IoU >= ``iou``) in ``image`` again.

        Runs on the region around ``box`` only, at the scale and upsampling level
        ``detect_boxes`` finds a face of that size at, so the answer matches a whole-image
        detection closely at a fraction of its cost."""
        hog, _ = self._models()
        h, w = image.shape[:2]
        scale = self._detection_scale(image)
        x0, y0, x1, y1 = (float(v) * scale for v in box)
        px, py = 0.6 * (x1 - x0), 0.6 * (y1 - y0)
        rx0, ry0 = max(0, int(x0 - px)), max(0, int(y0 - py))
        rx1 = min(round(w * scale), int(np.ceil(x1 + px)))
        ry1 = min(round(h * scale), int(np.ceil(y1 + py)))
        if rx1 <= rx0 or ry1 <= ry0:
            return False
        if scale < 1.0:
            ix0, iy0 = int(rx0 / scale), int(ry0 / scale)
            ix1, iy1 = min(w, int(np.ceil(rx1 / scale))), min(h, int(np.ceil(ry1 / scale)))
            roi = cv2.resize(  # bilinear, as detect_boxes scales the whole image
                image[iy0:iy1, ix0:ix1], (rx1 - rx0, ry1 - ry0), interpolation=cv2.INTER_LINEAR
            )
        else:
            roi = np.ascontiguousarray(image[ry0:ry1, rx0:rx1])
        target = (x0 - rx0, y0 - ry0, x1 - rx0, y1 - ry0)
        level = self.upsample
        if level is None:  # the level auto-detection found this face at: HOG's window is 80 px
            level = 0 if x1 - x0 >= 80 else 1 if x1 - x0 >= 40 else 2
        rects, _, _ = hog.run(roi, level, self.min_score)
        return any(
            box_iou(target, (r.left(), r.top(), r.right(), r.bottom())) >= iou for r in rects
        )

    def detect(self, image: np.ndarray) -> list[FaceDetection]:
        """Every face (all of them unless ``max_faces`` is set), best score first."""
        work = self.prepare(image)
        _, predictor = self._models()
        return [
            FaceDetection(box, score, shape_to_array(predictor(work, dlib_rect(box))))
            for box, score in self.detect_boxes(work)
        ]

    def landmarks(self, image: np.ndarray, box: Sequence[float]) -> np.ndarray:
        """68 landmarks for a known box (with the same low-light handling as ``detect``)."""
        _, predictor = self._models()
        return shape_to_array(predictor(self.prepare(image), dlib_rect(box)))


@functools.cache
def _hog_model_sha256() -> str:
    """sha256 of dlib's built-in frontal HOG detector, serialized by dlib itself."""
    import tempfile

    import dlib

    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/hog.svm"
        dlib.get_frontal_face_detector().save(path)
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()


@functools.cache
def _haar_cascade():
    # cv2.data is a submodule of the wheel that opencv's type stubs leave out.
    cascades = cv2.data.haarcascades  # type: ignore[attr-defined]
    return cv2.CascadeClassifier(cascades + "haarcascade_frontalface_default.xml")


def haar_face_boxes(image: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Faces found by OpenCV's frontal Haar cascade (the model opencv-python ships): a second
    detector, independent of dlib's HOG, so detection retention is not only measured by the
    detector the pipeline's own checks use."""
    grey = cv2.cvtColor(require_rgb8(image), cv2.COLOR_RGB2GRAY)
    rects = _haar_cascade().detectMultiScale(
        grey, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24)
    )
    return [(float(x), float(y), float(x + w), float(y + h)) for x, y, w, h in rects]


@functools.cache
def _mmod_detector():
    import dlib

    try:
        return dlib.cnn_face_detection_model_v1(model_path("mmod"))
    except RuntimeError as exc:
        raise ModelLoadError(f"cannot load dlib's CNN (MMOD) face detector: {exc}") from exc


#: :func:`mmod_face_boxes` scales the region around a face so that the face is this wide (px):
#: dlib's MMOD model finds faces from about 80 px without upsampling.
MMOD_FACE_WIDTH = 90


def mmod_face_boxes(
    image: np.ndarray, around: Sequence[float] | None = None
) -> list[tuple[float, float, float, float]]:
    """Faces found by dlib's CNN (MMOD) detector, ``mmod_human_face_detector.dat`` from
    ``face_recognition_models``. Evaluation only: no decision of the anonymizer uses it, so
    its retention of generated faces is an independent test that they still look like faces.

    ``around``: search only the region around this box (grown by 30 % of its size on each side),
    scaled so the box is :data:`MMOD_FACE_WIDTH` px wide; boxes come back in ``image``
    coordinates. The CNN costs about 0.2 s per 128x128 image on one core, so a whole photo
    would take seconds."""
    image = require_rgb8(image)
    x_off = y_off = 0.0
    scale = 1.0
    if around is not None:
        x0, y0, x1, y1 = around
        w, h = x1 - x0, y1 - y0
        H, W = image.shape[:2]
        x_off, y_off = max(0, int(x0 - 0.3 * w)), max(0, int(y0 - 0.3 * h))
        x_end, y_end = min(W, int(x1 + 0.3 * w) + 1), min(H, int(y1 + 0.3 * h) + 1)
        image = image[int(y_off) : y_end, int(x_off) : x_end]
        scale = MMOD_FACE_WIDTH / max(w, 1.0)
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA
                           if scale < 1 else cv2.INTER_LINEAR)  # fmt: skip
    found = _mmod_detector()(np.ascontiguousarray(image), 0)
    return [
        (
            r.rect.left() / scale + x_off,
            r.rect.top() / scale + y_off,
            (r.rect.right() + 1) / scale + x_off,
            (r.rect.bottom() + 1) / scale + y_off,
        )
        for r in found
    ]


def landmarks_for_box(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """68 landmarks (float32, (68, 2)) for a face box ``(x0, y0, x1, y1)`` in ``image``."""
    return shape_to_array(shared_shape_predictor()(require_rgb8(image), dlib_rect(box)))


# --- alignment --------------------------------------------------------------
