"""Linear motion blur: find it in a whole image, and undo most of it before detection.

A camera that moved during the exposure smears every point of the image along one line. A
face smeared over half its height or more loses what CenterFace and MTCNN look for (the
eyes, the mouth), and both score it near zero. The smear has a signature that does not
depend on the content: a line kernel of length L multiplies the image's spectrum by a sinc
whose zeros repeat every 1/L along the motion's direction, so the log spectrum's inverse
transform (the cepstrum) has a deep negative peak at distance L in that direction.
:func:`estimate_motion_blur` looks for that peak on a small grey copy of the image
(about 10 ms at 640x480); :func:`deblur` undoes the blur it found with a Wiener filter
(a line kernel of that length and angle).

:class:`~veilchain.anonymizer.detectors.CenterFaceDetector` uses both in its candidate pass
(``deblur=True``): on an image with such a signature it also reads the deblurred copy, which
lifts smeared faces from CenterFace 0.00-0.05 to 0.1-0.8 (docs/anonymizer.md "Face recall").
Only a blur of the whole image (camera shake) is seen this way, not a single moving subject.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: The estimate runs on a grey copy whose longer side is at most this many pixels.
ANALYSIS_SIDE = 320
#: Smear lengths looked for, in pixels of the analysis copy (6-40 px at 640 px).
MIN_LENGTH_PX = 3.0
MAX_LENGTH_PX = 20.0
#: How far the cepstrum's minimum must stand out from the other directions at its distance
#: (in median absolute deviations) to count as a motion blur. Chosen on the recall set
#: (docs/anonymizer.md "Face recall": motion-blurred images 6-60, the others up to 14).
DEFAULT_MIN_STRENGTH = 12.0
#: Wiener's noise-to-signal ratio: lower restores more and rings more.
DEFAULT_NSR = 0.01
_ANGLE_STEP_DEG = 1.0
_LENGTH_STEP_PX = 0.5


@dataclass(frozen=True)
class MotionBlur:
    """A linear smear of ``length`` pixels (of the image it was estimated on) at ``angle``
    degrees (image axes, y down, 0-180), and how clearly the image shows it (``strength``)."""

    angle: float
    length: float
    strength: float


def _cepstrum(grey: np.ndarray) -> np.ndarray:
    """The (centred) real cepstrum of a Hann-windowed grey image."""
    h, w = grey.shape
    window = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    spectrum = np.abs(np.fft.fft2((grey - grey.mean()) * window))
    return np.fft.fftshift(np.real(np.fft.ifft2(np.log1p(spectrum)))).astype(np.float32)


def estimate_motion_blur(
    image: np.ndarray, *, min_strength: float = DEFAULT_MIN_STRENGTH
) -> MotionBlur | None:
    """The whole image's linear motion blur (in ``image``'s pixels), or None when its
    cepstrum shows none at least ``min_strength`` clear (see the module docstring)."""
    h, w = image.shape[:2]
    if min(h, w) < 4 * MAX_LENGTH_PX:
        return None
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    f = min(1.0, ANALYSIS_SIDE / max(h, w))
    small = cv2.resize(grey, (max(1, round(w * f)), max(1, round(h * f))),
                       interpolation=cv2.INTER_AREA).astype(np.float32)  # fmt: skip
    if min(small.shape) < 4 * MAX_LENGTH_PX:
        return None
    c = _cepstrum(small)
    cy, cx = c.shape[0] // 2, c.shape[1] // 2
    angles = np.deg2rad(np.arange(0.0, 180.0, _ANGLE_STEP_DEG))
    radii = np.arange(MIN_LENGTH_PX, MAX_LENGTH_PX + _LENGTH_STEP_PX, _LENGTH_STEP_PX)
    xs = (cx + np.outer(np.cos(angles), radii)).astype(np.float32)
    ys = (cy + np.outer(np.sin(angles), radii)).astype(np.float32)
    polar = cv2.remap(c, xs, ys, cv2.INTER_LINEAR)  # (angle, radius)
    i, j = np.unravel_index(int(np.argmin(polar)), polar.shape)
    ring = polar[:, j]
    median = float(np.median(ring))
    spread = float(np.median(np.abs(ring - median))) + 1e-9
    strength = (median - float(polar[i, j])) / spread
    if strength < min_strength:
        return None
    return MotionBlur(float(np.rad2deg(angles[i])), float(radii[j]) / f, strength)


def line_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised anti-aliased line of ``length`` pixels at ``angle`` degrees."""
    n = max(3, math.ceil(length)) | 1
    k = np.zeros((n, n), np.float32)
    c, half = (n - 1) / 2, max(length - 1, 1.0) / 2
    dx, dy = math.cos(math.radians(angle)) * half, math.sin(math.radians(angle)) * half
    ends = [
        (round((c - dx) * 16), round((c - dy) * 16)),
        (round((c + dx) * 16), round((c + dy) * 16)),
    ]
    cv2.line(k, ends[0], ends[1], 1.0, 1, cv2.LINE_AA, 4)  # 4 fractional bits: 1/16 px
    return k / k.sum()


