"""metrics: definitions checked on inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from veilchain.anonymizer import metrics as M


def _img(seed=0, shape=(32, 48, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_identical_images():
    x = _img()
    assert M.psnr(x, x) == float("inf") and M.ssim(x, x) == pytest.approx(1.0)
    assert M.dhash_distance(x, x) == 0 and M.l0_distance(x, x) == 0 and M.l2_distance(x, x) == 0
    assert M.ald_p(x, x, 2) == 0


def test_known_values():
    x = np.zeros((10, 10, 3), np.uint8)
    y = x.copy()
    y[0, 0, 0] = 255
    assert M.l0_distance(x, y) == pytest.approx(0.01)
    assert M.l2_distance(x, y) == pytest.approx(1.0)
    assert M.psnr(x, y) == pytest.approx(10 * np.log10(255**2 / (255**2 / 300)))
    x1 = np.full((4, 4, 3), 100, np.uint8)
    y1 = x1.copy()
    y1[0, 0] = 150
    assert M.ald_p(x1, y1, np.inf) == pytest.approx(0.5)
    assert M.ald_p(x1, y1, 0) == pytest.approx(3 / 48)
    assert 0 <= M.dhash_distance(_img(1), _img(2)) <= 64


def test_landmark_displacement_and_retention():
    from veilchain.anonymizer.alignment import CANONICAL_TEMPLATE_128 as T

    iod = np.linalg.norm(T[36:42].mean(0) - T[42:48].mean(0))
    assert M.landmark_displacement(T, T + [iod * 0.1, 0]) == pytest.approx(0.1, rel=1e-5)
    assert M.detection_retention([(0, 0, 10, 10), (20, 20, 30, 30)], [(1, 1, 10, 10)]) == 0.5


def test_reidentification_rank1_with_labels():
    g = np.zeros((3, 128))
    g[0, 0], g[1, 1], g[2, 2] = 1, 1, 1
    probes = g.copy()
    probes[1] = g[2] + 0.01  # probe 1 now looks like person 2
    r = M.reidentification(g, probes)
    assert r["hits"] == [True, False, True] and r["rate"] == pytest.approx(2 / 3)
    r = M.reidentification(g, probes, gallery_labels=["a", "b", "b"])  # 1 and 2: one person
    assert r["rate"] == 1.0
    far = M.reidentification(g, g * 5)  # nearest is own, but beyond the threshold
    assert far["rate"] == 0.0


def test_fd_over_dlib_embeddings():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 128)) * 0.05
    assert M.dlib_embedding_fd(a, a) == pytest.approx(0.0, abs=1e-6)
    b = a + 0.1
    assert M.dlib_embedding_fd(a, b) == pytest.approx(128 * 0.01, rel=1e-3)
    assert np.isnan(M.dlib_embedding_fd(a[:1], b))


def test_detail_ratio_and_seam_score_on_known_edits():
    """Blurring the inner face keeps a few percent of its detail; a bright band drawn along
    the replaced region's border raises the seam score well above 1."""
    import cv2

    rng = np.random.default_rng(0)
    face = cv2.GaussianBlur(rng.integers(0, 256, (128, 128, 3)).astype(np.uint8), (0, 0), 1.0)
    inner = np.zeros((128, 128), bool)
    inner[40:100, 30:98] = True
    assert M.detail_ratio(face, face, inner) == pytest.approx(1.0)
    blurred = cv2.GaussianBlur(face, (0, 0), 4.0)
    assert M.detail_ratio(face, blurred, inner) < 0.1
    mask = np.zeros((128, 128), np.uint8)
    cv2.circle(mask, (64, 64), 40, 1, -1)
    assert M.seam_score(face, face, mask.astype(bool)) == pytest.approx(1.0)
    banded = face.copy()
    cv2.circle(banded, (64, 64), 40, (255, 255, 255), 2)
    assert M.seam_score(face, banded, mask.astype(bool)) > 1.5


def test_noise_ratio_sees_added_noise_and_smoothing():
    """The noise floor of the inner face: 1 for the same image, above 1 with white noise
    added (and about its level over the original's, in quadrature), below 1 smoothed."""
    import cv2

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:128, 0:128]
    flat = np.repeat((100 + 0.3 * xx + 0.2 * yy)[..., None], 3, axis=2)
    face = np.clip(flat + rng.normal(0, 2.0, flat.shape), 0, 255).astype(np.uint8)
    inner = np.zeros((128, 128), bool)
    inner[40:100, 30:98] = True
    assert M.noise_ratio(face, face, inner) == pytest.approx(1.0)
    noisy = np.clip(face + rng.normal(0, 4.0, face.shape), 0, 255).astype(np.uint8)
    assert 1.8 < M.noise_ratio(face, noisy, inner) < 3.0
    assert M.noise_ratio(face, cv2.GaussianBlur(face, (0, 0), 1.5), inner) < 0.5


def test_seam_is_measured_where_the_method_drew():
    """changed_region: the hull of the changed pixels. A flat disc pasted with a hard edge
    inside a larger mask is seen there (the mask's own edge, untouched, would say 1.0); a
    smooth change of the same region leaves no seam."""
    import cv2

    rng = np.random.default_rng(1)
    face = cv2.GaussianBlur(rng.integers(60, 200, (128, 128, 3)).astype(np.uint8), (0, 0), 1.0)
    big_mask = np.zeros((128, 128), np.uint8)
    cv2.circle(big_mask, (64, 64), 50, 1, -1)
    pasted = face.copy()
    cv2.circle(pasted, (64, 64), 35, (230, 230, 230), -1)
    region = M.changed_region(face, pasted)
    assert abs(int(region.sum()) - int(np.pi * 35**2)) < 0.1 * np.pi * 35**2
    assert M.seam_score(face, pasted, big_mask) == pytest.approx(1.0)
    assert M.seam_score(face, pasted, region) > 1.5
    smooth = face.astype(np.float32)
    weight = cv2.GaussianBlur(region.astype(np.float32), (0, 0), 8.0)[..., None]
    smooth = np.clip(smooth + 20 * weight, 0, 255).astype(np.uint8)
    assert M.seam_score(face, smooth, M.changed_region(face, smooth)) < 1.1


def test_inner_face_mask_covers_eyes_and_mouth_not_the_jaw():
    from veilchain.anonymizer.alignment import canonical_template

    lm = canonical_template(128)
    inner = M.inner_face_mask(lm, (128, 128, 3))
    assert inner.shape == (128, 128)
    for i in (36, 45, 30, 48, 54, 62):  # eye corners, nose tip, mouth corners, inner lip
        x, y = np.round(lm[i]).astype(int)
        assert inner[y, x], i
    for i in (0, 8, 16):  # jaw: left, chin, right
        x, y = np.round(lm[i]).astype(int)
        assert not inner[y, x], i
