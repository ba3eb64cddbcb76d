"""DP latent mode: the Laplace mechanism, clipping, budget errors, shipped weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from veilchain.anonymizer import dp_latent as D
from veilchain.anonymizer.ciagan import WEIGHTS_DIR, file_sha256
from veilchain.errors import ModelLoadError, PrivacyBudgetError


@pytest.mark.parametrize("epsilon,clip", [(1.0, 1.0), (0.5, 3.0), (10.0, 20.0)])
def test_noise_scale_is_2c_over_epsilon(epsilon, clip):
    z = torch.zeros(4000, 64)  # clipped latent 0: what remains is the noise
    g = torch.Generator().manual_seed(0)
    noise = D.privatize(z, epsilon, clip, g).double()
    b = 2 * clip / epsilon
    n = noise.numel()
    # Laplace(b): E|X| = b (sd of |X| is b, so the mean of n draws is within 4b/sqrt(n)),
    # Var X = 2 b^2, median 0
    assert abs(noise.abs().mean().item() - b) < 4 * b / math.sqrt(n)
    assert abs(noise.var().item() / (2 * b * b) - 1) < 0.02
    assert abs(noise.mean().item()) < 4 * math.sqrt(2) * b / math.sqrt(n)


def test_clipping_enforced():
    z = torch.randn(100, 64) * 10
    zc = D.clip_l1(z, 2.5)
    assert (zc.abs().sum(1) <= 2.5 + 1e-5).all()
    small = torch.full((1, 64), 0.01)
    assert torch.equal(D.clip_l1(small, 2.5), small)  # inside the ball: unchanged
    # direction is kept
    cos = torch.nn.functional.cosine_similarity(z, zc)
    assert torch.allclose(cos, torch.ones_like(cos), atol=1e-5)


@pytest.mark.parametrize("eps", [0, -1.0, float("nan"), float("inf")])
def test_bad_epsilon_raises(eps):
    with pytest.raises(PrivacyBudgetError):
        D.privatize(torch.zeros(1, 4), eps, 1.0)
    with pytest.raises(PrivacyBudgetError):
        D.build_dp_generator(epsilon=eps)


def test_bad_clip_raises():
    with pytest.raises(PrivacyBudgetError):
        D.build_dp_generator(epsilon=1.0, clip=0.0)


def test_missing_weights_raise(tmp_path):
    with pytest.raises(ModelLoadError, match="weights not found"):
        D.build_dp_generator(epsilon=1.0, weights_dir=tmp_path)


needs_weights = pytest.mark.skipif(
    not (WEIGHTS_DIR / D.DP_WEIGHTS).is_file(), reason="shipped DP weights not present"
)


@needs_weights
def test_shipped_weights_generate_deterministically():
    gen = D.build_dp_generator(epsilon=1.0)
    assert gen.model_hash() == file_sha256(WEIGHTS_DIR / D.DP_WEIGHTS)
    params = gen.privacy_params()
    assert params["epsilon"] == 1.0 and params["clip"] == gen.clip
    assert params["noise_scale"] == pytest.approx(2 * gen.clip)
    crop, lm = _face()
    a = gen.generate(crop, lm, np.random.default_rng(3))
    b = gen.generate(crop, lm, np.random.default_rng(3))
    c = gen.generate(crop, lm, np.random.default_rng(4))
    assert a.shape == (128, 128, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def _face():
    from veilchain.anonymizer import alignment
    from veilchain.anonymizer import faces as F
    from veilchain.anonymizer.corpus import FIXED_BOX, FaceHuntersDecoder, load_codes, to_uint8

    codes, _, _ = load_codes()
    img = to_uint8(FaceHuntersDecoder()(codes[:1]))[0]
    lm = F.landmarks_for_box(img, FIXED_BOX)
    crop, m = alignment.align_face(img, lm, 128)
    return crop, alignment.transform_points(lm, m)


def test_decoder_sees_only_latent_and_surround_colour():
    """The decoder's face depends on the noisy latent and the mean colour around the mask,
    never on the interior pixels or the surround's detail (what re-identified format 2)."""
    torch.manual_seed(0)
    dec = D.LatentDecoder(latent=8, ch=4).eval()
    g = torch.Generator().manual_seed(1)
    a = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
    m = torch.zeros(1, 1, 64, 64)
    m[..., 16:48, 16:48] = 1
    b = a.clone()
    b[..., 16:48, 16:48] = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1  # other interior
    c = a.clone()  # same surround mean colour, other detail: rows swapped
    c[..., :16, :] = a[..., 48:, :].flip(2)
    c[..., 48:, :] = a[..., :16, :].flip(2)
    z, s = torch.randn(1, 8, generator=g), torch.tensor([2.0])
    with torch.no_grad():
        out = [dec(x, m, z, 1.0, s) * m for x in (a, b, c)]
        other_z = dec(a, m, z + 1, 1.0, s) * m
    assert torch.allclose(D.surround_colour(a, m), D.surround_colour(c, m), atol=1e-6)
    assert torch.equal(out[0], out[1])
    assert torch.allclose(out[0], out[2], atol=1e-5)
    assert not torch.allclose(out[0], other_z)
