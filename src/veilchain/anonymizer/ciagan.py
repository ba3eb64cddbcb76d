"""CIAGAN (Maximov et al., CVPR 2020), our own implementation for 128x128 aligned crops.

The generator is a U-Net whose input is a landmark sketch (drawn from the 68 points) plus the
masked face (face interior removed, hair and background kept) and the mask; a target
pseudo-identity (learned embedding -> MLP -> a 4x4 feature map) is concatenated at the
bottleneck. Training (``training.py``) uses a PatchGAN conditioned on the sketch, a siamese
identity network with a contrastive loss, and LSGAN. The U-Net body runs at 64x64 (``RES``) to
train on CPUs. A 128 px generator (``res=128``) adds a detail head: full-resolution features of
the input plus the body's upsampled features draw a residual onto the body's upsampled face,
so the face is drawn at the crop's resolution (``CROP``). The face is pasted inside the face
mask only.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from veilchain.anonymizer import alignment, embedding
from veilchain.anonymizer.identities import PseudoIdentities
from veilchain.anonymizer.onnx_runtime import onnx_session
from veilchain.anonymizer.superres import Upsampler, combined_hash, load_upsampler
from veilchain.errors import InputError, ModelLoadError

RES = 64
CROP = 128
WEIGHTS_DIR = Path(__file__).parent / "weights"
CIAGAN_WEIGHTS = "ciagan.pt"
FORMAT = "veilchain-ciagan/1"
#: Forehead share of the generated region (see alignment.face_hull).
MASK_FOREHEAD = 0.35
_PARTS = [
    (range(0, 17), False),
    (range(17, 22), False),
    (range(22, 27), False),
    (range(27, 31), False),
    (range(30, 36), True),
    (range(36, 42), True),
    (range(42, 48), True),
    (range(48, 60), True),
    (range(60, 68), True),
]


def landmark_sketch(landmarks: np.ndarray, size: int = RES) -> np.ndarray:
    """(size, size) float32 image of the face parts drawn as anti-aliased polylines, 1 px
    wide per 64 px of ``size`` (so a 128 sketch averaged down to 64 looks like a 64 one)."""
    img = np.zeros((size, size), np.uint8)
    pts = np.asarray(landmarks, np.float64).reshape(68, 2)
    width = max(1, size // RES)
    for idx, closed in _PARTS:
        p = np.round(pts[list(idx)] * 16).astype(np.int32)
        cv2.polylines(img, [p], closed, 255, width, cv2.LINE_AA, shift=4)
    return img.astype(np.float32) / 255.0


def generation_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool region the generator replaces (face hull with some forehead)."""
    return alignment.face_mask(landmarks, (size, size), forehead=MASK_FOREHEAD)


def prepare(crop: np.ndarray, landmarks: np.ndarray, res: int = RES) -> tuple[np.ndarray, ...]:
    """Network inputs for one 128 crop at resolution ``res`` (64 or 128): image [-1,1]
    (3,R,R), sketch (1,R,R), mask (1,R,R)."""
    if crop.shape != (CROP, CROP, 3) or crop.dtype != np.uint8:
        raise InputError(f"expected a {CROP}x{CROP}x3 uint8 aligned crop, got {crop.shape}")
    small = crop if res == CROP else cv2.resize(crop, (res, res), interpolation=cv2.INTER_AREA)
    lm = np.asarray(landmarks, np.float32).reshape(68, 2) * (res / CROP)
    img = small.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0
    return img, landmark_sketch(lm, res)[None], generation_mask(lm, res)[None].astype(np.float32)


def _down(cin: int, cout: int, norm: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1)]
    if norm:
        layers.append(nn.InstanceNorm2d(cout, affine=True))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(cin, cout, 3, 1, 1),
        nn.InstanceNorm2d(cout, affine=True),
        nn.ReLU(),
    )


