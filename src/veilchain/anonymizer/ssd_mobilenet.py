"""A second face network for the candidate pass: face-api.js's SSD MobileNetV1.

CenterFace scores a face half hidden by a hand at 0.02-0.08 (docs/anonymizer.md, "Faces
behind a hand"); this network, a single-shot detector on a MobileNetV1 trained on WIDER FACE,
scores the two such faces of the recall set 0.48 and 0.52 and marks few places where no face
is. Its weights ship in the npm package ``@vladmandic/face-api`` (MIT; ``package.json`` pins
it, ``make install`` puts it in ``node_modules``) as ``model/ssd_mobilenetv1_model.bin``
(uint8-quantized, with a TensorFlow.js manifest). Nothing is downloaded at run time: the
network is rebuilt here as an ONNX graph from those weights (:func:`_onnx_model`) and run by
onnxruntime, as CenterFace is. Its input is fixed at 512 x 512: the image is padded to a
square at the bottom and right, as face-api.js does, and resized.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from veilchain.anonymizer.detectors import _nms, cpu_session
from veilchain.errors import ModelLoadError

PACKAGE = "@vladmandic/face-api"
PACKAGE_VERSION = "1.7.15"
#: The directory holding the model files; by default the npm package in the checkout's
#: ``node_modules``.
MODEL_DIR_ENV = "VEILCHAIN_FACE_API_MODEL_DIR"
_STEM = "ssd_mobilenetv1_model"
INPUT_SIDE = 512
#: Larger images are read in windows of this side overlapping by :data:`OVERLAP` px (see
#: :meth:`SsdFaces.detect`): a 1280 x 960 photo in 2 x 2 of them.
WINDOW = 704
OVERLAP = 128
#: A box scoring this or more is a face. On the recall set the network marked 2 places where
#: no face is at 0.4 (13 at 0.3); the two hand-covered faces it is here for score 0.48, 0.52.
DEFAULT_SSD_THRESHOLD = 0.4
_NMS_IOU = 0.5
_ROOT = Path(__file__).resolve().parents[3]


def model_dir() -> Path:
    """Where the model's manifest and weights are (see :data:`MODEL_DIR_ENV`)."""
    env = os.environ.get(MODEL_DIR_ENV)
    path = Path(env) if env else _ROOT / "node_modules" / PACKAGE / "model"
    if not (path / f"{_STEM}.bin").is_file():
        raise ModelLoadError(
            f"the SSD face model is missing from {path}: run `make install` (npm "
            f"{PACKAGE}@{PACKAGE_VERSION}) or set {MODEL_DIR_ENV} to its model/ directory"
        )
    return path


