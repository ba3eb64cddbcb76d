"""The method registry: every anonymization method's name, kind, parameters and validation,
declared once. Config, the CLI, the API schema and the docs read :data:`METHODS` and
:func:`validate_method`; :func:`build_method` makes the method object.

A method is either a :class:`FaceGenerator` (CIAGAN, the DP latent autoencoder: works on
aligned 128x128 crops) or a :class:`RegionMethod` (blur, pixelate, mask, DP-Pix: rewrites the
face region in place). Each names the region method its faces fall back to when a generator
cannot take them (:func:`build_fallback`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from veilchain.anonymizer.baselines import DPPix, GaussianBlur, Pixelate, SolidMask
from veilchain.errors import InputError, ModelLoadError, PrivacyBudgetError

#: The privacy budget a method that takes one uses when none is given.
DEFAULT_EPSILON = 1.0
#: Budgets outside this range are refused: epsilon is recorded on chain in thousandths (a
#: uint32 of milli-epsilon), so below 0.001 it would read back as "none", and beyond 10^6 it
#: stops meaning anything (and overflows).
MIN_EPSILON, MAX_EPSILON = 0.001, 1_000_000.0


@dataclass(frozen=True)
class MethodSpec:
    """One method: ``kind`` "generator" or "region"; ``takes_epsilon`` whether it has a
    privacy budget; ``fallback`` the region method its faces fall back to."""

    name: str
    kind: str
    takes_epsilon: bool
    fallback: str
    formal_privacy: str | None
    summary: str


REGISTRY: tuple[MethodSpec, ...] = (
    MethodSpec("ciagan", "generator", False, "blur", None,
               "conditional GAN: a new identity, pose and expression kept"),
    MethodSpec("dp", "generator", True, "dppix", "epsilon-DP latent release",
               "DP latent autoencoder: Laplace noise on a clipped face code"),
    MethodSpec("dppix", "region", True, "dppix", "epsilon-DP per face region (Fan 2018)",
               "DP-Pix: noisy cell means over the face"),
    MethodSpec("blur", "region", False, "blur", None, "Gaussian blur, sigma 0.5 IOD"),
    MethodSpec("pixelate", "region", False, "pixelate", None, "cells of 0.35 IOD"),
    MethodSpec("mask", "region", False, "mask", None, "a solid grey fill"),
)  # fmt: skip
METHODS_BY_NAME = {m.name: m for m in REGISTRY}
METHODS = tuple(METHODS_BY_NAME)


def no_budget_error(method: str) -> InputError:
    """The one-line error for a budget given to a method that has none."""
    takers = " and ".join(m.name for m in REGISTRY if m.takes_epsilon)
    return InputError(f"epsilon applies to {takers} only, not {method}")


def validate_method(method: str, epsilon: float | None = None) -> float | None:
    """Check a method name and its budget; returns the budget to use (the default for a
    method that takes one, None otherwise). One-line errors name what to change."""
    spec = METHODS_BY_NAME.get(method)
    if spec is None:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if epsilon is None:
        return DEFAULT_EPSILON if spec.takes_epsilon else None
    if not spec.takes_epsilon:
        raise no_budget_error(method)
    try:
        epsilon = float(epsilon)
    except (TypeError, ValueError):
        raise PrivacyBudgetError(f"epsilon must be a number, got {epsilon!r}") from None
    if not math.isfinite(epsilon):
        raise PrivacyBudgetError(f"epsilon must be a finite number, got {epsilon}")
    if not MIN_EPSILON <= epsilon <= MAX_EPSILON:
        raise PrivacyBudgetError(
            f"epsilon must be between {MIN_EPSILON:g} and {MAX_EPSILON:g}, got {epsilon:g}"
        )
    return epsilon


@runtime_checkable
class FaceGenerator(Protocol):
    """A model that replaces the face in an aligned crop (implemented by CIAGAN and DP)."""

    name: str  # "ciagan" | "dp"

    def model_hash(self) -> str: ...  # sha256 hex of the weights

    def privacy_params(self) -> dict: ...  # e.g. {"method": "dp", "epsilon": 1.0, "clip": 20.0}

    def generate(
        self,
        crop: np.ndarray,
        landmarks: np.ndarray,
        rng: np.random.Generator,
        *,
        embedding: np.ndarray | None = None,
    ) -> np.ndarray:
        """crop: 128x128x3 uint8 RGB aligned by alignment.align_face; landmarks: 68x2 float32 in
        crop coordinates; embedding: the source face's 128-d dlib embedding (CIAGAN uses it to
        pick a target identity other than the source's). Returns a 128x128x3 uint8 RGB face in
        the same alignment."""
        ...


def is_face_generator(method: object) -> bool:
    """Whether ``method`` draws whole new faces (an aligned crop in, a face out) rather than
    rewriting a region; the pipeline checks and writes the two kinds differently."""
    return isinstance(method, FaceGenerator) and hasattr(method, "generate")


@runtime_checkable
class RegionMethod(Protocol):
    """A method that rewrites the face region in place (the baselines)."""

    name: str
    stochastic: bool

    def model_hash(self) -> str: ...

    def privacy_params(self) -> dict: ...

    def apply(
        self,
        region: np.ndarray,
        mask: np.ndarray,
        iod: float,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """region: (h, w, 3) uint8 around one face; mask: (h, w) bool; iod: the face's
        inter-ocular distance in pixels (strengths scale with it). Returns new (h, w, 3) uint8
        pixels; only those inside mask are used."""
        ...


def build_method(
    method: str,
    *,
    epsilon: float | None = None,
    seed: int = 0,
    weights_dir: Path | None = None,
    features: tuple[str, ...] = (),
) -> FaceGenerator | RegionMethod:
    """The method object for a name in :data:`METHODS` (generators are imported lazily).
    ``features``: regenerate only these (anonymizer/features.py); generators only."""
    epsilon = validate_method(method, epsilon)
    if features:
        if METHODS_BY_NAME[method].kind != "generator":
            raise InputError(
                f"--features needs a generator method ({', '.join(_generators())}), not {method}"
            )
        from veilchain.anonymizer.features import FeatureSelective

        inner = build_method(method, epsilon=epsilon, seed=seed, weights_dir=weights_dir)
        return FeatureSelective(inner, features)
    if method == "blur":
        return GaussianBlur()
    if method == "pixelate":
        return Pixelate()
    if method == "mask":
        return SolidMask()
    if method == "dppix":
        return DPPix(epsilon=epsilon or DEFAULT_EPSILON)
    try:
        if method == "ciagan":
            from veilchain.anonymizer.ciagan import build_ciagan_generator

            return build_ciagan_generator(weights_dir=weights_dir, seed=seed)
        from veilchain.anonymizer.dp_latent import build_dp_generator

        return build_dp_generator(epsilon=epsilon or DEFAULT_EPSILON, weights_dir=weights_dir)
    except ImportError as exc:
        raise ModelLoadError(
            f"the {method} generator is not installed ({exc}); use a baseline method "
            "(blur, pixelate, mask, dppix) or update veilchain"
        ) from exc
    except (FileNotFoundError, OSError) as exc:
        raise ModelLoadError(
            f"{method} weights not found ({exc}); train them (veilchain train {method}) or "
            "pass --weights-dir"
        ) from exc


def _generators() -> list[str]:
    return [m.name for m in REGISTRY if m.kind == "generator"]


def build_fallback(method: str, epsilon: float | None = None) -> RegionMethod:
    """The region method a face falls back to: DP-Pix at the same epsilon for the DP latent
    generator (so the report's epsilon still holds), blur for CIAGAN, the method itself for
    the region methods."""
    spec = METHODS_BY_NAME[method]
    built = build_method(spec.fallback, epsilon=epsilon if spec.takes_epsilon else None)
    assert isinstance(built, RegionMethod)
    return built
