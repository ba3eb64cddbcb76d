"""MTCNN's R-Net and O-Net as a second opinion on CenterFace's weak candidates, and its P-Net
as a proposer of small faces.

CenterFace scores many real faces below the pipeline's candidate threshold (0.15): faces
under about 30 px tall most of all, but also some blurred or occluded larger ones. At a lower
score its heatmap still marks them, among many places that are not faces. :class:`MtcnnVerifier`
looks at each of those weak candidates with the last two stages of MTCNN (Zhang et al., 2016),
whose R-Net (24 px crops) and O-Net (48 px crops) take a face from a non-face in about a
millisecond for a few dozen candidates: a full MTCNN pass (its P-Net over an image pyramid) cost
2x CenterFace here, and the candidates it would propose are CenterFace's already. What passes
is returned with O-Net's refined box and five keypoints (eyes, nose, mouth corners). O-Net
sees each candidate R-Net passes on R-Net's refined box and on its own; one it declines on
both is shown to it again on the boxes around its own (:data:`SEARCH_SHIFTS`), since on a face
smeared by motion blur CenterFace's box sits off the face. :meth:`MtcnnVerifier.propose_small`
runs P-Net over a short image pyramid for faces :data:`SMALL_FACE_PX` tall: some small faces
(a 24 px face of the recall set, most of its missed 16-24 px faces) light CenterFace's heatmap
nowhere near the candidate floor, and P-Net, trained on 12 px crops, still marks them.
:class:`~veilchain.anonymizer.detectors.CenterFaceDetector` runs it (its ``verifier``).

The weights are the state dicts that ship in the ``facenet-pytorch==2.6.0`` wheel
(``facenet_pytorch/data/{pnet,rnet,onet}.pt``, MIT licence). The package itself is never imported
(it imports torchvision, which does not work here): the networks below are written to match
those state dicts, and the wheel is found with :func:`importlib.util.find_spec`. Install it
with ``pip install --no-deps facenet-pytorch==2.6.0`` (its declared dependencies pin an older
torch and pull torchvision).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from veilchain.anonymizer.detectors import DetectedFace, _nms
from veilchain.errors import InputError, ModelLoadError

#: R-Net's and O-Net's score thresholds (the values MTCNN was published with).
DEFAULT_MTCNN_THRESHOLDS = (0.7, 0.7)
_NETS = ("pnet", "rnet", "onet")
#: P-Net proposes faces from about the first to the second of these heights (px) to R-Net and
#: O-Net, from this P-Net score. MTCNN was published with 0.6; on the recall set's images 0.9
#: cut the proposals 2.5-5x (R-Net's and O-Net's time with them on an 800 x 600 crowd: 94
#: against 445 ms, 249 against 1,223 proposals) and lost none of the small faces they found
#: that no other pass found.
SMALL_FACE_PX = (16, 48)
PNET_THRESHOLD = 0.9
#: O-Net's threshold for P-Net's proposals, which come with no CenterFace evidence. On the
#: recall set, at 0.7 (R-Net's and O-Net's own) they took 184 places where no face is, at
#: 0.95 21, keeping 11 of the 13 faces they found that the other passes missed (0.9: 12
#: faces, 63 places; docs/anonymizer.md, "Small faces").
SMALL_ONET_THRESHOLD = 0.95
#: The pyramid's step between scales (MTCNN's published factor).
_PYRAMID_FACTOR = 0.709


def mtcnn_weights_dir() -> Path:
    """The folder of the MTCNN state dicts inside the installed facenet-pytorch wheel."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the MTCNN weights ship in the facenet-pytorch wheel: "
            "pip install --no-deps facenet-pytorch==2.6.0"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    missing = [n for n in _NETS if not (folder / f"{n}.pt").is_file()]
    if missing:
        raise ModelLoadError(f"{folder} lacks {missing}; reinstall facenet-pytorch==2.6.0")
    return folder