class UNetGenerator(nn.Module):
    """U-Net 64x64: input sketch + masked face + mask (5 ch); a condition vector (identity
    embedding, or a DP latent) becomes a 4x4 map concatenated at the bottleneck."""

    def __init__(self, cond_dim: int, ch: int = 32, in_ch: int = 5):
        super().__init__()
        c = ch
        self.inc = nn.Sequential(nn.Conv2d(in_ch, c, 3, 1, 1), nn.LeakyReLU(0.2))  # 64
        self.d1 = _down(c, 2 * c)  # 32
        self.d2 = _down(2 * c, 4 * c)  # 16
        self.d3 = _down(4 * c, 8 * c)  # 8
        self.d4 = _down(8 * c, 8 * c)  # 4
        self.cond = nn.Sequential(
            nn.Linear(cond_dim, 256), nn.LeakyReLU(0.2), nn.Linear(256, 8 * c * 16)
        )
        self.mid = nn.Sequential(
            nn.Conv2d(16 * c, 8 * c, 3, 1, 1), nn.InstanceNorm2d(8 * c, affine=True), nn.ReLU()
        )
        self.u3 = _up(8 * c, 8 * c)  # 8
        self.u2 = _up(16 * c, 4 * c)  # 16
        self.u1 = _up(8 * c, 2 * c)  # 32
        self.u0 = _up(4 * c, c)  # 64
        self.out = nn.Sequential(nn.Conv2d(2 * c, c, 3, 1, 1), nn.ReLU(), nn.Conv2d(c, 3, 1))
        self.ch = c

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.out(self.features(x, cond)))

    def features(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The last decoder features with the first encoder's (2*ch channels at 64 px)."""
        e0 = self.inc(x)
        e1 = self.d1(e0)
        e2 = self.d2(e1)
        e3 = self.d3(e2)
        e4 = self.d4(e3)
        cmap = self.cond(cond).view(-1, 8 * self.ch, 4, 4)
        h = self.mid(torch.cat([e4, cmap], 1))
        h = self.u3(h)
        h = self.u2(torch.cat([h, e3], 1))
        h = self.u1(torch.cat([h, e2], 1))
        h = self.u0(torch.cat([h, e1], 1))
        return torch.cat([h, e0], 1)


class DetailHead(nn.Module):
    """The 128 px stage: the input at full resolution and the U-Net body's upsampled features
    draw a residual onto the body's (bilinear-upsampled) face. The last convolution starts at
    zero, so a head added to a trained 64 px body starts as that body's upsampled output."""

    def __init__(self, ch: int, in_ch: int = 5):
        super().__init__()
        h = max(8, ch // 2)
        self.inp = nn.Sequential(nn.Conv2d(in_ch, h, 3, 1, 1), nn.LeakyReLU(0.2))
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2 * ch, ch, 3, 1, 1), nn.ReLU()
        )
        self.mix = nn.Sequential(
            nn.Conv2d(ch + h, h, 3, 1, 1), nn.ReLU(), nn.Conv2d(h, h, 3, 1, 1), nn.ReLU()
        )
        self.out = nn.Conv2d(h, 3, 3, 1, 1)
        assert self.out.bias is not None, "Conv2d has a bias by default"
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, feats: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        h = self.mix(torch.cat([self.up(feats), self.inp(x)], 1))
        base = nn.functional.interpolate(coarse, scale_factor=2, mode="bilinear")
        return torch.clamp(base + self.out(h), -1.0, 1.0)


class IdentityGenerator(nn.Module):
    """CIAGAN generator: a learned embedding of the target pseudo-identity drives the U-Net.
    ``res`` is the resolution of its inputs and output: 64 (the body alone) or 128 (the body
    on the inputs averaged down to 64, plus :class:`DetailHead`)."""

    def __init__(self, num_ids: int, ch: int = 32, id_dim: int = 64, res: int = RES):
        super().__init__()
        if res not in (RES, CROP):
            raise ModelLoadError(f"CIAGAN resolution {res} is not supported; use {RES} or {CROP}")
        self.embed = nn.Embedding(num_ids, id_dim)
        self.unet = UNetGenerator(id_dim, ch)
        self.head = DetailHead(ch) if res == CROP else None
        self.num_ids = num_ids
        self.res = res

    def forward(self, image, sketch, mask, target: torch.Tensor) -> torch.Tensor:
        """Composite: generated pixels inside ``mask``, the input outside."""
        x = torch.cat([sketch, image * (1 - mask), mask], 1)
        cond = self.embed(target)
        if self.head is None:
            gen = self.unet(x, cond)
        else:
            feats = self.unet.features(nn.functional.avg_pool2d(x, 2), cond)
            gen = self.head(x, feats, torch.tanh(self.unet.out(feats)))
        return image * (1 - mask) + gen * mask


class PatchDiscriminator(nn.Module):
    """PatchGAN on image + landmark sketch (4 ch) -> 8x8 real/fake scores (LSGAN): three
    strided stages at 64 px, four at 128 px. ``features`` returns every stage's output too
    (for the feature-matching loss)."""

    def __init__(self, ch: int = 32, in_ch: int = 4, res: int = RES):
        super().__init__()
        c = ch
        stages = [_down(in_ch, c, norm=False), _down(c, 2 * c), _down(2 * c, 4 * c)]
        if res == CROP:
            stages.append(_down(4 * c, 4 * c))
        self.stages = nn.ModuleList(stages)
        self.score = nn.Conv2d(4 * c, 1, 3, 1, 1)

    def features(self, image, sketch) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = torch.cat([image, sketch], 1)
        feats = []
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        return self.score(h), feats

    def forward(self, image, sketch):
        return self.features(image, sketch)[0]