@functools.lru_cache(maxsize=1)
def installed_package() -> str:
    """The npm package the model files come from, with the version its ``package.json``
    (beside ``model/``) gives, or without one when it is not there (read once: every
    report names it)."""
    try:
        version = json.loads((model_dir().parent / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError, TypeError):
        return PACKAGE
    return f"{PACKAGE}@{version}"


def _weights(path: Path) -> tuple[dict[str, np.ndarray], str]:
    """The float32 tensors of the TensorFlow.js files (uint8 values times the manifest's scale
    plus its minimum) and the sha256 of the manifest followed by the weights."""
    manifest = (path / f"{_STEM}-weights_manifest.json").read_bytes()
    raw = (path / f"{_STEM}.bin").read_bytes()
    (group,) = json.loads(manifest)
    counts = [int(np.prod(w["shape"])) for w in group["weights"]]  # prod(()) is 1
    widths = [1 if w.get("quantization") else 4 for w in group["weights"]]
    if sum(n * b for n, b in zip(counts, widths, strict=True)) != len(raw):
        raise ModelLoadError(f"{path / _STEM}.bin does not match its manifest")
    out: dict[str, np.ndarray] = {}
    at = 0
    for w, n, width in zip(group["weights"], counts, widths, strict=True):
        q = w.get("quantization")
        if q:
            a = np.frombuffer(raw, np.uint8, n, at).astype(np.float32) * q["scale"] + q["min"]
        else:
            a = np.frombuffer(raw, np.float32, n, at)
        out[w["name"]] = a.reshape(w["shape"]).astype(np.float32)
        at += n * width
    return out, hashlib.sha256(manifest + raw).hexdigest()


@functools.lru_cache(maxsize=1)
def _onnx_model() -> tuple[bytes, np.ndarray, str]:
    """The network as ONNX bytes (input ``x``, 1x3x512x512 RGB in [-1, 1]; outputs the box
    encodings (1, 5118, 4) and class logits (1, 5118, 3)), its anchors (5118, 4: y0, x0,
    y1, x1 of the unit square) and the model's sha256. The layers are face-api.js's: the
    convolutions use TensorFlow's "same" padding (the extra pixel after), batch norm is
    folded into the depthwise convolutions, every layer but the heads ends in ReLU6."""
    from onnx import TensorProto, helper, numpy_helper

    w, sha = _weights(model_dir())
    nodes: list[Any] = []
    inits = [numpy_helper.from_array(np.array(0, np.float32), "zero"),
             numpy_helper.from_array(np.array(6, np.float32), "six")]  # fmt: skip

    def conv(x: str, side: int, name: str, weight: np.ndarray, bias: np.ndarray, stride: int,
             groups: int = 1, relu6: bool = True) -> tuple[str, int]:  # fmt: skip
        k = weight.shape[2]
        out_side = -(-side // stride)
        pad = max((out_side - 1) * stride + k - side, 0)
        inits.extend([numpy_helper.from_array(weight, name + "_w"),
                      numpy_helper.from_array(bias, name + "_b")])  # fmt: skip
        nodes.append(helper.make_node(
            "Conv", [x, name + "_w", name + "_b"], [name], group=groups, strides=[stride] * 2,
            pads=[pad // 2, pad // 2, pad - pad // 2, pad - pad // 2]))  # fmt: skip
        if relu6:
            nodes.append(helper.make_node("Clip", [name, "zero", "six"], [name + "_r"]))
            name += "_r"
        return name, out_side

    def pointwise(x: str, side: int, prefix: str, i: int, stride: int) -> tuple[str, int]:
        p = f"{prefix}/Conv2d_{i}_pointwise/"
        weight = w[p + "weights"].transpose(3, 2, 0, 1)  # HWIO -> OIHW
        return conv(x, side, f"{prefix}_{i}_pw", weight, w[p + "convolution_bn_offset"], stride)

    def depthwise(x: str, side: int, i: int, stride: int) -> tuple[str, int]:
        p = f"MobilenetV1/Conv2d_{i}_depthwise/"
        scale = w[p + "BatchNorm/gamma"] / np.sqrt(w[p + "BatchNorm/moving_variance"] + 1e-3)
        shift = w[p + "BatchNorm/beta"] - w[p + "BatchNorm/moving_mean"] * scale
        weight = w[p + "depthwise_weights"].transpose(2, 3, 0, 1) * scale[:, None, None, None]
        return conv(x, side, f"dw_{i}", weight, shift, stride, groups=len(scale))

    x, side = pointwise("x", INPUT_SIDE, "MobilenetV1", 0, 2)
    for i in range(1, 14):
        x, side = depthwise(x, side, i, 2 if i in (2, 4, 6, 12) else 1)
        x, side = pointwise(x, side, "MobilenetV1", i, 1)
        if i == 11:
            features = [x]
    features.append(x)
    for i in range(8):
        x, side = pointwise(x, side, "Prediction", i, 2 if i % 2 else 1)
        if i % 2:
            features.append(x)
    for kind, n in (("box", 4), ("cls", 3)):
        inits.append(numpy_helper.from_array(np.array([1, -1, n], np.int64), "shape_" + kind))
    heads: dict[str, list[str]] = {"box": [], "cls": []}
    for i, f in enumerate(features):
        for kind, layer in (("box", "BoxEncodingPredictor"), ("cls", "ClassPredictor")):
            p = f"Prediction/BoxPredictor_{i}/{layer}/"
            weight = w[p + "weights"].transpose(3, 2, 0, 1)
            y, _ = conv(f, 1, f"{kind}_{i}", weight, w[p + "biases"], 1, relu6=False)
            nodes.append(helper.make_node("Transpose", [y], [y + "_t"], perm=[0, 2, 3, 1]))
            nodes.append(helper.make_node("Reshape", [y + "_t", "shape_" + kind], [y + "_f"]))
            heads[kind].append(y + "_f")
    nodes.append(helper.make_node("Concat", heads["box"], ["box"], axis=1))
    nodes.append(helper.make_node("Concat", heads["cls"], ["cls"], axis=1))
    graph = helper.make_graph(
        nodes, "ssd_mobilenetv1_faces",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, INPUT_SIDE, INPUT_SIDE])],
        [helper.make_tensor_value_info("box", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("cls", TensorProto.FLOAT, None)],
        inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString(), w["Output/extra_dim"][0], sha


class SsdFaces:
    """SSD MobileNetV1 faces (see the module docstring) from ``threshold``, on ``threads``
    CPU threads. :meth:`detect` gives ``(boxes, scores)`` in image pixels."""

    name = "ssd_mobilenetv1"

    def __init__(self, *, threshold: float = DEFAULT_SSD_THRESHOLD, threads: int = 1) -> None:
        self.threshold = float(threshold)
        self.threads = int(threads)
        self._session: Any = None
        self._anchors: np.ndarray | None = None
        self._sha256: str | None = None

    def _open(self) -> Any:
        if self._session is None:
            model, self._anchors, self._sha256 = _onnx_model()
            self._session = cpu_session(model, self.threads)
        return self._session

    def model_sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = _onnx_model()[2]
        return self._sha256

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "package": installed_package(),
            "model_sha256": self.model_sha256(),
            "threshold": self.threshold,
        }

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Face boxes (N, 4: x0, y0, x1, y1, clipped to the image) and scores (N,) in an RGB
        uint8 image, best first, overlapping boxes (IoU over 0.5) merged to the best. An
        image larger than :data:`WINDOW` px either way is read in windows of that side, so a
        face keeps 0.73 of its size or more at the network's 512 px input (read whole, a 1280
        px photo would shrink its faces 2.5x, and the network loses faces behind a hand under
        about 45 px there); a face smaller than :data:`OVERLAP` lies whole in one window."""
        h, w = image.shape[:2]
        step = WINDOW - OVERLAP
        parts = []
        for y in _starts(h, WINDOW, step):
            for x in _starts(w, WINDOW, step):
                boxes, scores = self._read(image[y : y + WINDOW, x : x + WINDOW])
                parts.append((boxes + [x, y, x, y], scores))
        boxes, scores = (np.concatenate(a) for a in zip(*parts, strict=True))
        if not len(scores):
            return np.zeros((0, 4)), np.zeros(0)
        order = _nms(boxes, scores, _NMS_IOU)
        return boxes[order], scores[order]

    def _read(self, part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The boxes from the threshold in one reading of ``part`` (padded to a square at the
        bottom and right, resized to the input), in its pixels."""
        session = self._open()
        h, w = part.shape[:2]
        side = max(h, w)
        square = np.zeros((side, side, 3), np.uint8)
        square[:h, :w] = part
        interp = cv2.INTER_AREA if side > INPUT_SIDE else cv2.INTER_LINEAR
        net_in = cv2.resize(square, (INPUT_SIDE, INPUT_SIDE), interpolation=interp)
        x = (net_in.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        enc, logits = session.run(None, {"x": np.ascontiguousarray(x)})
        scores = 1.0 / (1.0 + np.exp(-logits[0, :, 1].astype(np.float64)))
        keep = scores >= self.threshold
        if not keep.any():
            return np.zeros((0, 4)), np.zeros(0)
        assert self._anchors is not None
        a, e = self._anchors[keep].astype(np.float64), enc[0, keep].astype(np.float64)
        size = a[:, 2:] - a[:, :2]
        centre = a[:, :2] + size / 2 + e[:, :2] / 10 * size
        half = np.exp(e[:, 2:] / 5) * size / 2
        (y0, x0), (y1, x1) = ((centre - half) * side).T, ((centre + half) * side).T
        boxes = np.stack([np.clip(x0, 0, w), np.clip(y0, 0, h),
                          np.clip(x1, 0, w), np.clip(y1, 0, h)], axis=1)  # fmt: skip
        return boxes, scores[keep]


def _starts(length: int, window: int, step: int) -> list[int]:
    """Offsets of windows of ``window`` px every ``step`` px over ``length`` px, the last one
    flush with the end."""
    if length <= window:
        return [0]
    out = list(range(0, length - window, step))
    return [*out, length - window]
