"""A learned plate detector: a small fully-convolutional net that marks plate pixels.

The text-row detector (:mod:`.detect`) finds a plate through its characters; when motion blur
or defocus smears them into a band it sees nothing. This net looks at the whole plate (its
shape, its ground, the streaks of its text) instead. It runs on the image at half resolution
(RGB) and predicts, for every 8x8-pixel cell of the full image, the probability that the cell
lies on a plate. The map is thresholded, and each connected region becomes a plate through
its minimum-area rectangle. :class:`UnionDetector` adds its plates to the text-row detector's
where that one found nothing.

Trained here on synthetic scenes only (``scripts/train_plate_net.py``, seeded; see
docs/anonymizer.md, "Licence plates", and docs/MODEL_CARD.md). The weights ship in
``plates/weights/`` and their sha256 is part of :meth:`LearnedPlateDetector.describe`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from veilchain.anonymizer.plates.detect import PlateDetection, PlateFinder
from veilchain.anonymizer.plates.memo import ZoomMemo
from veilchain.anonymizer.plates.rows import order_quad, overlap_small
from veilchain.anonymizer.plates.second_look import covered_fraction
from veilchain.errors import ModelLoadError

WEIGHTS = Path(__file__).resolve().parent / "weights" / "platenet.pt"
#: The net sees the image at this fraction of its size; its map has one cell per ``CELL`` px
#: of the full image.
INPUT_SCALE = 0.5
CELL = 8
#: A region is where the probability reaches ``DEFAULT_THRESHOLD``; it is a plate when its
#: highest probability reaches ``DEFAULT_PEAK`` (both chosen on the tuning sets, see the docs).
DEFAULT_THRESHOLD = 0.5
DEFAULT_PEAK = 0.85
#: Regions smaller than this (px, the rectangle's short side at full resolution) are dropped.
MIN_HEIGHT_PX = 8.0
#: A learned plate that overlaps a text-row plate this much (of the smaller box) is the same
#: plate: the text-row one, with its text row, is kept.
SAME_PLATE = 0.3


def build_net(width: int = 16):
    """The network (torch imported here: the stage imports without it until it is used).
    Input (N, 3, H, W) RGB in [0, 1] at half resolution; output (N, 1, H/4, W/4) logits."""
    from torch import nn

    def conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    class PlateNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = width
            self.down = nn.Sequential(conv(3, 12, 2), conv(12, w, 2), conv(w, w))  # 1/4
            self.deep = nn.Sequential(
                conv(w, 2 * w, 2), conv(2 * w, 2 * w, dilation=2), conv(2 * w, 2 * w, dilation=4)
            )  # 1/8 of the input
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            self.head = nn.Sequential(
                nn.Conv2d(3 * w, w, 1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
                conv(w, w),
                nn.Conv2d(w, 1, 1),
            )

        def forward(self, x):
            import torch

            a = self.down(x)
            b = self.up(self.deep(a))
            return self.head(torch.cat([a, b[..., : a.shape[2], : a.shape[3]]], 1))

    return PlateNet()


def load_net(path: Path = WEIGHTS):
    """The network with the weights in ``path`` (eval mode) and their sha256; a missing or
    damaged file raises :class:`~veilchain.errors.ModelLoadError` in one line."""
    import torch

    from veilchain.anonymizer.ciagan import file_sha256

    if not path.is_file():
        raise ModelLoadError(
            f"the plate net's weights are missing ({path}); reinstall veilchain or run "
            "scripts/train_plate_net.py"
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        net = build_net(int(blob["width"]))
        net.load_state_dict(blob["state_dict"])
    except Exception as exc:  # noqa: BLE001 - any damage means the same to a user
        raise ModelLoadError(
            f"the plate net's weights in {path} cannot be loaded ({type(exc).__name__}); "
            "reinstall veilchain or run scripts/train_plate_net.py"
        ) from exc
    return net.eval(), file_sha256(path)


def prepare(image: np.ndarray) -> np.ndarray:
    """An RGB uint8 image as the net's input: (1, 3, h, w) float32 at ``INPUT_SCALE``, h and
    w rounded up to a multiple of 16 (edge-padded)."""
    small = cv2.resize(image, None, fx=INPUT_SCALE, fy=INPUT_SCALE, interpolation=cv2.INTER_AREA)
    h, w = small.shape[:2]
    ph, pw = -h % 16, -w % 16
    if ph or pw:
        small = cv2.copyMakeBorder(small, 0, ph, 0, pw, cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(small.transpose(2, 0, 1)[None], np.float32) / 255.0


class LearnedPlateDetector:
    """Plates from the net's probability map (see the module docstring)."""

    name = "platenet"

    def __init__(
        self,
        weights: Path = WEIGHTS,
        threshold: float = DEFAULT_THRESHOLD,
        peak: float = DEFAULT_PEAK,
        threads: int = 1,
    ) -> None:
        import torch

        from veilchain.anonymizer.onnx_runtime import onnx_session

        net, self.sha256 = load_net(weights)
        self.threshold = float(threshold)
        self.peak = float(peak)
        example = (torch.zeros((1, 3, 64, 64)),)
        self._session = onnx_session(
            net,
            example,
            what="the plate net",
            threads=threads,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {2: "h", 3: "w"}, "logits": {2: "h4", 3: "w4"}},
        )

    def describe(self) -> dict:
        return {
            "name": self.name,
            "weights_sha256": self.sha256,
            "threshold": self.threshold,
            "peak": self.peak,
            "input_scale": INPUT_SCALE,
        }

    def probability(self, image: np.ndarray) -> np.ndarray:
        """Per cell of ``CELL`` px, the probability of plate, (ceil(H/8), ceil(W/8))."""
        logits = self._session.run(None, {"image": prepare(image)})[0][0, 0]
        h, w = -(-image.shape[0] // CELL), -(-image.shape[1] // CELL)
        return 1.0 / (1.0 + np.exp(-logits[:h, :w]))

    def detect(
        self, image: np.ndarray, skip: np.ndarray | None = None, memo: ZoomMemo | None = None
    ) -> list[PlateDetection]:
        """The plates in ``image`` (RGB). ``skip`` and ``memo`` are accepted for the text-row
        detector's interface; regions mostly inside ``skip`` are dropped."""
        return plates_from_map(self.probability(image), self.threshold, self.peak, image, skip)


def plates_from_map(
    prob: np.ndarray,
    threshold: float,
    peak: float,
    image: np.ndarray,
    skip: np.ndarray | None = None,
) -> list[PlateDetection]:
    """Plates from a probability map (one cell per ``CELL`` px): the map upsampled 4x
    (bilinear), thresholded; each connected region whose highest value reaches ``peak``
    gives its minimum-area rectangle at full resolution."""
    H, W = image.shape[:2]
    up = cv2.resize(prob.astype(np.float32), None, fx=4, fy=4, interpolation=cv2.INTER_LINEAR)
    binary = (up >= threshold).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    found = []
    f = CELL / 4  # px of the full image per pixel of ``up``
    for i in range(1, n):
        x, y, w, h, _ = stats[i]
        region = labels[y : y + h, x : x + w] == i
        score = float(up[y : y + h, x : x + w][region].max())
        if score < peak:
            continue
        ys, xs = np.nonzero(region)
        pts = np.stack([xs + x, ys + y], 1).astype(np.float32) * f + f / 2
        (cx, cy), (rw, rh), ang = cv2.minAreaRect(pts)
        rect = ((cx, cy), (rw + f, rh + f), ang)
        if min(rect[1]) < MIN_HEIGHT_PX:
            continue
        quad = order_quad(cv2.boxPoints(rect))
        quad[:, 0] = np.clip(quad[:, 0], 0, W - 1)
        quad[:, 1] = np.clip(quad[:, 1], 0, H - 1)
        if skip is not None and covered_fraction(quad, skip) >= 0.5:
            continue
        found.append(_detection(quad, gray, score))
    return found


def _detection(quad: np.ndarray, gray: np.ndarray, score: float) -> PlateDetection:
    """A learned plate: its quad is also its text row's; the characters' polarity from its
    pixels (the ground is most of a plate: ink darker than the median means dark text)."""
    height = float(np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1])) / 2
    width = float(np.linalg.norm(quad[1] - quad[0]) + np.linalg.norm(quad[2] - quad[3])) / 2
    inside = np.zeros(gray.shape, np.uint8)
    cv2.fillConvexPoly(inside, np.round(quad).astype(np.int32), 1)
    px = gray[inside > 0].astype(np.float32)
    dark = bool(len(px) == 0 or px.mean() <= np.median(px))
    n_chars = int(np.clip(round(width / max(0.55 * height, 1.0)), 4, 9))
    return PlateDetection(
        quad.astype(np.float32),
        quad.astype(np.float32).copy(),
        0.6 * height,
        n_chars,
        dark,
        score=score,
        source="platenet",
    )


class UnionDetector:
    """The text-row detector's plates, plus the net's where no text-row plate overlaps them
    (of the smaller box, ``SAME_PLATE`` or more)."""

    def __init__(self, rows: PlateFinder, learned: LearnedPlateDetector) -> None:
        self.rows = rows
        self.learned = learned

    def describe(self) -> dict:
        return {
            "name": "union",
            "text_rows": self.rows.describe(),
            "learned": self.learned.describe(),
        }

    def detect(
        self, image: np.ndarray, skip: np.ndarray | None = None, memo: ZoomMemo | None = None
    ) -> list[PlateDetection]:
        found = self.rows.detect(image, skip=skip, memo=memo)
        return found + at_new_places(self.learned.detect(image, skip=skip), found)


def at_new_places(extra: list[PlateDetection], found: list[PlateDetection]) -> list[PlateDetection]:
    """The plates of ``extra`` that overlap none of ``found`` by ``SAME_PLATE`` or more (of the
    smaller box): a second detector's or a second read's plates that are new."""
    return [d for d in extra if all(overlap_small(d.box, f.box) < SAME_PLATE for f in found)]
