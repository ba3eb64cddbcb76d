"""Classical face obfuscation baselines: Gaussian blur, pixelation, solid mask and DP-Pix.

Each works on a region of interest around one face: ``apply(region, mask, iod, rng)`` returns
new pixels for the region, and the caller copies them in only where ``mask`` is True.
Strengths scale with the face's inter-ocular distance ``iod`` (pixels), so a face far from the
camera is hidden as well as a close one. All four share the interface of
:class:`veilchain.anonymizer.pipeline.RegionMethod`, so ``Anonymizer(detector, method)`` runs
them exactly like the generators.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import cv2
import numpy as np

from veilchain.errors import PrivacyBudgetError


def params_hash(params: dict[str, Any]) -> str:
    """sha256 hex of the canonical JSON of a method's parameters (its "model hash")."""
    blob = json.dumps(params, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


class _Baseline:
    name = "baseline"
    stochastic = False

    def privacy_params(self) -> dict[str, Any]:
        raise NotImplementedError

    def model_hash(self) -> str:
        return params_hash(self.privacy_params())


class GaussianBlur(_Baseline):
    """Gaussian blur with sigma = ``sigma_iod`` x the face's inter-ocular distance."""

    name = "blur"

    def __init__(self, sigma_iod: float = 0.5) -> None:
        self.sigma_iod = float(sigma_iod)

    def privacy_params(self) -> dict[str, Any]:
        return {"method": "blur", "sigma_iod": self.sigma_iod, "formal_privacy": None}

    def apply(self, region, mask, iod, rng) -> np.ndarray:
        sigma = max(0.5, self.sigma_iod * float(iod))
        h, w = region.shape[:2]
        f = int(sigma // 4)  # wide kernels: blur a downscaled copy (same result, ~f² faster)
        if f < 2 or min(h, w) // f < 8:
            return cv2.GaussianBlur(region, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
        small = cv2.resize(region, (w // f, h // f), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma / f, borderType=cv2.BORDER_REFLECT)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


class Pixelate(_Baseline):
    """Block means on square cells of ``cell_iod`` x the inter-ocular distance."""

    name = "pixelate"

    def __init__(self, cell_iod: float = 0.35) -> None:
        self.cell_iod = float(cell_iod)

    def privacy_params(self) -> dict[str, Any]:
        return {"method": "pixelate", "cell_iod": self.cell_iod, "formal_privacy": None}

    def apply(self, region, mask, iod, rng) -> np.ndarray:
        cell = max(2, int(round(self.cell_iod * float(iod))))
        return _cell_means(region, cell, np.asarray(mask, bool))[0]


class SolidMask(_Baseline):
    """Fill the face region with one colour (what most deployed tools do)."""

    name = "mask"

    def __init__(self, color: tuple[int, int, int] = (128, 128, 128)) -> None:
        self.color = tuple(int(c) for c in color)

    def privacy_params(self) -> dict[str, Any]:
        return {"method": "mask", "color": list(self.color), "formal_privacy": None}

    def apply(self, region, mask, iod, rng) -> np.ndarray:
        out = np.empty_like(region)
        out[...] = np.asarray(self.color, np.uint8)
        return out


class DPPix(_Baseline):
    """DP-Pix (Fan, "Image Pixelization with Differential Privacy", DBSec 2018).

    The face region is cut into ``b`` x ``b`` pixel cells (grid anchored at the region's
    origin); each cell's mean is released with Laplace noise of scale ``255 * m / (b**2 * eps)``
    per channel in Fan's single-channel formula. Neighbourhood notion (Fan's m-neighbourhood):
    two images are neighbours when they differ in at most ``m`` pixels, by any amount, so
    a cell mean moves by at most 255 m / b². For RGB we release three means per cell, so the
    L1 sensitivity and the scale are multiplied by 3 (``channels``) to keep the whole release
    eps-DP. The guarantee covers the face cells only, not the rest of the image, and each
    retry of the identity check spends another eps (basic composition).
    """

    name = "dppix"
    stochastic = True

    def __init__(self, epsilon: float = 1.0, b: int = 16, m: int = 16, channels: int = 3) -> None:
        if not (epsilon > 0 and np.isfinite(epsilon)):
            raise PrivacyBudgetError(f"epsilon must be a positive number, got {epsilon}")
        if b < 1 or m < 1:
            raise PrivacyBudgetError(f"DP-Pix needs b >= 1 and m >= 1, got b={b}, m={m}")
        self.epsilon, self.b, self.m, self.channels = float(epsilon), int(b), int(m), int(channels)

    @property
    def noise_scale(self) -> float:
        return self.channels * 255.0 * self.m / (self.b**2 * self.epsilon)

    def privacy_params(self) -> dict[str, Any]:
        return {
            "method": "dppix",
            "epsilon": self.epsilon,
            "b": self.b,
            "m": self.m,
            "laplace_scale": round(self.noise_scale, 6),
            "neighbourhood": f"images differing in at most {self.m} pixels",
            "formal_privacy": "epsilon-DP per face region (Fan 2018)",
        }

    def apply(self, region, mask, iod, rng) -> np.ndarray:
        means, shape = _cell_means(region, self.b, None, return_means=True)
        noisy = means + rng.laplace(0.0, self.noise_scale, size=means.shape)
        noisy = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
        big = np.repeat(np.repeat(noisy, self.b, axis=0), self.b, axis=1)
        return np.ascontiguousarray(big[: shape[0], : shape[1]])


def _cell_means(region: np.ndarray, cell: int, mask: np.ndarray | None, return_means=False):
    """Mean colour of each ``cell`` x ``cell`` block (over the mask when given)."""
    h, w = region.shape[:2]
    gh, gw = -(-h // cell), -(-w // cell)
    pad = np.zeros((gh * cell, gw * cell, region.shape[2]), np.float64)
    pad[:h, :w] = region
    weight = np.zeros((gh * cell, gw * cell), np.float64)
    weight[:h, :w] = 1.0 if mask is None else mask
    if mask is not None and not mask.any():
        weight[:h, :w] = 1.0
    blocks = (pad * weight[..., None]).reshape(gh, cell, gw, cell, -1).sum((1, 3))
    counts = weight.reshape(gh, cell, gw, cell).sum((1, 3))[..., None]
    if mask is not None:  # cells without face pixels fall back to their plain mean
        plain = pad.reshape(gh, cell, gw, cell, -1).sum((1, 3))
        n = np.ones((gh * cell, gw * cell))
        n[h:, :] = 0
        n[:, w:] = 0
        plain_counts = n.reshape(gh, cell, gw, cell).sum((1, 3))[..., None]
        empty = counts[..., 0] == 0
        blocks[empty] = plain[empty]
        counts[empty] = np.maximum(plain_counts[empty], 1)
    means = blocks / np.maximum(counts, 1)
    if return_means:
        return means, (h, w)
    small = np.clip(np.rint(means), 0, 255).astype(np.uint8)
    big = np.repeat(np.repeat(small, cell, axis=0), cell, axis=1)[:h, :w]
    return np.ascontiguousarray(big), (h, w)
