"""Relighting to the photo around a generated face and grain of the photo's own level, on the
sample photos; and the DP latent's forehead band, measured end to end."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from veilchain.anonymizer.alignment import align_face, face_mask, transform_points
from veilchain.anonymizer.metrics import seam_score
from veilchain.anonymizer.pipeline import DEFAULT_DILATION
from veilchain.anonymizer.surround import (
    add_grain,
    flat_noise_sigma,
    generated_region,
    noise_sigma,
    relight,
)
from veilchain.anonymizer.wiring import build_anonymizer

ADDED_SIGMA = 4.0  # grey levels, per RGB channel
#: Y = 0.299 R + 0.587 G + 0.114 B, so independent RGB noise of sigma s is 0.668 s in Y
Y_SIGMA = ADDED_SIGMA * float(np.sqrt(0.299**2 + 0.587**2 + 0.114**2))


def _ellipse(shape, centre, axes) -> np.ndarray:
    m = np.zeros(shape[:2], np.uint8)
    cv2.ellipse(m, centre, axes, 0, 0, 360, 1, -1)
    return m.astype(bool)


def _ycc(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb).astype(np.float32)


@pytest.fixture
def noisy_face(sample, detector):
    """obama.jpg with known white noise added, a smooth 'generated' face in an ellipse over
    the face (the photo blurred: no grain of its own) and the ring of photo around it."""
    img = sample("obama.jpg")
    rng = np.random.default_rng(5)
    noisy = np.clip(np.rint(img + rng.normal(0, ADDED_SIGMA, img.shape)), 0, 255)
    noisy = noisy.astype(np.uint8)
    x0, y0, x1, y1 = detector.detect(img)[0].box
    centre = (int((x0 + x1) / 2), int((y0 + y1) / 2))
    axes = (int((x1 - x0) * 0.45), int((y1 - y0) * 0.6))
    face_region = _ellipse(img.shape, centre, axes)
    grown = _ellipse(img.shape, centre, (axes[0] + 20, axes[1] + 20))
    smooth = cv2.GaussianBlur(img, (0, 0), 3)
    face = np.where(face_region[..., None], smooth, noisy)
    return noisy, face, face_region, grown & ~face_region


def test_noise_sigma_reads_a_known_noise_level_on_a_photo(noisy_face, sample):
    noisy, _, _, ring = noisy_face
    clean = flat_noise_sigma(_ycc(sample("obama.jpg")), ring)[0]
    measured = flat_noise_sigma(_ycc(noisy), ring)[0]
    assert clean < 1.5  # the photo's own noise is small beside what was added
    assert measured == pytest.approx(np.hypot(Y_SIGMA, clean), rel=0.15)


def test_grain_brings_a_smooth_face_to_the_photos_noise_level(noisy_face):
    noisy, face, region, ring = noisy_face
    core = cv2.erode(region.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    before = noise_sigma(_ycc(face), core)
    out = add_grain(face, region, noisy, ring, np.random.default_rng(1))
    photo, after = flat_noise_sigma(_ycc(noisy), ring), noise_sigma(_ycc(out), core)
    assert before[0] < 0.3 * photo[0]
    assert after == pytest.approx(photo, rel=0.15)  # Y and both chroma channels
    assert np.array_equal(out[~region], face[~region])
    again = add_grain(face, region, noisy, ring, np.random.default_rng(1))
    other = add_grain(face, region, noisy, ring, np.random.default_rng(2))
    assert np.array_equal(out, again) and not np.array_equal(out, other)


def test_grain_reads_only_the_photo_around_the_face(noisy_face):
    noisy, face, region, ring = noisy_face
    other = noisy.copy()
    other[region] = 255 - other[region]
    assert np.array_equal(
        add_grain(face, region, other, ring, np.random.default_rng(1)),
        add_grain(face, region, noisy, ring, np.random.default_rng(1)),
    )


def test_relight_reads_only_the_lighting_statistics_of_the_face_under_it(sample, detector):
    """Shuffling the original's pixels under the generated face's core keeps its lightness mean
    and spread and its mean colour, and so the relit face (to float rounding)."""
    img = sample("obama.jpg")
    det = detector.detect(img)[0]
    crop, matrix = align_face(img, det.landmarks)
    region = face_mask(transform_points(det.landmarks, matrix), crop.shape, forehead=0.35)
    fake = np.where(region[..., None], cv2.GaussianBlur(crop, (0, 0), 4)[::-1], crop)
    weight = generated_region(fake, crop)
    inside = np.ones(region.shape, bool)
    touched = weight > 0
    shuffled = crop.copy()
    core = weight >= 0.99  # the face's lighting is read here
    shuffled[core] = np.random.default_rng(3).permutation(crop[core])
    a = relight(fake, crop, weight, inside, 6, core).astype(int)
    b = relight(fake, shuffled, weight, inside, 6, core).astype(int)
    drawn = weight >= 1.0  # where the soft edge shows none of the photo
    assert drawn.sum() > 0.5 * touched.sum()
    assert np.abs(a - b)[drawn].max() <= 1
    assert np.array_equal(a[~touched], crop[~touched])


def test_relight_takes_the_surrounding_skins_brightness_and_colour(sample, detector):
    img = sample("obama.jpg")
    crop, matrix = align_face(img, detector.detect(img)[0].landmarks)
    lm = transform_points(detector.detect(img)[0].landmarks, matrix)
    region = face_mask(lm, crop.shape, forehead=0.35)
    cast = crop.astype(np.int16) + np.array([60, 20, -30])  # brighter, and a colour cast
    fake = np.where(region[..., None], np.clip(cast, 0, 255), crop).astype(np.uint8)
    weight = generated_region(fake, crop)
    grown = cv2.dilate(region.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert weight.max() == 1.0 and (weight[~grown] == 0).all()
    lit = relight(fake, crop, weight, np.ones(region.shape, bool), 6, weight >= 0.99)
    core = weight >= 0.99
    lab = [
        cv2.cvtColor(a, cv2.COLOR_RGB2LAB).astype(float)[core].mean(0) for a in (crop, fake, lit)
    ]
    assert np.abs(lab[1] - lab[0]).max() > 15  # the cast is there before
    assert np.abs(lab[2] - lab[0]).max() < 5  # and gone after (the edge step moves it a little)
    assert np.array_equal(lit[weight == 0], crop[weight == 0])


def test_dp_latent_has_no_forehead_band(detector, embedder, sample):
    """The band: the DP face met the photo at the generated region's edge, and the lighting
    match, applied to the whole crop, stretched the original forehead above it (between the
    generated region and the dilated mask's edge). Main (c73605a) on this face, two data
    directories (random streams): seam score at the generated region's edge 1.29 and 1.39,
    at the dilated mask's 1.064 and 1.077, mean L change between the two +0.7 and +6.0;
    this tree 1.07, 1.00 and 0."""
    img = sample("obama2.jpg")
    anon = build_anonymizer("dp", epsilon=1.0, detector=detector, embedder=embedder)
    out = anon.anonymize(img).image
    assert np.array_equal(out, anon.anonymize(img).image)
    (det,) = detector.detect(img)
    keep = ~face_mask(det.landmarks, img.shape, dilation=DEFAULT_DILATION)
    assert np.array_equal(out[keep], img[keep])
    a, matrix = align_face(img, det.landmarks)
    b, _ = align_face(out, det.landmarks)
    lm = transform_points(det.landmarks, matrix)
    drawn = face_mask(lm, a.shape, forehead=0.35)  # the DP generator's region
    dilated = face_mask(lm, a.shape, dilation=DEFAULT_DILATION)
    assert seam_score(a, b, drawn) < 1.1
    assert seam_score(a, b, dilated) < 1.03
    between = dilated & ~cv2.dilate(drawn.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    light = [cv2.cvtColor(x, cv2.COLOR_RGB2LAB)[..., 0].astype(float)[between] for x in (a, b)]
    assert abs(float((light[1] - light[0]).mean())) < 1.0
