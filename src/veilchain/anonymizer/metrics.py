"""Privacy and utility metrics. Pure functions on numpy arrays; no models are loaded here.

Embeddings come from :class:`veilchain.anonymizer.embedding.FaceEmbedder` (dlib 128-d), landmarks
from the 68-point predictor; callers compute them and pass them in.

Definitions (x: original, y: anonymized, uint8 RGB, values taken in [0, 1] where noted):

- re-identification rate: rank-1 identification of each anonymized face against the gallery
  of all original faces; a hit when the nearest gallery face is its own original (or has the
  same label) and the distance is below the dlib same-person threshold 0.6.
- detection retention: share of original faces for which the detector still finds a face
  (IoU >= 0.5) in the anonymized image.
- landmark displacement: mean Euclidean distance between the 68 landmarks of x and y,
  divided by the inter-ocular distance of x (the usual normalized mean error).
- PSNR (dB, peak 255) and SSIM (scikit-image defaults: uniform 7x7 windows, per channel).
- dHash distance: Hamming distance between 64-bit difference hashes (9x8 grey, row gradients).
- L0: fraction of pixel positions where any channel changed. L2: ||y - x||_2 on [0, 1] values.
- ALD_p (average L_p distortion) as defined in DEEPSEC (Ling et al., IEEE S&P 2019) for
  adversarial examples: ||y - x||_p / ||x||_p, averaged over images, p in {0, 2, inf}. We
  apply it to anonymized faces; the face-anonymization papers that quote it use the same form.
- detail ratio: variance of the Laplacian inside the inner face, output over original.
- seam score: gradient energy in a band around the replaced region's border, output over
  original (about 1: no seam).
- FD over dlib embeddings: the Frechet distance between Gaussians fitted to two sets of dlib
  128-d embeddings. Same formula as FID but NOT FID (no Inception network): values are not
  comparable with published FID figures.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import cv2
import numpy as np

DLIB_THRESHOLD = 0.6


def _check_pair(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {x.shape} vs {y.shape}")


def psnr(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB (peak 255); ``inf`` for identical inputs."""
    _check_pair(x, y)
    d = x.astype(np.float64) - y.astype(np.float64)
    if mask is not None:
        d = d[np.asarray(mask, bool)]
    mse = float(np.mean(d**2)) if d.size else 0.0
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Mean structural similarity over the image (7x7 windows, per channel, data range 255)."""
    from skimage.metrics import structural_similarity

    _check_pair(x, y)
    if min(x.shape[:2]) < 7:
        return float(np.array_equal(x, y))
    return float(
        structural_similarity(x, y, channel_axis=2 if x.ndim == 3 else None, data_range=255)
    )


def dhash(image: np.ndarray, size: int = 8) -> int:
    """Difference hash: grey image resized to (size+1) x size, bit = left < right."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    small = cv2.resize(grey, (size + 1, size), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def dhash_distance(x: np.ndarray, y: np.ndarray, size: int = 8) -> int:
    """Hamming distance between the dHashes of two images (0 to size*size)."""
    return int(bin(dhash(x, size) ^ dhash(y, size)).count("1"))


def l0_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of pixel positions where any channel differs."""
    _check_pair(x, y)
    diff = x != y
    if diff.ndim == 3:
        diff = diff.any(axis=2)
    return float(diff.mean())


def l2_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Euclidean distance between the images with values scaled to [0, 1]."""
    _check_pair(x, y)
    return float(np.linalg.norm((x.astype(np.float64) - y.astype(np.float64)) / 255.0))


def ald_p(x: np.ndarray, y: np.ndarray, p: float) -> float:
    """Relative L_p distortion ||y - x||_p / ||x||_p of one image (DEEPSEC's ALD_p term).

    p = 0 counts changed values, p = inf takes the largest change. Average over images to get
    ALD_p.
    """
    _check_pair(x, y)
    xf = x.astype(np.float64).ravel() / 255.0
    d = y.astype(np.float64).ravel() / 255.0 - xf
    num: float
    den: float
    if p == 0:
        num, den = float(np.count_nonzero(d)), float(np.count_nonzero(xf))
    elif np.isinf(p):
        num, den = float(np.abs(d).max(initial=0)), float(np.abs(xf).max(initial=0))
    else:
        num, den = float(np.linalg.norm(d, ord=p)), float(np.linalg.norm(xf, ord=p))
    return float(num / den) if den else 0.0


def landmark_displacement(original: np.ndarray, anonymized: np.ndarray) -> float:
    """Mean landmark distance divided by the original's inter-ocular distance."""
    a = np.asarray(original, np.float64).reshape(68, 2)
    b = np.asarray(anonymized, np.float64).reshape(68, 2)
    iod = np.linalg.norm(a[36:42].mean(0) - a[42:48].mean(0))
    return float(np.linalg.norm(a - b, axis=1).mean() / max(iod, 1e-6))


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def detection_retention(
    original_boxes: Sequence[Sequence[float]],
    anonymized_boxes: Sequence[Sequence[float]],
    iou: float = 0.5,
) -> float:
    """Share of original boxes matched by an anonymized-image detection with IoU >= ``iou``."""
    if not len(original_boxes):
        return float("nan")
    hits = sum(any(box_iou(o, a) >= iou for a in anonymized_boxes) for o in original_boxes)
    return hits / len(original_boxes)


