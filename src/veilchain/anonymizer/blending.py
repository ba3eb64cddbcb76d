"""Compositing a new face into the original image without a seam.

Every function here changes only pixels inside the given (already dilated) mask: pixels where
the mask is False are copied from the background bit for bit. Inside, a feathered alpha rises
from 0 at the mask border to 1 at ``feather_px`` from it (smoothstep of the distance transform),
so the generated face fades into the surrounding skin; ``mode="laplacian"`` additionally mixes
the two images band by band (Burt-Adelson Laplacian pyramid) for a softer low-frequency join.
"""

from __future__ import annotations

import cv2
import numpy as np

from veilchain.errors import AnonymizationError

BLEND_MODES = ("feather", "laplacian", "hard")


def feather_alpha(mask: np.ndarray, feather_px: float) -> np.ndarray:
    """Alpha (H, W) float32 in [0, 1]: 0 outside ``mask``, rising to 1 ``feather_px`` inside."""
    m = np.asarray(mask, bool)
    if feather_px <= 0:
        return m.astype(np.float32)
    padded = np.pad(m, 1).astype(np.uint8)  # the image border counts as outside
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    t = np.clip(dist / float(feather_px), 0.0, 1.0)
    alpha = t * t * (3.0 - 2.0 * t)
    alpha[~m] = 0.0
    return alpha.astype(np.float32)


def _laplacian_mix(bg: np.ndarray, fg: np.ndarray, alpha: np.ndarray, levels: int) -> np.ndarray:
    gb: list[np.ndarray] = [bg.astype(np.float32)]
    gf: list[np.ndarray] = [fg.astype(np.float32)]
    ga: list[np.ndarray] = [alpha]
    for _ in range(levels):
        if min(gb[-1].shape[:2]) < 8:
            break
        gb.append(cv2.pyrDown(gb[-1]))
        gf.append(cv2.pyrDown(gf[-1]))
        ga.append(cv2.pyrDown(ga[-1]))
    out = gb[-1] * (1 - ga[-1][..., None]) + gf[-1] * ga[-1][..., None]
    for i in range(len(gb) - 2, -1, -1):
        size = (gb[i].shape[1], gb[i].shape[0])
        lb = gb[i] - cv2.pyrUp(gb[i + 1], dstsize=size)
        lf = gf[i] - cv2.pyrUp(gf[i + 1], dstsize=size)
        a = ga[i][..., None]
        out = cv2.pyrUp(out, dstsize=size) + lb * (1 - a) + lf * a
    return out


def blend(
    background: np.ndarray,
    foreground: np.ndarray,
    mask: np.ndarray,
    *,
    feather_px: float = 0.0,
    mode: str = "feather",
) -> np.ndarray:
    """Composite ``foreground`` over ``background`` inside ``mask`` (same H, W; uint8 RGB).

    Outside ``mask`` the result equals ``background`` exactly. ``mode``: "feather" (alpha
    blend), "laplacian" (pyramid blend, clamped to the mask) or "hard" (copy inside the mask).
    """
    if background.shape != foreground.shape or background.shape[:2] != mask.shape[:2]:
        raise AnonymizationError(
            f"blend shapes differ: {background.shape}, {foreground.shape}, mask {mask.shape}"
        )
    if mode not in BLEND_MODES:
        raise AnonymizationError(f"unknown blend mode {mode!r}; use one of {BLEND_MODES}")
    m = np.asarray(mask, bool)
    out = background.copy()
    if not m.any():
        return out
    if mode == "hard":
        out[m] = foreground[m]
        return out
    alpha = feather_alpha(m, feather_px)
    if mode == "laplacian":
        levels = max(1, int(np.log2(max(feather_px, 2.0))))
        mixed = _laplacian_mix(background, foreground, alpha, levels)
    else:
        a = alpha[..., None]
        mixed = background.astype(np.float32) * (1 - a) + foreground.astype(np.float32) * a
    out[m] = np.clip(np.rint(mixed[m]), 0, 255).astype(np.uint8)
    return out
