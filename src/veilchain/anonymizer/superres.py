"""Self-similar 2x super-resolution for the generators' 64 px faces.

The generators draw 64 px faces that are pasted into the 128 px aligned crop; a plain
bicubic upsampling leaves the top octave of the crop empty, and the faces look smeared. The
DCGAN corpus faces are sharp at 64 px, so :class:`SuperResNet` learns (``superres_train.py``)
to go from a face averaged down to 32 px back to its sharp 64 px version, and is applied one
octave higher, 64 -> 128, to the generated face. It sees only the generator's output (the
generated face and, outside the face mask, the crop's surroundings the generator kept), never
the original face interior.

The network works at the input's resolution (residual blocks), then a pixel shuffle draws a
residual onto the bilinear-upsampled input. Its last convolution starts at zero, so an
untrained network is the bilinear upsampling.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from veilchain.anonymizer.onnx_runtime import onnx_session
from veilchain.errors import ModelLoadError

WEIGHTS_DIR = Path(__file__).parent / "weights"
SR_WEIGHTS = "superres.pt"
FORMAT = "veilchain-superres/1"
DEFAULT_CH = 24
DEFAULT_BLOCKS = 4


class _Block(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(ch, ch, 3, 1, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SuperResNet(nn.Module):
    """(N, 3, R, R) in [-1, 1] -> (N, 3, 2R, 2R): bilinear upsampling plus a learnt residual."""

    def __init__(self, ch: int = DEFAULT_CH, blocks: int = DEFAULT_BLOCKS):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(3, ch, 3, 1, 1), nn.LeakyReLU(0.2))
        self.body = nn.Sequential(*[_Block(ch) for _ in range(blocks)])
        self.tail = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1), nn.LeakyReLU(0.2))
        self.out = nn.Conv2d(ch, 3 * 4, 3, 1, 1)
        self.shuffle = nn.PixelShuffle(2)
        assert self.out.bias is not None, "Conv2d has a bias by default"
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        h = self.head(x)
        h = self.tail(self.body(h) + h)
        return torch.clamp(base + self.shuffle(self.out(h)), -1.0, 1.0)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, R, R, 3) or (R, R, 3) uint8 -> (N, 3, R, R) float in [-1, 1]."""
    a = np.asarray(images)
    if a.ndim == 3:
        a = a[None]
    return torch.from_numpy(a.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """(N, 3, R, R) in [-1, 1] -> (N, R, R, 3) uint8."""
    a = ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    return np.ascontiguousarray(a)


class Upsampler:
    """2x upsampling of a generated face by a trained :class:`SuperResNet`, run through
    onnxruntime (opened at first use with as many threads as torch has then)."""

    def __init__(self, net: SuperResNet, weights_sha256: str, meta: dict):
        self.net = net.eval()
        self.sha256 = weights_sha256
        self.meta = meta
        self._session: Any = None

    def __call__(self, face: np.ndarray) -> np.ndarray:
        """(R, R, 3) uint8 -> (2R, 2R, 3) uint8."""
        x = to_tensor(face).numpy()
        if self._session is None:
            self._session = onnx_session(
                self.net, (torch.from_numpy(x),), what="the super-resolution network",
                threads=torch.get_num_threads(), input_names=["face"], output_names=["big"],
            )  # fmt: skip
        out = self._session.run(None, {"face": x})[0]
        return to_uint8(torch.from_numpy(out))[0]


def load_upsampler(weights_dir: Path) -> Upsampler | None:
    """The super-resolution network in ``weights_dir``, or None when it holds none."""
    from veilchain.anonymizer.ciagan import file_sha256, load_checkpoint_file

    path = Path(weights_dir) / SR_WEIGHTS
    if not path.is_file():
        return None
    state, meta = load_checkpoint_file(path, FORMAT)
    try:
        net = SuperResNet(int(meta["ch"]), int(meta["blocks"]))
        net.load_state_dict({k: v.float() for k, v in state["net"].items()})
    except (KeyError, RuntimeError) as exc:
        raise ModelLoadError(
            f"incompatible super-resolution weights in {path}: {exc}".splitlines()[0]
        ) from exc
    return Upsampler(net, file_sha256(path), meta)


def combined_hash(generator_sha256: str, upsampler: Upsampler | None) -> str:
    """The model hash a generator publishes: its weights' sha256 alone, or, with an
    upsampler, the sha256 of both files' digests (so the chain records both files)."""
    if upsampler is None:
        return generator_sha256
    text = f"generator:{generator_sha256}\nsuperres:{upsampler.sha256}\n"
    return hashlib.sha256(text.encode()).hexdigest()