@functools.lru_cache(maxsize=1)
def mtcnn_sha256() -> str:
    """sha256 of the three weight files used, read one after the other (P-, R-, O-Net)."""
    h = hashlib.sha256()
    folder = mtcnn_weights_dir()
    for n in _NETS:
        h.update((folder / f"{n}.pt").read_bytes())
    return h.hexdigest()


def _build_nets() -> tuple[Any, Any, Any]:
    """P-Net, R-Net and O-Net with the wheel's weights, in eval mode."""
    import torch
    from torch import nn

    def conv(cin: int, cout: int, k: int, pool: tuple[int, int] | None) -> list[nn.Module]:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k), nn.PReLU(cout)]
        if pool:
            layers.append(nn.MaxPool2d(pool[0], pool[1], ceil_mode=True))
        return layers

    class _Net(nn.Module):
        """A stack of conv + PReLU (+ max-pool) stages, then heads; the attribute names are
        those of the shipped state dicts."""

        def __init__(self, stages, dense: tuple[str, int, int] | None, heads) -> None:
            super().__init__()
            self._order: list[str] = []
            for n, (cin, cout, k, pool) in enumerate(stages, start=1):
                c, p, *mp = conv(cin, cout, k, pool)
                self._add(f"conv{n}", c)
                self._add(f"prelu{n}", p)
                if mp:
                    self._add(f"pool{n}", mp[0])
            self.dense = dense
            if dense:
                name, fin, fout = dense
                self._add(name, nn.Linear(fin, fout))
                self._add(name.replace("dense", "prelu"), nn.PReLU(fout))
            self.heads = [(name, n_out) for name, n_out, _ in heads]
            for name, n_out, fin in heads:
                layer = nn.Linear(fin, n_out) if dense else nn.Conv2d(fin, n_out, 1)
                setattr(self, name, layer)

        def _add(self, name: str, module: nn.Module) -> None:
            setattr(self, name, module)
            self._order.append(name)

        def forward(self, x):
            for name in self._order:
                if self.dense and name == self.dense[0]:
                    # the weights were converted from a column-major framework
                    x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
                x = getattr(self, name)(x)
            return [getattr(self, name)(x) for name, _ in self.heads]

    pnet = _Net(
        [(3, 10, 3, (2, 2)), (10, 16, 3, None), (16, 32, 3, None)],
        None,
        [("conv4_1", 2, 32), ("conv4_2", 4, 32)],
    )
    rnet = _Net(
        [(3, 28, 3, (3, 2)), (28, 48, 3, (3, 2)), (48, 64, 2, None)],
        ("dense4", 576, 128),
        [("dense5_1", 2, 128), ("dense5_2", 4, 128)],
    )
    onet = _Net(
        [(3, 32, 3, (3, 2)), (32, 64, 3, (3, 2)), (64, 64, 3, (2, 2)), (64, 128, 2, None)],
        ("dense5", 1152, 256),
        [("dense6_1", 2, 256), ("dense6_2", 4, 256), ("dense6_3", 10, 256)],
    )
    folder = mtcnn_weights_dir()
    for name, net in zip(_NETS, (pnet, rnet, onet), strict=True):
        state = torch.load(folder / f"{name}.pt", map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        net.eval()
    return pnet, rnet, onet


def _square(boxes: np.ndarray) -> np.ndarray:
    """Boxes (N, 4+) grown to squares around the same centres."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + (w - side) / 2
    out[:, 1] = boxes[:, 1] + (h - side) / 2
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


#: A candidate R-Net passes and O-Net declines on its own and R-Net's box is shown to O-Net
#: again in boxes around its own: its centre moved by these fractions of its side in x and y,
#: at these sizes (times its side). 27 crops of 48 px, for the few candidates R-Net passes.
SEARCH_SHIFTS = (-0.15, 0.0, 0.15)
SEARCH_SCALES = (0.8, 1.0, 1.25)
_N_AROUND = len(SEARCH_SHIFTS) ** 2 * len(SEARCH_SCALES)


def _around(boxes: np.ndarray) -> np.ndarray:
    """For each square box (N, 4), the :data:`_N_AROUND` squares of the box search, in order
    (N * _N_AROUND, 4)."""
    side = boxes[:, 2] - boxes[:, 0]
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    out = [
        np.stack([cx + dx * side, cy + dy * side, k * side], axis=1)
        for k in SEARCH_SCALES
        for dx in SEARCH_SHIFTS
        for dy in SEARCH_SHIFTS
    ]
    c = np.stack(out, axis=1).reshape(-1, 3)  # candidate-major
    half = c[:, 2] / 2
    return np.stack([c[:, 0] - half, c[:, 1] - half, c[:, 0] + half, c[:, 1] + half], axis=1)


def _refine(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply the networks' box regression (offsets in units of the box size)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return boxes[:, :4] + reg * np.stack([w, h, w, h], axis=1)


def _crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Each box's pixels (zero outside the image) resized to ``size`` x ``size``, normalised,
    as an (N, 3, size, size) float32 batch."""
    h, w = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for n, (x0, y0, x1, y1) in enumerate(np.round(boxes[:, :4]).astype(int)):
        bw, bh = max(x1 - x0, 1), max(y1 - y0, 1)
        patch = np.zeros((bh, bw, 3), np.uint8)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if sx1 > sx0 and sy1 > sy0:
            patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
        out[n] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return ((out - 127.5) / 128.0).transpose(0, 3, 1, 2)


class MtcnnVerifier:
    """R-Net then O-Net on candidate boxes, and P-Net's small-face proposals (see the module
    docstring); ``thresholds`` are R-Net's and O-Net's score thresholds. torch runs on the
    process's threads (the batch workers set one)."""

    name = "mtcnn"

    def __init__(self, *, thresholds: tuple[float, float] = DEFAULT_MTCNN_THRESHOLDS) -> None:
        if len(thresholds) != 2 or not all(0.0 < t < 1.0 for t in thresholds):
            raise InputError(f"MTCNN thresholds must be two scores in (0, 1), got {thresholds}")
        self.thresholds = (float(thresholds[0]), float(thresholds[1]))
        self._nets: tuple[Any, Any, Any] | None = None

    def model_sha256(self) -> str:
        return mtcnn_sha256()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "stages": list(_NETS),
            "model_sha256": self.model_sha256(),
            "thresholds": list(self.thresholds),
        }

    def _networks(self) -> tuple[Any, Any, Any]:
        if self._nets is None:
            self._nets = _build_nets()
        return self._nets

    def propose_small(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P-Net's face proposals (square boxes (N, 4) in ``image``'s pixels, and their P-Net
        scores) for faces about :data:`SMALL_FACE_PX` tall, over the pyramid from the scale
        that shows the smallest of them as P-Net's 12 px input up to the largest."""
        import torch

        pnet = self._networks()[0]
        h, w = image.shape[:2]
        lo, hi = SMALL_FACE_PX
        found = []
        scale = 12.0 / lo
        with torch.inference_mode():
            while 12.0 / scale <= hi and min(h, w) * scale >= 12:
                sw, sh = int(np.ceil(w * scale)), int(np.ceil(h * scale))
                part = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
                x = ((part.astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None]
                logits, reg = (t.numpy()[0] for t in pnet(torch.from_numpy(x)))
                p = 1.0 / (1.0 + np.exp(logits[0] - logits[1]))
                ys, xs = np.nonzero(p >= PNET_THRESHOLD)
                if len(ys):  # each output cell sees a 12 px window, stride 2
                    cells = np.stack([2 * xs + 1, 2 * ys + 1, 2 * xs + 12, 2 * ys + 12], 1)
                    boxes = np.floor(cells / scale)
                    score = p[ys, xs].astype(np.float64)
                    keep = _nms(boxes, score, 0.5)
                    found.append((boxes[keep], score[keep], reg[:, ys, xs].T[keep]))
                scale *= _PYRAMID_FACTOR
        if not found:
            return np.zeros((0, 4)), np.zeros(0)
        boxes, score, reg = (np.concatenate(a) for a in zip(*found, strict=True))
        keep = _nms(boxes, score, 0.7)
        return _square(_refine(boxes[keep], reg[keep])), score[keep]

    def verify(
        self,
        image: np.ndarray,
        boxes: np.ndarray,
        scores: np.ndarray,
        *,
        onet_threshold: float | None = None,
    ) -> list[DetectedFace]:
        """The candidates (boxes (N, 4) in ``image``'s pixels, their detector's ``scores``)
        that R-Net and O-Net take for faces (O-Net from ``onet_threshold`` if given), with
        O-Net's box and keypoints and the candidate's own score, best first."""
        import torch

        _, rnet, onet = self._networks()
        h, w = image.shape[:2]
        t_r, t_o = self.thresholds
        if onet_threshold is not None:
            t_o = float(onet_threshold)
        boxes = _square(np.asarray(boxes, np.float64).reshape(-1, 4))
        origin = np.arange(len(boxes))
        if not len(boxes):
            return []
        with torch.inference_mode():
            prob, reg = (t.numpy() for t in rnet(torch.from_numpy(_crops(image, boxes, 24))))
            p = _softmax1(prob)
            keep = np.flatnonzero(p >= t_r)
            if not len(keep):
                return []
            keep = keep[_nms(boxes[keep], p[keep], 0.7)]
            # O-Net sees R-Net's refined box and the candidate's own: R-Net's regression
            # drifts off faces smeared by motion blur, which O-Net then turns down
            own = boxes[keep]
            boxes = np.concatenate([_square(_refine(own, reg[keep])), own])
            origin = np.concatenate([origin[keep], origin[keep]])
            prob, reg, marks = (t.numpy() for t in onet(torch.from_numpy(_crops(image, boxes, 48))))
            p = _softmax1(prob)
            # a candidate O-Net declines on both gets the boxes around its own (see
            # SEARCH_SHIFTS): on a smeared face CenterFace's box sits off the face
            n = len(own)
            declined = np.flatnonzero(np.maximum(p[:n], p[n:]) < t_o)
            if len(declined):
                near = _around(own[declined])
                nprob, nreg, nmarks = (
                    t.numpy() for t in onet(torch.from_numpy(_crops(image, near, 48)))
                )
                boxes, prob, reg, marks = (
                    np.concatenate(a)
                    for a in ((boxes, near), (prob, nprob), (reg, nreg), (marks, nmarks))
                )
                origin = np.concatenate([origin, np.repeat(origin[n + declined], _N_AROUND)])
                p = np.concatenate([p, _softmax1(nprob)])
        best: dict[int, int] = {}  # per candidate, the view O-Net likes best
        for i in np.argsort(-p, kind="stable"):
            best.setdefault(int(origin[i]), int(i))
        better = np.array(sorted(best.values()))
        boxes, prob, reg, marks, origin, p = (
            a[better] for a in (boxes, prob, reg, marks, origin, p)
        )
        keep = np.flatnonzero(p >= t_o)
        boxes, reg, marks, origin, p = boxes[keep], reg[keep], marks[keep], origin[keep], p[keep]
        side = boxes[:, 2:3] - boxes[:, 0:1]
        kp = np.stack([boxes[:, 0:1] + marks[:, :5] * side, boxes[:, 1:2] + marks[:, 5:] * side], 2)
        boxes = _refine(boxes, reg)
        given = np.asarray(scores, np.float64)[origin]
        out = []
        for i in _nms(boxes, p, 0.5):
            x0, y0, x1, y1 = boxes[i]
            b = (max(x0, 0.0), max(y0, 0.0), min(x1, w - 1.0), min(y1, h - 1.0))
            if b[2] - b[0] >= 2 and b[3] - b[1] >= 2:
                out.append(DetectedFace(b, float(given[i]), kp[i].astype(np.float32)))
        return sorted(out, key=lambda f: -f.score)


def _softmax1(logits: np.ndarray) -> np.ndarray:
    """The face class's probability from (N, 2) logits."""
    return 1.0 / (1.0 + np.exp(logits[:, 0] - logits[:, 1]))