def deblur(image: np.ndarray, blur: MotionBlur, *, nsr: float = DEFAULT_NSR) -> np.ndarray:
    """``image`` (H, W, C uint8) Wiener-deconvolved with ``blur``'s line kernel (in the
    image's own pixels). The image is reflected outwards by two smear lengths first (the
    Fourier transform wraps, and a hard edge rings far into the image), then to sizes the
    transform is fast at."""
    k = line_kernel(blur.length, blur.angle)
    pad = 2 * k.shape[0]
    h0, w0 = image.shape[:2]
    h, w = cv2.getOptimalDFTSize(h0 + 2 * pad), cv2.getOptimalDFTSize(w0 + 2 * pad)
    padded = cv2.copyMakeBorder(image, pad, h - h0 - pad, pad, w - w0 - pad, cv2.BORDER_REFLECT)
    kh, kw = k.shape
    psf = np.zeros((h, w), np.float32)
    psf[:kh, :kw] = k
    psf = np.roll(psf, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    # each channel's real transform is filtered in OpenCV's packed form, at about half the
    # cost of full complex spectra (the same copy to +-1 level on a few pixels in 100,000)
    packed = _packed_wiener(cv2.dft(psf), nsr)
    out = np.empty((h0, w0, padded.shape[2]), np.uint8)
    for c in range(padded.shape[2]):
        spectrum = cv2.dft(padded[..., c].astype(np.float32))
        sharp = cv2.idft(cv2.mulSpectrums(spectrum, packed, 0),
                         flags=cv2.DFT_SCALE | cv2.DFT_REAL_OUTPUT)  # fmt: skip
        out[..., c] = np.clip(sharp[pad : pad + h0, pad : pad + w0], 0, 255)
    return out


def _packed_wiener(k: np.ndarray, nsr: float) -> np.ndarray:
    """The Wiener filter conj(K) / (|K|^2 + nsr) of a kernel whose real transform ``k`` is
    in OpenCV's packed (CCS) form, in that same form: the columns between the first and (for
    an even width) the last hold (Re, Im) pairs along each row; those two columns hold a real
    value in their first row (and, for an even height, their last) and (Re, Im) pairs down
    the rows between."""
    g = np.empty_like(k)
    M, N = k.shape

    def pairs(re: np.ndarray, im: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        power = re * re + im * im + nsr
        return re / power, -im / power

    last = N - 1 if N % 2 == 0 else N
    g[:, 1:last:2], g[:, 2:last:2] = pairs(k[:, 1:last:2], k[:, 2:last:2])
    end = M - 1 if M % 2 == 0 else M
    for c in [0] + ([N - 1] if N % 2 == 0 else []):
        g[1:end:2, c], g[2:end:2, c] = pairs(k[1:end:2, c], k[2:end:2, c])
        for r in [0] + ([M - 1] if M % 2 == 0 else []):
            g[r, c] = k[r, c] / (k[r, c] * k[r, c] + nsr)
    return g