def reidentification(
    gallery: np.ndarray,
    probes: np.ndarray,
    *,
    probe_ids: Sequence[int] | None = None,
    gallery_labels: Sequence | None = None,
    threshold: float = DLIB_THRESHOLD,
) -> dict:
    """Rank-1 re-identification of anonymized faces (``probes``) against original faces.

    ``probe_ids[i]`` is the gallery row of probe i's own original (default: row i).
    ``gallery_labels`` marks rows showing the same person (then a hit on any photo of that
    person counts). Returns ``rate``, ``n``, per-probe ``hits`` and ``distances`` (to own).
    """
    g = np.asarray(gallery, np.float64).reshape(-1, 128)
    p = np.asarray(probes, np.float64).reshape(-1, 128)
    ids = np.arange(len(p)) if probe_ids is None else np.asarray(probe_ids)
    labels = np.arange(len(g)) if gallery_labels is None else np.asarray(gallery_labels)
    if not len(p):
        return {"rate": float("nan"), "n": 0, "hits": [], "distances": []}
    dist = np.sqrt(((p[:, None, :] - g[None, :, :]) ** 2).sum(-1))
    nearest = dist.argmin(axis=1)
    hits = [
        bool(labels[nearest[i]] == labels[ids[i]] and dist[i, nearest[i]] < threshold)
        for i in range(len(p))
    ]
    own = [float(dist[i, ids[i]]) for i in range(len(p))]
    return {"rate": float(np.mean(hits)), "n": len(p), "hits": hits, "distances": own}


def dlib_embedding_fd(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two sets of dlib embeddings (not FID)."""
    from scipy import linalg

    a = np.asarray(a, np.float64).reshape(-1, 128)
    b = np.asarray(b, np.float64).reshape(-1, 128)
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # near-singular covariances of small sets
        covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        eps = np.eye(128) * 1e-6
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


# --- realism of a replaced face (on aligned crops of the original and the output) ----------
def _grey(image: np.ndarray) -> np.ndarray:
    g = np.asarray(image, np.float64)
    return g @ np.array([0.299, 0.587, 0.114]) if g.ndim == 3 else g


def inner_face_mask(landmarks: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """The inner face as a bool mask of ``shape[:2]``: the convex hull of the brows, eyes, nose
    and mouth (68-point landmarks 17-67), where :func:`detail_ratio` looks."""
    mask = np.zeros(tuple(shape[:2]), np.uint8)
    lm = np.asarray(landmarks, np.float64).reshape(68, 2)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(lm[17:]).astype(np.int32)), 1)
    return mask.astype(bool)


def detail_ratio(original: np.ndarray, output: np.ndarray, inner: np.ndarray) -> float | None:
    """Fine detail kept: variance of the Laplacian of the output over the original's, inside
    ``inner`` (a bool mask of the inner face: brows, eyes, nose, mouth). 1 = as much detail
    as the original; a blur gives a few percent. Noise raises it too, so read it beside a
    detector's retention of the faces."""
    m = np.asarray(inner, bool)
    if m.sum() < 16:
        return None
    lap_o = cv2.Laplacian(_grey(original), cv2.CV_64F, ksize=3)[m]
    lap_y = cv2.Laplacian(_grey(output), cv2.CV_64F, ksize=3)[m]
    base = float(lap_o.var())
    return None if base <= 1e-9 else float(lap_y.var()) / base


def noise_ratio(original: np.ndarray, output: np.ndarray, inner: np.ndarray) -> float | None:
    """Noise floor kept: the noise level of the flattest part of the inner face (grey level,
    ``surround.flat_noise_sigma``: Immerkaer's kernel, lower 20th percentile of 7x7 windows),
    output over original. Above 1, the output's smoothest skin is noisier than the
    original's: detail the detail ratio counts may then be noise."""
    from veilchain.anonymizer.surround import flat_noise_sigma

    m = np.asarray(inner, bool)
    if m.sum() < 16:
        return None
    base = float(flat_noise_sigma(_grey(original)[..., None], m)[0])
    return None if base <= 1e-9 else float(flat_noise_sigma(_grey(output)[..., None], m)[0]) / base


def changed_region(original: np.ndarray, output: np.ndarray, tol: int = 2) -> np.ndarray:
    """(H, W) uint8 mask of the replaced region: the convex hull of the pixels that differ by
    more than ``tol`` grey levels in some channel. The seam is measured on its edge, wherever a
    method drew (a generator's face hull, a baseline's dilated mask), so it sees the edge the
    method left, not the edge of a mask it may not have filled."""
    diff = np.abs(original.astype(np.int16) - output.astype(np.int16)).max(axis=2) > tol
    hull_mask = np.zeros(diff.shape, np.uint8)
    pts = np.argwhere(diff)
    if len(pts) >= 3:
        cv2.fillConvexPoly(hull_mask, cv2.convexHull(pts[:, ::-1].astype(np.int32)), 1)
    return hull_mask


def seam_score(
    original: np.ndarray, output: np.ndarray, mask: np.ndarray, width: int = 3
) -> float | None:
    """Gradient energy on the border of the replaced region, output over original: a band of
    ``width`` px on each side of ``mask``'s edge. About 1 = no visible seam; above, an edge
    the original did not have (a band, a halo)."""
    m = np.asarray(mask, np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    band = (cv2.dilate(m, kernel) - cv2.erode(m, kernel)).astype(bool)
    if band.sum() < 16:
        return None

    def energy(image: np.ndarray) -> float:
        g = _grey(image)
        gx, gy = cv2.Sobel(g, cv2.CV_64F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_64F, 0, 1, ksize=3)
        return float((gx**2 + gy**2)[band].mean())

    base = energy(original)
    return None if base <= 1e-9 else energy(output) / base
