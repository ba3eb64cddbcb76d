"""Making a generated face look taken by the same camera as the photo around it.

- :func:`relight` gives the generated face the photo's lighting: the lightness mean and
  spread and the mean colour of the photo under it (four numbers, as before; the ring around
  a face is mostly hair, background and clothes, and faces lit from the ring alone were
  missed by the detectors and one was re-identified, see docs/anonymizer.md "Blending"), then
  the colour step that still separates its edge from the skin just outside it, per angular
  sector of a ring of skin-coloured pixels, spread along the edge and fading into the face. Only the
  pixels the generator drew change: the rest of the crop stays the photo's (the lighting
  match of the whole crop was what drew the DP latent's bright forehead band).
- :func:`add_grain` measures the photo's noise in the published pixels around the face
  (:func:`noise_sigma` in its flattest part, per YCrCb channel, with a rough spatial
  correlation) and adds noise of that level, less what the face already holds, drawn from
  the face's random stream. No high frequency of the original face is used.
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

from veilchain.anonymizer.faces import match_lighting

#: Immerkaer's noise kernel: flat and linear image structure gives 0; white noise of
#: standard deviation s gives a response of standard deviation 6 s.
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
_MAD_TO_SIGMA = 1.4826
#: Gaussian blurs (px) of white noise the synthesized grain can take, for correlated grain.
_GRAIN_BLURS = (0.0, 0.4, 0.5, 0.6)
_SECTORS = 16
_MAX_SAMPLES = 8192
#: Skin colour in YCrCb (8 bit). Cr from 144 leaves out brown and blond hair (Cr 135-143
#: around the astronaut's face, whose skin reads 142-153); very dark or dim skin (Cr under
#: 144) is left out with it, and such a face keeps the generator's colour.
SKIN_CR = (144, 176)
SKIN_CB = (85, 130)
SKIN_MIN_Y = 40
_FLAT_PERCENTILE = 20
_BT601 = np.array(  # YCrCb (offsets removed) -> RGB, as cv2.COLOR_YCrCb2RGB
    [[1.0, 1.403, 0.0], [1.0, -0.714, -0.344], [1.0, 0.0, 1.773]], np.float32
)


def _response(image: np.ndarray) -> np.ndarray:
    return cv2.filter2D(image.astype(np.float32), cv2.CV_32F, _NOISE_KERNEL)


def _robust_sigma(response: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per channel: MAD of the noise-kernel response over ``mask``, as a Gaussian sigma."""
    r = response[mask].reshape(-1, response.shape[2] if response.ndim == 3 else 1)
    if len(r) < 16:
        return np.zeros(r.shape[1], np.float32)
    if len(r) > _MAX_SAMPLES:  # a regular subsample: the median moves by a fraction of 1 %
        r = r[:: len(r) // _MAX_SAMPLES]
    med = np.median(r, axis=0)
    return (np.median(np.abs(r - med), axis=0) * _MAD_TO_SIGMA / 6.0).astype(np.float32)


def noise_sigma(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image's noise level (one sigma per channel, grey levels) over ``mask``.

    A robust high-pass residual: the median absolute response of Immerkaer's kernel, which is
    blind to flat and linear structure; edges are few enough in skin and background that the
    median ignores them. Pixels whose 3x3 neighbourhood leaves ``mask`` do not count."""
    m = cv2.erode(np.asarray(mask, np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return _robust_sigma(_response(image), m)


def _sector_of(shape: tuple[int, ...], centre: np.ndarray, sectors: int) -> np.ndarray:
    """Angular sector (0 .. sectors-1) of every pixel around ``centre`` (x, y)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    angle = np.arctan2(yy - centre[1], xx - centre[0]) + np.pi
    return (angle / (2 * np.pi) * sectors).astype(int) % sectors


def flat_noise_sigma(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The noise level of the flattest part of ``mask``: the mean absolute noise-kernel
    response over 7x7 windows, at its lower :data:`_FLAT_PERCENTILE` over the mask,
    calibrated on white noise. Hair, fabric and textured background read as noise to
    :func:`noise_sigma`; skin and flat background between them give the photo's own level."""
    m = cv2.erode(np.asarray(mask, np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    if m.sum() < 16:
        m = cv2.erode(np.asarray(mask, np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        if m.sum() < 16:
            return np.zeros(image.shape[2], np.float32)
    local = cv2.blur(np.abs(_response(image)), (7, 7)).reshape(*image.shape[:2], -1)
    return (np.percentile(local[m], _FLAT_PERCENTILE, axis=0) / _flat_unit()).astype(np.float32)


@cache
def _flat_unit() -> float:
    """What :func:`flat_noise_sigma`'s percentile reads on white noise of sigma 1."""
    white = np.random.default_rng(0).standard_normal((256, 256, 1)).astype(np.float32)
    local = cv2.blur(np.abs(_response(white)), (7, 7))[8:-8, 8:-8]
    return float(np.percentile(local, _FLAT_PERCENTILE))


def _correlation(image: np.ndarray, mask: np.ndarray) -> float:
    """How much of the noise in the flattest part of ``mask`` (one channel) survives a 2x2
    box average: about 0.5 for white noise, more for grain spread over neighbouring pixels.
    The grain's correlation is picked by comparing with the same figure for blurred noise."""
    m = cv2.erode(np.asarray(mask, np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    if m.sum() < 16:
        return 0.5
    plane = image.reshape(image.shape[:2]).astype(np.float32)
    fine = np.abs(_response(plane))
    local = cv2.blur(fine, (7, 7))
    flat = m & (local <= np.percentile(local[m], _FLAT_PERCENTILE * 2))
    coarse = np.abs(_response(cv2.blur(plane, (2, 2))))
    base = float(np.median(fine[flat]))
    return float(np.median(coarse[flat])) / base if base > 1e-3 else 0.5


@cache
def _blur_correlations() -> tuple[float, ...]:
    """:func:`_correlation` of unit white noise blurred by each of :data:`_GRAIN_BLURS`."""
    white = np.random.default_rng(0).standard_normal((160, 160)).astype(np.float32)
    full = np.ones(white.shape, bool)
    return tuple(_correlation(_blurred(white, s), full) for s in _GRAIN_BLURS)


def _blurred(field: np.ndarray, blur: float) -> np.ndarray:
    return cv2.GaussianBlur(field, (0, 0), blur) if blur > 0 else field


def add_grain(
    face: np.ndarray,
    face_mask: np.ndarray,
    photo: np.ndarray,
    ring: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """``face`` (uint8 RGB) with noise added inside ``face_mask`` so that its noise level
    matches ``photo``'s over ``ring`` (same shape; published pixels) per YCrCb channel.

    The noise the face already holds is subtracted in quadrature; the grain is white noise
    blurred to the photo's measured correlation and scaled so that :func:`noise_sigma` of
    the grain alone is the missing level."""
    fm = np.asarray(face_mask, bool)
    if int(np.asarray(ring, bool).sum()) < 64 or int(fm.sum()) < 64:
        return face.copy()
    photo_y = cv2.cvtColor(photo, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    face_y = cv2.cvtColor(face, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    target = flat_noise_sigma(photo_y, ring)
    core = cv2.erode(fm.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    missing = np.sqrt(np.maximum(target**2 - noise_sigma(face_y, core) ** 2, 0.0))
    if not (missing > 0.05).any():
        return face.copy()
    corr = _correlation(photo_y[..., 0], ring)
    blur = _GRAIN_BLURS[int(np.argmin([abs(c - corr) for c in _blur_correlations()]))]
    grain = rng.standard_normal(face.shape, dtype=np.float32)
    grain = _blurred(grain, blur).reshape(face.shape)
    unit = noise_sigma(grain, fm)
    grain *= (missing / np.maximum(unit, 1e-6))[None, None, :]
    rgb = grain @ _BT601.T
    out = face.astype(np.float32) + rgb * fm[..., None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def relight(
    generated: np.ndarray,
    photo: np.ndarray,
    region: np.ndarray,
    inside: np.ndarray,
    width: int,
    tone: np.ndarray,
) -> np.ndarray:
    """The photo with the generated face put in: ``generated`` inside ``region`` (a soft
    weight in [0, 1], where the generator drew), relit, and ``photo`` elsewhere.

    The face first takes the lightness mean and spread and the mean colour of the photo
    over ``tone`` (the face hull; :func:`~veilchain.anonymizer.faces.match_lighting`, four
    numbers, measured on ``generated`` over the same mask, as before; the ring
    alone is mostly hair, background and clothes, and a face matched to it alone was
    re-identified and missed by the detectors, see docs/anonymizer.md "Blending"), then
    the colour step that still separates its edge from the skin outside it, per angular
    sector of the ring, fading into the face (:func:`_edge_field`). ``inside`` marks the
    crop's pixels that lie inside the image (the rest replicate its border); ``width``:
    the ring's width in px."""
    w = np.asarray(region, np.float32)
    core = w >= 0.99
    if core.sum() < 16:
        return photo.copy()
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    touched = (w > 0).astype(np.uint8)
    ring = (cv2.dilate(touched, k) > 0) & (touched == 0) & inside & _skin(photo)
    band = core & ~cv2.erode(core.astype(np.uint8), k).astype(bool)
    matched = match_lighting(generated, photo, tone)
    g, p = (cv2.cvtColor(x, cv2.COLOR_RGB2LAB).astype(np.float32) for x in (matched, photo))
    yy, xx = np.mgrid[0 : w.shape[0], 0 : w.shape[1]].astype(np.float32)
    sector = _sector_of(w.shape, np.array([xx[core].mean(), yy[core].mean()]), _SECTORS)
    ring_sector, ring_lab = sector[ring], p[ring]
    outside = {}
    for s in range(_SECTORS):
        here = ring_sector == s
        if here.sum() >= 4:
            outside[s] = np.median(ring_lab[here], axis=0)
    corr = _edge_field(g, outside, band, core, sector, width)
    lit = cv2.cvtColor(np.clip(np.rint(g + corr), 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    out = photo.astype(np.float32) * (1 - w[..., None]) + lit.astype(np.float32) * w[..., None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _edge_field(face, outside, band, core, sector, width: int) -> np.ndarray:
    """The colour (Lab a, b) that still separates the face's edge from the skin outside it,
    per skin sector, spread along the edge and fading into the face over about two ring
    widths. Lightness is left alone: evening out the DP decoder's darker rim took HOG's
    retention of held-out DP faces from 0.89 to 0.80 (the rim is part of the contour it
    finds), where the colour step alone changed nothing measurable."""
    edge_sector, edge_lab = sector[band], face[band]
    edge_residual = np.zeros(edge_lab.shape, np.float32)
    edge_has = np.zeros(len(edge_lab), np.float32)
    for s, value in outside.items():
        here = edge_sector == s
        if here.sum() >= 4:
            edge_residual[here] = value - np.median(edge_lab[here], axis=0)
            edge_has[here] = 1.0
    residual = np.zeros(face.shape, np.float32)
    has = np.zeros(face.shape[:2], np.float32)
    residual[band], has[band] = edge_residual, edge_has
    sigma = 2.0 * width
    spread, cover = _wide_blur(residual, sigma), _wide_blur(has, sigma)
    depth = cv2.distanceTransform(core.astype(np.uint8), cv2.DIST_L2, 5)
    fade = np.exp(-depth / sigma) * (cover > 0.02)
    field = spread / np.maximum(cover, 1e-6)[..., None] * fade[..., None]
    field[..., 0] = 0.0  # colour only: see _edge_field's docstring
    return field


def _wide_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of large ``sigma`` at a quarter of the resolution (the same field to
    a few percent, at a twentieth of the cost)."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / 4)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).reshape(image.shape)


def _skin(image: np.ndarray) -> np.ndarray:
    """Pixels of skin colour (a fixed YCrCb box, :data:`SKIN_CR` and :data:`SKIN_CB`): the
    ring around a face also holds hair, background and clothes, which must not light it."""
    ycc = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
    cr, cb = ycc[..., 1], ycc[..., 2]
    return (
        (ycc[..., 0] >= SKIN_MIN_Y)
        & (cr >= SKIN_CR[0]) & (cr <= SKIN_CR[1])
        & (cb >= SKIN_CB[0]) & (cb <= SKIN_CB[1])
    )  # fmt: skip


def generated_region(generated: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """Soft weight (float32 in [0, 1]) of where a generator drew in ``generated``: the convex
    hull of the pixels it changed in ``crop`` (its region is the convex face hull), eroded by
    2 px and blurred (5x5) as the generators' own paste is, so it is 0 outside the hull."""
    changed = np.argwhere(np.any(generated != crop, axis=2))
    hull_mask = np.zeros(crop.shape[:2], np.uint8)
    if len(changed) < 3:
        return hull_mask.astype(np.float32)
    hull = cv2.convexHull(changed[:, ::-1].astype(np.int32))
    cv2.fillConvexPoly(hull_mask, hull, 1)
    eroded = cv2.erode(hull_mask, np.ones((5, 5), np.uint8))
    return cv2.GaussianBlur(eroded.astype(np.float32), (5, 5), 1.5)
