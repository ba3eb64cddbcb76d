"""Feature-selective faces: regenerate only the chosen features, keep the rest of the face.

``--features eyes,nose,mouth`` (any subset) wraps a generator (CIAGAN or the DP latent
model): it draws a whole new face in the aligned crop as usual, then only the regions of the
chosen features are taken from it; skin, face shape, hair and (unless chosen) the expression
around the mouth stay the original's. The regions come from the 68 landmarks:

- ``eyes``: both eyes with their brows (points 17-26 and 36-47), the periocular region a
  recognizer leans on most;
- ``nose``: bridge and base (27-35);
- ``mouth``: lips (48-67).

Each region is the convex hull of its points, grown by a fraction of the inter-ocular distance
and feathered, and the new pixels are shifted to the original's mean colour inside it so the
seam does not show. Fewer features keep more of the original, so more identity: the identity
check still runs on the result, and ``veilchain evaluate`` with ``ciagan:eyes+nose`` style
methods measures how much each subset removes (docs/anonymizer.md, "Feature-selective faces").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import cv2
import numpy as np

from veilchain.errors import InputError

__all__ = ["FEATURES", "FeatureSelective", "feature_mask", "parse_features"]

FEATURES = ("eyes", "nose", "mouth")
_REGIONS: dict[str, list[list[int]]] = {
    "eyes": [[*range(17, 22), *range(36, 42)], [*range(22, 27), *range(42, 48)]],
    "nose": [list(range(27, 36))],
    "mouth": [list(range(48, 68))],
}
_GROW_IOD = 0.12  # how far a region reaches past its landmarks, in inter-ocular distances
_FEATHER_IOD = 0.08


def parse_features(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"eyes,nose"`` or ``["eyes", "nose"]`` -> ("eyes", "nose") in canonical order; empty or
    None -> () (the whole face)."""
    if value is None:
        return ()
    items = value.replace("+", ",").split(",") if isinstance(value, str) else list(value)
    chosen = {str(v).strip().lower() for v in items if str(v).strip()}
    unknown = sorted(chosen - set(FEATURES))
    if unknown:
        raise InputError(
            f"unknown feature {', '.join(unknown)}; choose among {', '.join(FEATURES)}"
        )
    return tuple(f for f in FEATURES if f in chosen)


def feature_mask(landmarks: np.ndarray, features: Iterable[str], size: int) -> np.ndarray:
    """A (size, size) float32 mask in [0, 1] over the chosen features' regions."""
    lm = np.asarray(landmarks, dtype=np.float32)
    iod = float(np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0))) or size / 4
    mask: np.ndarray = np.zeros((size, size), np.uint8)
    for feature in features:
        for points in _REGIONS[feature]:
            hull = cv2.convexHull(lm[points].astype(np.int32))
            cv2.fillConvexPoly(mask, hull, 255)
    grow = max(1, round(_GROW_IOD * iod))
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
    sigma = max(0.5, _FEATHER_IOD * iod)
    return cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigma)


class FeatureSelective:
    """A generator that replaces only ``features`` of the face (see the module docstring)."""

    def __init__(self, inner: Any, features: Iterable[str]) -> None:
        self.inner = inner
        self.features = parse_features(list(features))
        if not self.features:
            raise InputError("choose at least one feature (eyes, nose, mouth)")
        self.name = inner.name

    def model_hash(self) -> str:
        return self.inner.model_hash()

    def privacy_params(self) -> dict:
        return {**self.inner.privacy_params(), "features": list(self.features)}

    def generate(
        self,
        crop: np.ndarray,
        landmarks: np.ndarray,
        rng: np.random.Generator,
        *,
        embedding: np.ndarray | None = None,
    ) -> np.ndarray:
        new = self.inner.generate(crop, landmarks, rng, embedding=embedding)
        alpha = feature_mask(landmarks, self.features, crop.shape[0])[..., None]
        weight = alpha.sum()
        if weight < 1:
            return crop.copy()
        old_f, new_f = crop.astype(np.float32), new.astype(np.float32)
        shift = ((old_f - new_f) * alpha).sum((0, 1)) / weight  # match the mean colour
        out = old_f * (1 - alpha) + np.clip(new_f + shift, 0, 255) * alpha
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)
