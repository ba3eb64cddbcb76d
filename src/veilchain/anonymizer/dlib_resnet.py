"""dlib's 128-d face recognition ResNet, run by PyTorch with dlib's own weights.

``dlib-bin`` is built without BLAS, so its ResNet runs on dlib's plain convolution loops:
80-100 ms per face on these CPUs. The same network in PyTorch (oneDNN convolutions, one
thread) takes ~20 ms. Nothing is retrained or converted offline: the weights are read from
``dlib_face_recognition_resnet_model_v1.dat`` (the file dlib itself loads) at first use, and
the face chip is still cut by dlib (``dlib.get_face_chip``, 150 px, padding 0.25, as in
``compute_face_descriptor``), so embeddings agree with dlib's to ~1e-6 (float rounding; see
``tests/anonymizer/test_faces.py``). :func:`load_dlib_resnet_onnx` runs the same network
through onnxruntime (exported once and cached, see onnx_runtime.py): ~2x faster again on
one thread.

Architecture (dlib's ``dnn_face_recognition_ex.cpp``, ``anet_type``): conv 7x7/2 (32) ->
affine -> relu -> max-pool 3x3/2, then residual blocks [3 x 32, 4 x 64, 3 x 128, 3 x 256,
1 x 256] whose first block of each level after the first halves the resolution (the shortcut
is a 2x2 average pool, and dlib's ``add_prev`` adds tensors of different channel counts or
sizes over their overlap, zero elsewhere), global average pool, 128-d linear map without
bias. dlib's convolutions and pools with stride 2 use no padding; stride 1 pads by half the
kernel.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as TF
from torch import nn

from veilchain.anonymizer.onnx_runtime import onnx_session
from veilchain.errors import ModelLoadError

CHIP_SIZE = 150
CHIP_PADDING = 0.25
#: (channels, blocks, first block halves the resolution) per level, input to output.
LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))


# --- dlib's serialization ----------------------------------------------------
class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def int(self) -> int:
        head = self.data[self.pos]
        n = head & 0x0F
        raw = self.data[self.pos + 1 : self.pos + 1 + n]
        self.pos += 1 + n
        value = int.from_bytes(raw, "little")
        return -value if head & 0x80 else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        return float(np.ldexp(float(mantissa), exponent))

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise ValueError(f"tensor version {version}")
        shape = [self.int() for _ in range(4)]
        count = int(np.prod(shape))
        arr = np.frombuffer(self.data, "<f4", count, self.pos).reshape(shape)
        self.pos += 4 * count
        return arr

    def find(self, token: bytes) -> bool:
        """Move past the next length-prefixed string ``token``; False when there is none."""
        needle = bytes([0x01, len(token)]) + token
        i = self.data.find(needle, self.pos)
        if i < 0:
            return False
        self.pos = i + len(needle)
        return True


def read_dlib_resnet(path: str | Path) -> dict:
    """Weights of dlib's face recognition ResNet, in file order (input to output).

    Returns ``{"mean": (3,) RGB means, "convs": [(weight, bias, stride, padding)],
    "affines": [(gamma, beta)], "fc": (128, 256) weight}``.
    """
    r = _Reader(Path(path).read_bytes())
    if not r.find(b"input_rgb_image_sized"):
        raise ValueError("no input_rgb_image_sized layer")
    mean = np.array([r.float(), r.float(), r.float()], np.float32)
    if (r.int(), r.int()) != (CHIP_SIZE, CHIP_SIZE):
        raise ValueError("unexpected input size")
    convs: list[tuple[np.ndarray, np.ndarray, tuple[int, int], tuple[int, int]]] = []
    affines: list[tuple[np.ndarray, np.ndarray]] = []
    needles = {name: bytes([0x01, len(name)]) + name for name in (b"con_4", b"affine_", b"fc_2")}
    nxt = dict.fromkeys(needles, -1)  # next occurrence of each layer name at or after r.pos
    while True:
        for name, needle in needles.items():
            if 0 <= nxt[name] < r.pos or nxt[name] == -1:
                nxt[name] = r.data.find(needle, r.pos)
        hits = {i: name for name, i in nxt.items() if i >= 0}
        if not hits:
            break
        name = hits[min(hits)]
        r.pos = min(hits) + len(needles[name])
        if name == b"fc_2":
            nout, nin = r.int(), r.int()
            fc = r.tensor().reshape(nin, nout).T  # dlib stores (inputs, outputs)
            return {"mean": mean, "convs": convs, "affines": affines, "fc": fc}
        params = r.tensor().reshape(-1)
        if name == b"con_4":
            nf, nr, nc, sy, sx, py, px = (r.int() for _ in range(7))
            nw = params.size - nf
            cin = nw // (nf * nr * nc)
            w = params[:nw].reshape(nf, cin, nr, nc)
            convs.append((w, params[nw:], (sy, sx), (py, px)))
        else:
            c = params.size // 2
            affines.append((params[:c], params[c:]))
    raise ValueError("no fc layer")


# --- the network ----------------------------------------------------------------
def _add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: sum over the overlap of two tensors, zero-padded to the larger."""
    if a.shape == b.shape:
        return a + b
    k, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t):
        return TF.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, k - t.shape[1]))

    return pad(a) + pad(b)


