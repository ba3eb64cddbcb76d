"""Differentially private latent mode: encode the face, clip, add Laplace noise, decode.

An encoder maps the face interior (the aligned crop with everything outside the face mask
zeroed, at 64x64) to a latent ``z`` in R^d. At inference ``z`` is clipped to the L1 ball of
radius C (``z <- z * min(1, C / ||z||_1)``) and Laplace noise of scale ``b = 2C / epsilon`` is
added to every coordinate. Any two clipped latents differ by at most 2C in L1 norm, so the
Laplace mechanism makes the released noisy latent epsilon-DP with respect to replacing the face
interior by any other face (bounded DP, one face = one record).

The decoder only post-processes the noisy latent, the public noise level and the mean colour
of the pixels around the mask (3 numbers): it sees no pixels, no landmarks, no mask. A
decoder that saw the surrounding hair and skin learned to infer the interior from them and was
re-identified at the same rate at every epsilon (format 2, measured: see docs/MODEL_CARD.md).
The generated face is pasted into the face mask; the mask outline (jaw and brow landmarks),
the pixels outside it and the lighting match (mean and spread of the interior's brightness,
its mean colour) are released as they are and are not covered by epsilon; neither are repeated
releases of the same face (epsilons add up).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from veilchain.anonymizer.ciagan import (
    WEIGHTS_DIR,
    _down,
    _up,
    file_sha256,
    load_checkpoint_file,
    paste,
    prepare,
    to_uint8_image,
    warm_up,
)
from veilchain.errors import ModelLoadError, PrivacyBudgetError

DP_WEIGHTS = "dp_latent.pt"
FORMAT = "veilchain-dp-latent/3"
DEFAULT_LATENT = 16
DEFAULT_CLIP = 1.0


def check_budget(epsilon: float, clip: float) -> None:
    if not (isinstance(epsilon, int | float) and math.isfinite(epsilon) and epsilon > 0):
        raise PrivacyBudgetError(f"epsilon must be a positive number, got {epsilon!r}")
    if not (isinstance(clip, int | float) and math.isfinite(clip) and clip > 0):
        raise PrivacyBudgetError(f"clip radius C must be a positive number, got {clip!r}")


def clip_l1(z: torch.Tensor, clip: float) -> torch.Tensor:
    """Scale each row of ``z`` into the L1 ball of radius ``clip``."""
    norm = z.abs().sum(dim=1, keepdim=True)
    return z * torch.clamp(clip / norm.clamp_min(1e-12), max=1.0)


def laplace_noise(shape, scale: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Laplace(0, scale) samples by inverse CDF from a seeded uniform draw."""
    u = torch.rand(shape, generator=generator, dtype=torch.float64) - 0.5
    u = u.clamp(-0.5 + 1e-12, 0.5 - 1e-12)
    return (-scale * torch.sign(u) * torch.log1p(-2 * u.abs())).float()


def privatize(z: torch.Tensor, epsilon: float, clip: float, generator=None) -> torch.Tensor:
    """The Laplace mechanism on the L1-clipped latent: clip to C, add Laplace(2C/epsilon)."""
    check_budget(epsilon, clip)
    zc = clip_l1(z, clip)
    return zc + laplace_noise(zc.shape, 2.0 * clip / epsilon, generator)


class LatentEncoder(nn.Module):
    """Face interior (3, 64, 64) in [-1, 1] -> latent (d,)."""

    def __init__(self, latent: int = DEFAULT_LATENT, ch: int = 32):
        super().__init__()
        c = ch
        self.net = nn.Sequential(
            _down(3, c, norm=False), _down(c, 2 * c), _down(2 * c, 4 * c), _down(4 * c, 8 * c)
        )
        self.fc = nn.Linear(8 * c * 16, latent)

    def forward(self, image, mask):
        return self.fc(self.net(image * mask).flatten(1))


