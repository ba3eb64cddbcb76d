"""scripts/detail_ceiling.py: the detail ratio an oracle generator (the original face itself,
resampled) reaches grows with the resolution it draws at, and at 64 px stays under the
issue's 0.30, as MODEL_CARD.md reports."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location(
        "detail_ceiling", ROOT / "scripts" / "detail_ceiling.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_resolution_ceiling_rises_with_resolution_and_64_px_misses_the_target():
    dc = _script()
    photos = dc.sample_faces()
    assert sum(len(d) for _, d in photos) == 9  # the sample photos' trusted faces
    ceiling = dc.resolution_ceiling(photos)
    ratios = [ceiling[str(r)]["detail_ratio_median"] for r in dc.RESOLUTIONS]
    assert ratios == sorted(ratios) and len(set(ratios)) == len(ratios)
    assert ceiling["64"]["detail_ratio_median"] < 0.30 < ceiling["96"]["detail_ratio_median"]


def test_the_oracle_returns_the_crop_resampled():
    dc = _script()
    crop = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    same = dc.OracleGenerator(128).generate(crop, None, None)
    assert np.array_equal(same, crop)
    soft = dc.OracleGenerator(32).generate(crop, None, None)
    assert soft.shape == crop.shape and np.abs(soft.astype(int) - crop).mean() > 20
