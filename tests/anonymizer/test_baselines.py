"""Baselines: parameters reported, DP-Pix noise scale per Fan 2018, deterministic given rng."""

from __future__ import annotations

import numpy as np
import pytest

from veilchain.anonymizer.alignment import CANONICAL_TEMPLATE_128, inter_ocular_distance
from veilchain.anonymizer.baselines import DPPix, GaussianBlur, Pixelate, SolidMask
from veilchain.errors import PrivacyBudgetError

IOD = inter_ocular_distance(CANONICAL_TEMPLATE_128)  # 30.74 px


def _region():
    return np.random.default_rng(3).integers(0, 256, (128, 128, 3), dtype=np.uint8)


@pytest.mark.parametrize("eps", [0.1, 1.0, 10.0])
def test_dppix_scale_formula(eps):
    m = DPPix(epsilon=eps, b=16, m=16)
    assert m.noise_scale == pytest.approx(3 * 255 * 16 / (16**2 * eps))
    p = m.privacy_params()
    assert p["epsilon"] == eps and p["b"] == 16 and p["m"] == 16 and "neighbourhood" in p


def test_dppix_noise_matches_laplace_scale():
    m = DPPix(epsilon=1.0, b=8, m=1)
    flat = np.full((512, 512, 3), 128, np.uint8)
    out = m.apply(flat, np.ones((512, 512), bool), IOD, np.random.default_rng(0))
    cells = out[::8, ::8].astype(float) - 128  # one value per cell and channel
    # Laplace(b) has mean |x| = b; clipping and rounding change little at this scale
    assert np.abs(cells).mean() == pytest.approx(m.noise_scale, rel=0.1)


@pytest.mark.parametrize("eps", [0, -1, float("nan"), float("inf")])
def test_dppix_bad_epsilon(eps):
    with pytest.raises(PrivacyBudgetError):
        DPPix(epsilon=eps)


def test_outputs_and_determinism():
    region = _region()
    mask = np.ones(region.shape[:2], bool)
    for method in (GaussianBlur(), Pixelate(), SolidMask(), DPPix()):
        a = method.apply(region.copy(), mask, IOD, np.random.default_rng(5))
        b = method.apply(region.copy(), mask, IOD, np.random.default_rng(5))
        assert a.shape == region.shape and a.dtype == np.uint8
        assert np.array_equal(a, b)
        assert not np.array_equal(a, region)
        assert len(method.model_hash()) == 64
        assert method.privacy_params()["method"] == method.name


def test_pixelate_is_blockwise_constant():
    out = Pixelate(cell_iod=0.5).apply(_region(), np.ones((128, 128), bool), IOD, None)
    cell = round(0.5 * 30.74)
    assert (out[:cell, :cell] == out[0, 0]).all()


def test_hash_depends_on_parameters():
    assert GaussianBlur(0.5).model_hash() != GaussianBlur(0.6).model_hash()
    assert DPPix(epsilon=1).model_hash() != DPPix(epsilon=2).model_hash()