def _conv(spec, affine) -> nn.Conv2d:
    """dlib's convolution followed by its affine layer (per-channel gamma, beta), folded into
    one convolution: gamma * (W x + b) + beta = (gamma W) x + (gamma b + beta)."""
    (w, b, stride, padding), (gamma, beta) = spec, affine
    conv = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2:], stride, padding)
    conv.weight.data = torch.from_numpy(w * gamma[:, None, None, None])
    assert conv.bias is not None, "nn.Conv2d has a bias unless built with bias=False"
    conv.bias.data = torch.from_numpy(b * gamma + beta)
    return conv


class DlibResNet(nn.Module):
    """The network of :func:`read_dlib_resnet`; input (N, 3, 150, 150) RGB 0-255 floats.

    Runs channels-last (oneDNN's faster convolution layout on CPU; 1.5x with the folded
    affines, same embeddings to ~1e-6)."""

    mean: torch.Tensor  # a registered buffer: (1, 3, 1, 1) RGB means

    def __init__(self, weights: dict) -> None:
        super().__init__()
        convs, affines = list(weights["convs"]), list(weights["affines"])
        if len(convs) != 29 or len(affines) != 29:
            raise ValueError(f"expected 29 convolutions, got {len(convs)}")
        self.register_buffer("mean", torch.from_numpy(weights["mean"]).view(1, 3, 1, 1))
        self.stem = _conv(convs[0], affines[0])
        self.blocks = nn.ModuleList()
        self.down: list[bool] = []
        i = 1
        for _, n, down in LEVELS:
            for j in range(n):
                block = nn.Sequential(
                    _conv(convs[i], affines[i]), nn.ReLU(), _conv(convs[i + 1], affines[i + 1])
                )
                self.blocks.append(block)
                self.down.append(down and j == 0)
                i += 2
        self.fc = nn.Linear(256, 128, bias=False)
        self.fc.weight.data = torch.from_numpy(np.ascontiguousarray(weights["fc"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / 256.0
        x = TF.max_pool2d(torch.relu(self.stem(x)), 3, 2)
        for block, down in zip(self.blocks, self.down, strict=True):
            y = block(x)
            skip = TF.avg_pool2d(x, 2, 2) if down else x
            x = torch.relu(_add_prev(y, skip))
        return self.fc(x.mean((2, 3)))


@functools.lru_cache(maxsize=2)
def load_dlib_resnet(path: str) -> DlibResNet:
    """The network for a dlib model file, loaded once per process (read-only, eval mode)."""
    try:
        net = DlibResNet(read_dlib_resnet(path)).eval()
        # Module.to takes memory_format at run time; torch's overloads do not list it.
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    except (OSError, ValueError, IndexError) as exc:
        raise ModelLoadError(f"cannot read the dlib face embedding model {path}: {exc}") from exc
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@functools.lru_cache(maxsize=2)
def load_dlib_resnet_onnx(path: str, threads: int) -> Any:
    """The same network as :func:`load_dlib_resnet` through onnxruntime on ``threads``
    threads (see onnx_runtime.py): about 2x
    faster than PyTorch for one 150 px chip on one thread, the same embeddings to ~1e-6.
    Once per process and thread count."""
    # a copy in the plain layout to trace (the shared network stays channels-last)
    plain = copy.deepcopy(load_dlib_resnet(path))
    plain = plain.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    return onnx_session(plain, (torch.zeros((1, 3, CHIP_SIZE, CHIP_SIZE)),),
                        what="dlib's face embedding network", threads=threads,
                        input_names=["chips"], output_names=["embeddings"],
                        dynamic_axes={"chips": {0: "n"}, "embeddings": {0: "n"}})  # fmt: skip


def embed_chips(net: DlibResNet | Any, chips: list[np.ndarray]) -> np.ndarray:
    """(N, 128) float32 embeddings of 150x150x3 uint8 RGB chips, by the PyTorch network or
    its onnxruntime session (:func:`load_dlib_resnet_onnx`)."""
    if not chips:
        return np.zeros((0, 128), np.float32)
    if not isinstance(net, DlibResNet):
        blob = np.ascontiguousarray(np.stack(chips).transpose(0, 3, 1, 2), np.float32)
        return np.asarray(net.run(None, {"chips": blob})[0], np.float32)
    x = torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float()
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        return net(x).numpy().astype(np.float32)