def surround_colour(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean colour (B, 3) of the pixels outside the mask: public context for the decoder."""
    out = 1 - mask
    return (image * out).sum((2, 3)) / out.sum((2, 3)).clamp_min(1.0)


class LatentDecoder(nn.Module):
    """Noisy latent (scaled by C and the public noise level) + surround colour -> a 64x64
    face in the canonical alignment. Returns the composite (input outside the mask)."""

    def __init__(self, latent: int = DEFAULT_LATENT, ch: int = 32):
        super().__init__()
        c = ch
        self.fc = nn.Sequential(
            nn.Linear(latent + 4, 256), nn.LeakyReLU(0.2), nn.Linear(256, 8 * c * 16)
        )
        self.net = nn.Sequential(
            _up(8 * c, 8 * c),  # 8
            _up(8 * c, 4 * c),  # 16
            _up(4 * c, 2 * c),  # 32
            _up(2 * c, c),  # 64
            nn.Conv2d(c, 3, 3, 1, 1),
        )
        self.ch = c

    @staticmethod
    def features(z_noisy: torch.Tensor, clip: float, noise_rel: torch.Tensor) -> torch.Tensor:
        """Latent input: z / (C (1 + s)) and log1p(s), s = noise scale / C (public)."""
        s = noise_rel.reshape(-1, 1)
        return torch.cat([z_noisy / (clip * (1 + s)), torch.log1p(s)], 1)

    def forward(self, image, mask, z_noisy, clip: float, noise_rel: torch.Tensor):
        x = torch.cat([self.features(z_noisy, clip, noise_rel), surround_colour(image, mask)], 1)
        gen = torch.tanh(self.net(self.fc(x).view(-1, 8 * self.ch, 4, 4)))
        return image * (1 - mask) + gen * mask


class DpLatentGenerator:
    """The pipeline's FaceGenerator for the DP latent mode (see ``build_dp_generator``)."""

    name = "dp"

    def __init__(
        self,
        encoder: nn.Module,  # a LatentEncoder, or one rescaled to another clip radius
        decoder: LatentDecoder,
        *,
        epsilon: float,
        clip: float,
        weights_sha256: str,
        meta: dict,
    ):
        check_budget(epsilon, clip)
        self.encoder = encoder.eval()
        self.decoder = decoder.eval()
        self.epsilon = float(epsilon)
        self.clip = float(clip)
        self._hash = weights_sha256
        self.meta = meta

    def model_hash(self) -> str:
        return self._hash

    def privacy_params(self) -> dict:
        return {
            "method": "dp",
            "mechanism": "laplace",
            "epsilon": self.epsilon,
            "clip": self.clip,
            "norm": "l1",
            "noise_scale": 2.0 * self.clip / self.epsilon,
            "latent_dim": int(self.meta.get("latent", DEFAULT_LATENT)),
            "protects": (
                "face interior (latent); mask outline, outside pixels and the interior's "
                "mean lighting (lighting match) are public"
            ),
        }

    @torch.no_grad()
    def generate(
        self,
        crop: np.ndarray,
        landmarks: np.ndarray,
        rng: np.random.Generator,
        *,
        embedding: np.ndarray | None = None,
    ) -> np.ndarray:
        """A 128x128x3 uint8 face decoded from the epsilon-DP latent (``embedding`` unused)."""
        img, _, m = (torch.from_numpy(a)[None] for a in prepare(crop, landmarks))
        z = self.encoder(img, m)
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
        zn = privatize(z, self.epsilon, self.clip, gen)
        s = torch.tensor([2.0 / self.epsilon])
        out = self.decoder(img, m, zn * (self.train_clip / self.clip), self.train_clip, s)
        return paste(crop, to_uint8_image(out[0]), landmarks)

    @property
    def train_clip(self) -> float:
        return float(self.meta.get("clip", DEFAULT_CLIP))


def build_dp_generator(
    *, epsilon: float, clip: float | None = None, weights_dir: Path | None = None
) -> DpLatentGenerator:
    """Load the DP latent autoencoder. ``clip`` defaults to the radius used in training; the
    encoder's latent is rescaled so any C gives the same utility at a given epsilon."""
    path = Path(weights_dir or WEIGHTS_DIR) / DP_WEIGHTS
    train_clip = DEFAULT_CLIP if clip is None else clip
    check_budget(epsilon, train_clip)
    state, meta = load_checkpoint_file(path, FORMAT)
    try:
        enc: nn.Module = LatentEncoder(meta["latent"], meta["ch"])
        dec = LatentDecoder(meta["latent"], meta["ch"])
        enc.load_state_dict({k: v.float() for k, v in state["encoder"].items()})
        dec.load_state_dict({k: v.float() for k, v in state["decoder"].items()})
    except (KeyError, RuntimeError) as exc:
        raise ModelLoadError(f"incompatible DP weights in {path}: {exc}".splitlines()[0]) from exc
    clip = float(meta.get("clip", DEFAULT_CLIP)) if clip is None else float(clip)
    if clip != float(meta.get("clip", DEFAULT_CLIP)):
        # a different radius is a rescaling of the latent space: encode, scale by C / C_train
        enc = _ScaledEncoder(enc, clip / float(meta.get("clip", DEFAULT_CLIP)))
    gen = DpLatentGenerator(
        enc, dec, epsilon=epsilon, clip=clip, weights_sha256=file_sha256(path), meta=meta
    )
    warm_up(lambda crop, lms: gen.generate(crop, lms, np.random.default_rng(0)))
    return gen


class _ScaledEncoder(nn.Module):
    def __init__(self, enc: nn.Module, scale: float):
        super().__init__()
        self.enc = enc
        self.scale = scale

    def forward(self, image, mask):
        return self.enc(image, mask) * self.scale
