"""Alignment of a face to a canonical crop and back, and the masks and regions drawn from
its landmarks.

Landmarks are (68, 2) ``float32`` arrays of (x, y) in the iBUG 300-W order of dlib's
68-point predictor; boxes are ``(x0, y0, x1, y1)`` floats in image pixels.
:func:`align_face` maps a face onto :data:`CANONICAL_TEMPLATE_128` (scaled to the crop),
:func:`warp_back` returns a crop to the image, :func:`face_mask` and :func:`head_mask` say
which pixels a method may rewrite.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from veilchain.anonymizer.dlib_io import require_rgb8

DEFAULT_CROP_SIZE = 128

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
    image = require_rgb8(image)
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