class SiameseNet(nn.Module):
    """Identity embedding (unit norm) of the masked face interior, for the contrastive loss."""

    def __init__(self, ch: int = 32, dim: int = 128):
        super().__init__()
        c = ch
        self.net = nn.Sequential(
            _down(3, c, norm=False), _down(c, 2 * c), _down(2 * c, 4 * c), _down(4 * c, 8 * c)
        )
        self.fc = nn.Linear(8 * c * 16, dim)

    def forward(self, image, mask):
        h = self.net(image * mask).flatten(1)
        return nn.functional.normalize(self.fc(h), dim=1)


def contrastive(a: torch.Tensor, b: torch.Tensor, same: torch.Tensor, margin: float = 1.0):
    """Contrastive loss (Hadsell et al.): same pairs pulled together, others beyond margin."""
    d = (a - b).norm(dim=1)
    return (same * d**2 + (1 - same) * torch.relu(margin - d) ** 2).mean()


def mask_edge_excess(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean excess of the composite's gradient magnitude over the real face's, on a band of
    about 2 px each side of the mask border (a seam or a bright band scores > 0)."""
    band = nn.functional.max_pool2d(mask, 5, 1, 2) + nn.functional.max_pool2d(-mask, 5, 1, 2)

    def grad(x: torch.Tensor) -> torch.Tensor:
        g = x.mean(1, keepdim=True)
        gx = nn.functional.pad(g[..., :, 1:] - g[..., :, :-1], (0, 1, 0, 0))
        gy = nn.functional.pad(g[..., 1:, :] - g[..., :-1, :], (0, 0, 0, 1))
        return (gx**2 + gy**2 + 1e-6).sqrt()

    excess = torch.relu(grad(fake) - grad(real)) * band
    return excess.sum() / band.sum().clamp_min(1.0)


def paste(
    crop: np.ndarray,
    generated: np.ndarray,
    landmarks: np.ndarray,
    upsample: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Paste a generated face inside the (feathered) mask. A face smaller than the crop is
    upsampled: by ``upsample`` (a 2x upsampler, see ``superres.py``) when given and the face
    is half the crop's size, else bicubic."""
    big = generated
    if generated.shape[:2] != (CROP, CROP):
        if upsample is not None and generated.shape[0] * 2 == CROP:
            big = upsample(generated)
        else:
            big = cv2.resize(generated, (CROP, CROP), interpolation=cv2.INTER_CUBIC)
    m: np.ndarray = generation_mask(landmarks, CROP).astype(np.float32)
    m = cv2.GaussianBlur(cv2.erode(m, np.ones((3, 3), np.uint8)), (5, 5), 1.5)[..., None]
    out = crop.astype(np.float32) * (1 - m) + big.astype(np.float32) * m
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def to_uint8_image(t: torch.Tensor) -> np.ndarray:
    """(3, R, R) tensor in [-1, 1] -> (R, R, 3) uint8."""
    a = ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    return np.ascontiguousarray(a)


def warm_up(generate) -> None:
    """Run ``generate(crop, landmarks)`` once on a blank crop and throw the result away.

    On these CPUs a network's first forward pass at a shape can differ from every later one in
    the last float bits (measured: ~1 fresh process in 4 under load gave the first face 1 grey
    level off on some pixels, both generators), so without this a seeded output would depend on
    whether it was the process's first."""
    generate(np.zeros((CROP, CROP, 3), np.uint8), alignment.canonical_template(CROP))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def generator_session(net: IdentityGenerator, threads: int) -> Any:
    """``net`` through onnxruntime on ``threads`` threads (see onnx_runtime.py): about 2x
    faster than PyTorch for one face on one thread on these CPUs (it skips PyTorch's copies
    around the U-Net's concatenations)."""
    crop = np.zeros((CROP, CROP, 3), np.uint8)
    img, sketch, mask = (
        torch.from_numpy(a)[None]
        for a in prepare(crop, alignment.canonical_template(CROP), net.res)
    )
    return onnx_session(net, (img, sketch, mask, torch.tensor([0])),
                        what="the CIAGAN generator", threads=threads,
                        input_names=["image", "sketch", "mask", "target"],
                        output_names=["face"])  # fmt: skip


class CiaganGenerator:
    """The pipeline's FaceGenerator for CIAGAN (see ``build_ciagan_generator``). ``net``
    runs through onnxruntime (:func:`generator_session`, opened at first use with as many threads
    as torch has then); its output differs from PyTorch's by at most 1 grey level, at
    about one pixel in three faces (measured on the bench's 640x480 photos, 65 faces)."""

    name = "ciagan"

    def __init__(
        self,
        net: IdentityGenerator,
        identities: PseudoIdentities,
        weights_sha256: str,
        meta: dict,
        upsampler: Upsampler | None = None,
    ):
        self.net = net.eval()
        self.identities = identities
        self.upsampler = upsampler
        self._hash = combined_hash(weights_sha256, upsampler)
        self.meta = meta
        self._embedder: embedding.FaceEmbedder | None = None
        self._session: Any = None

    def model_hash(self) -> str:
        return self._hash

    def privacy_params(self) -> dict:
        return {
            "method": "ciagan",
            "pseudo_identities": self.identities.k,
            "resolution": self.net.res,
            # how the face reaches the 128 px crop
            "upsampling": (
                "none" if self.net.res == CROP else "superres" if self.upsampler else "bicubic"
            ),
            "target_excludes_source_identity": True,
        }

    def _source_embedding(self, crop: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        if self._embedder is None:
            self._embedder = embedding.FaceEmbedder()
        return self._embedder.embed(crop, np.asarray(landmarks, np.float32))[0]

    def choose_target(self, crop, landmarks, rng, embedding=None) -> int:
        if embedding is None:
            embedding = self._source_embedding(crop, landmarks)
        return self.identities.choose_target(embedding, rng)

    def generate(
        self,
        crop: np.ndarray,
        landmarks: np.ndarray,
        rng: np.random.Generator,
        *,
        embedding: np.ndarray | None = None,
    ) -> np.ndarray:
        """A 128x128x3 uint8 face with a target identity other than the source's."""
        target = self.choose_target(crop, landmarks, rng, embedding)
        return self.generate_target(crop, landmarks, target)

    def generate_target(self, crop: np.ndarray, landmarks: np.ndarray, target: int) -> np.ndarray:
        if self._session is None:
            self._session = generator_session(self.net, torch.get_num_threads())
        img, sk, m = (a[None] for a in prepare(crop, landmarks, self.net.res))
        feed = {"image": img, "sketch": sk, "mask": m, "target": np.array([target], np.int64)}
        out = torch.from_numpy(self._session.run(None, feed)[0])
        return paste(crop, to_uint8_image(out[0]), landmarks, self.upsampler)


def load_checkpoint_file(path: Path, fmt: str) -> tuple[dict, dict]:
    """(state, meta) of a shipped weights file; ModelLoadError when missing or foreign."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        raise ModelLoadError(
            f"weights not found at {path} (+ .json); train with `veilchain train` or reinstall"
        )
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {meta_path}: {exc}; reinstall or retrain") from exc
    if meta.get("format") != fmt:
        raise ModelLoadError(f"{path} is not a {fmt} weights file; pass the right weights dir")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise ModelLoadError(
            f"cannot read weights {path} (corrupt or not a torch checkpoint); reinstall or retrain"
        ) from exc
    return state, meta


def build_ciagan_generator(weights_dir: Path | None = None, *, seed: int = 0) -> CiaganGenerator:
    """Load the shipped (or given) CIAGAN weights, and the super-resolution network beside
    them when the folder holds one. ``seed`` fixes torch's state for inference (the output
    itself depends only on the rng passed to ``generate``)."""
    torch.manual_seed(seed)
    path = Path(weights_dir or WEIGHTS_DIR) / CIAGAN_WEIGHTS
    state, meta = load_checkpoint_file(path, FORMAT)
    try:
        net = IdentityGenerator(
            meta["num_ids"], meta["ch"], meta["id_dim"], int(meta.get("resolution", RES))
        )
        net.load_state_dict({k: v.float() for k, v in state["generator"].items()})
        ids = PseudoIdentities(state["centroids"].float().numpy())
    except (KeyError, RuntimeError) as exc:
        raise ModelLoadError(
            f"incompatible CIAGAN weights in {path}: {exc}".splitlines()[0]
        ) from exc
    upsampler = load_upsampler(path.parent) if net.res == RES else None
    gen = CiaganGenerator(net, ids, file_sha256(path), meta, upsampler)
    warm_up(lambda crop, lms: gen.generate_target(crop, lms, 0))
    return gen
