"""blending: pixels outside the mask stay bit-identical; inside, a smooth ramp."""

from __future__ import annotations

import numpy as np
import pytest

from veilchain.anonymizer.blending import blend, feather_alpha
from veilchain.errors import AnonymizationError


@pytest.fixture
def pair():
    rng = np.random.default_rng(1)
    bg = rng.integers(0, 256, (80, 90, 3), dtype=np.uint8)
    fg = rng.integers(0, 256, (80, 90, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:80, :90]
    mask = (yy - 40) ** 2 / 30**2 + (xx - 45) ** 2 / 25**2 < 1
    return bg, fg, mask


@pytest.mark.parametrize("mode", ["feather", "laplacian", "hard"])
def test_outside_mask_bit_identical(pair, mode):
    bg, fg, mask = pair
    out = blend(bg, fg, mask, feather_px=8, mode=mode)
    assert np.array_equal(out[~mask], bg[~mask])
    assert not np.array_equal(out[mask], bg[mask])


def test_feather_alpha_ramp(pair):
    _, _, mask = pair
    a = feather_alpha(mask, 6)
    assert (a[~mask] == 0).all() and a.max() == 1.0
    assert a[40, 45] == 1.0 and 0 < a[40, 21] < 1  # centre full, near the edge partial


def test_full_alpha_centre_is_foreground(pair):
    bg, fg, mask = pair
    out = blend(bg, fg, mask, feather_px=4)
    assert np.array_equal(out[40, 45], fg[40, 45])


def test_shape_mismatch_and_mode(pair):
    bg, fg, mask = pair
    with pytest.raises(AnonymizationError):
        blend(bg, fg[:10], mask)
    with pytest.raises(AnonymizationError):
        blend(bg, fg, mask, mode="poisson")
