"""MTCNN's second opinion on CenterFace's weak candidates (``anonymizer/mtcnn.py``)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from veilchain.anonymizer.detectors import CenterFaceDetector, DetectedFace, build_detector
from veilchain.anonymizer.image_io import load_image
from veilchain.anonymizer.mtcnn import SMALL_ONET_THRESHOLD, MtcnnVerifier, _around
from veilchain.anonymizer.wiring import build_anonymizer

RECALL = Path(__file__).resolve().parents[2] / "bench" / "data" / "recall"
SECRET = b"test-mtcnn"


def _small_face_photo(height: int = 20) -> tuple[np.ndarray, tuple[float, ...]]:
    """Biden's face from the recall set's base photos (box annotated by eye), shrunk to
    ``height`` px with its head around it and set into another base photo, and its box."""
    boxes = json.loads((RECALL / "annotations.json").read_text())["images"]
    x0, y0, x1, y1 = boxes["biden.jpg"]["faces"][0]["box"]
    photo = load_image(RECALL / "base" / "biden.jpg")
    w, h = x1 - x0, y1 - y0
    cx0, cy0 = int(max(0, x0 - 0.6 * w)), int(max(0, y0 - 0.6 * h))
    head = photo[cy0 : int(y1 + 0.6 * h), cx0 : int(x1 + 0.6 * w)]
    s = height / h
    head = cv2.resize(head, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    bg = load_image(RECALL / "base" / "bg" / "home.jpg")
    canvas = cv2.resize(bg, (640, 480), interpolation=cv2.INTER_AREA)
    px, py = 300, 200
    canvas[py : py + head.shape[0], px : px + head.shape[1]] = head
    fx0, fy0 = px + (x0 - cx0) * s, py + (y0 - cy0) * s
    return canvas, (fx0, fy0, fx0 + w * s, fy0 + h * s)


def _centre_in(box, faces) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return any(f.box[0] <= cx <= f.box[2] and f.box[1] <= cy <= f.box[3] for f in faces)


def _changed(out: np.ndarray, original: np.ndarray, box) -> float:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    diff = np.abs(out[y0:y1, x0:x1].astype(int) - original[y0:y1, x0:x1].astype(int))
    return float((diff.max(axis=-1) >= 3).mean())


def test_mtcnn_finds_a_small_face_centerface_misses():
    img, box = _small_face_photo()
    assert not _centre_in(box, CenterFaceDetector().detect_faces(img, threshold=0.15))
    faces = build_detector().detect_faces(img, threshold=0.15)
    found = [f for f in faces if _centre_in(box, [f])]
    assert len(found) == 1 and found[0].score < 0.15  # CenterFace's own (weak) score
    kp = found[0].keypoints
    assert kp is not None and kp.shape == (5, 2)
    assert kp[0, 0] < kp[1, 0] and kp[2, 1] < kp[3, 1]  # eyes left to right, nose above mouth
    assert _centre_in(tuple(kp[2]) * 2, [found[0]])  # the nose inside the box


@pytest.mark.parametrize("method", ["blur", "ciagan"])
@pytest.mark.parametrize("second_look", [True, False])
def test_a_small_face_only_mtcnn_finds_is_anonymized(method, second_look):
    """Found in the detection pass (so with or without the second look) and covered over
    the whole head like any weak candidate."""
    img, box = _small_face_photo()
    anon = build_anonymizer(method, identity_check=False, second_look=second_look, secret=SECRET)
    r = anon.anonymize(img)
    assert _changed(r.image, img, box) >= 0.7, r.report
    (face,) = [f for f in r.faces if _centre_in(box, [f])]
    assert face.fallback == "low_score" and face.found_by == "detector"


def test_the_verifier_turns_down_what_is_not_a_face():
    bg = load_image(RECALL / "base" / "bg" / "brick.jpg")
    h, w = bg.shape[:2]
    grid = [(x, y, s) for s in (16, 32, 64) for x in range(0, w - s, w // 5)
            for y in range(0, h - s, h // 4)]  # fmt: skip
    boxes = np.array([[x, y, x + s, y + s] for x, y, s in grid])
    assert MtcnnVerifier().verify(bg, boxes, np.full(len(boxes), 0.05)) == []


def test_the_report_names_the_verifier_and_its_weights():
    spec = importlib.util.find_spec("facenet_pytorch")
    assert spec is not None and spec.submodule_search_locations
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    weights = b"".join((data / f"{n}.pt").read_bytes() for n in ("pnet", "rnet", "onet"))
    digest = hashlib.sha256(weights)
    img, _ = _small_face_photo()
    report = build_anonymizer("blur", identity_check=False, secret=SECRET).anonymize(img).report
    assert report["detector"]["name"] == "centerface"
    assert report["detector"]["verifier"] == {
        "name": "mtcnn",
        "stages": ["pnet", "rnet", "onet"],
        "model_sha256": digest.hexdigest(),
        "thresholds": [0.7, 0.7],
        "candidates_from": 0.02,
    }
    assert build_detector(verifier=False).describe()["verifier"] is None


def test_the_box_search_looks_around_each_candidate_and_at_it():
    """27 squares per candidate, candidate-major: the candidate's own box among them, centres
    within 0.15 of its side, sizes 0.8-1.25 times it."""
    boxes = np.array([[10.0, 20.0, 50.0, 60.0], [100.0, 100.0, 120.0, 120.0]])
    near = _around(boxes).reshape(2, -1, 4)
    assert near.shape == (2, 27, 4)
    for box, views in zip(boxes, near, strict=True):
        side = box[2] - box[0]
        assert any(np.allclose(v, box) for v in views)
        assert np.allclose(views[:, 2] - views[:, 0], views[:, 3] - views[:, 1])
        sizes = (views[:, 2] - views[:, 0]) / side
        assert sizes.min() == pytest.approx(0.8) and sizes.max() == pytest.approx(1.25)
        shift = np.abs((views[:, :2] + views[:, 2:]) / 2 - (box[:2] + box[2:]) / 2) / side
        assert shift.max() == pytest.approx(0.15)


@pytest.mark.parametrize("height", [16, 24, 40])
def test_pnet_proposes_a_small_face(height):
    """P-Net's pyramid (faces 16-48 px) proposes a square box over the face, which O-Net then
    takes from the small-face threshold."""
    img, box = _small_face_photo(height)
    verifier = MtcnnVerifier()
    boxes, scores = verifier.propose_small(img)
    assert len(boxes) == len(scores) > 0
    assert np.allclose(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    assert _centre_in(box, [DetectedFace(tuple(b), 0.0) for b in boxes])
    taken = verifier.verify(img, boxes, scores, onet_threshold=SMALL_ONET_THRESHOLD)
    assert _centre_in(box, taken)


def test_pnet_proposals_on_a_wall_are_turned_down():
    """A people-free photo (brick): whatever P-Net proposes there, O-Net takes nothing from
    the small-face threshold, and a flat image gets no proposal."""
    bg = load_image(RECALL / "base" / "bg" / "brick.jpg")
    verifier = MtcnnVerifier()
    boxes, scores = verifier.propose_small(bg)
    assert verifier.verify(bg, boxes, scores, onet_threshold=SMALL_ONET_THRESHOLD) == []
    flat = np.full((240, 320, 3), 128, np.uint8)
    assert len(verifier.propose_small(flat)[0]) == 0
