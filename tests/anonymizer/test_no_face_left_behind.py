"""No detected face leaves the pipeline unchanged, whatever its pose; the second look covers
what detection missed; the published report cannot be linked to a candidate photo; odd inputs
give a correct output or a one-line error."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage
from PIL import Image

from veilchain.anonymizer.detectors import CenterFaceDetector
from veilchain.anonymizer.image_io import load_image
from veilchain.anonymizer.methods import METHODS
from veilchain.anonymizer.pipeline import Anonymizer
from veilchain.anonymizer.wiring import build_anonymizer
from veilchain.errors import ImageDecodeError, UncoveredFaceError

SECRET = b"test installation secret"
#: The cameraman (scikit-image's camera.png) looks into his camera in profile: the face,
#: from ear to nose and hairline to chin, annotated by eye.
CAMERAMAN_FACE = (185, 100, 262, 200)


def _changed(out: np.ndarray, original: np.ndarray, box) -> float:
    """Fraction of the central 60 % x 60 % of ``box`` that differs by >= 3 grey levels."""
    x0, y0, x1, y1 = box
    cw, ch = 0.2 * (x1 - x0), 0.2 * (y1 - y0)
    core = (slice(int(y0 + ch), int(y1 - ch)), slice(int(x0 + cw), int(x1 - cw)))
    diff = np.abs(out[core].astype(int) - original[core].astype(int)).max(axis=-1)
    return float((diff >= 3).mean())


def _turned(image: np.ndarray, angle: float) -> np.ndarray:
    """The image turned by ``angle`` degrees on a canvas large enough to keep every pixel."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    nw = int(abs(h * m[0, 1]) + abs(w * m[0, 0])) + 1
    nh = int(abs(h * m[0, 0]) + abs(w * m[0, 1])) + 1
    m[:, 2] += (nw / 2 - w / 2, nh / 2 - h / 2)
    return cv2.warpAffine(image, m, (nw, nh), borderMode=cv2.BORDER_REFLECT)


@pytest.fixture(scope="module")
def cameraman() -> np.ndarray:
    return load_image(Path(skimage.__file__).parent / "data" / "camera.png")


@pytest.fixture(scope="module")
def anonymizers():
    cache: dict[str, Anonymizer] = {}

    def get(method: str) -> Anonymizer:
        if method not in cache:
            cache[method] = build_anonymizer(method, identity_check=False, secret=SECRET)
        return cache[method]

    return get


@pytest.mark.parametrize("method", METHODS)
def test_a_profile_is_anonymized_by_every_method(method, anonymizers, cameraman):
    """HOG does not find the cameraman at all; CenterFace does, his 68 landmarks cannot be
    trusted in profile, and the whole head is covered by the fallback region method."""
    from veilchain.anonymizer.faces import HogDetector

    assert HogDetector().detect_boxes(cameraman) == []
    r = anonymizers(method).anonymize(cameraman)
    assert _changed(r.image, cameraman, CAMERAMAN_FACE) >= 0.7, r.report
    face, *extra = r.faces  # DP-Pix's random cells can look face-like to the second look
    assert face.fallback == "profile" and face.passed is None
    assert all(f.found_by == "second_look" for f in extra)
    assert r.report["n_fallback"] == 1 + len(extra)
    assert "covered over the whole head" in r.report["warning"]


@pytest.mark.parametrize("method", ["ciagan", "blur"])
@pytest.mark.parametrize("angle", [-45, -30, 30, 45])
def test_rolled_faces_are_anonymized(method, angle, anonymizers, sample):
    """Faces rolled to 45 degrees: found (by detection or by the second look's turned
    copies) and changed."""
    img = _turned(sample("obama.jpg"), angle)
    upright = CenterFaceDetector().detect_faces(sample("obama.jpg"))[0]
    h, w = sample("obama.jpg").shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    m[:, 2] += ((img.shape[1] - w) / 2, (img.shape[0] - h) / 2)
    x0, y0, x1, y1 = upright.box
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) @ m[:, :2].T + m[:, 2]
    cx, cy = corners.mean(0)
    side = 0.5 * (x1 - x0)  # the face's middle, whatever the roll
    box = (cx - side, cy - side, cx + side, cy + side)
    r = anonymizers(method).anonymize(img)
    assert _changed(r.image, img, box) >= 0.7, r.report


def test_faces_at_the_image_edge_and_small_faces_are_anonymized(anonymizers, sample):
    img = sample("group.jpg")
    half = np.ascontiguousarray(img[:, 150:])  # the first face is cut in half by the border
    small = cv2.resize(img, (img.shape[1] // 4, img.shape[0] // 4), interpolation=cv2.INTER_AREA)
    for image in (half, small):
        boxes = [f.box for f in CenterFaceDetector().detect_faces(image)]
        assert len(boxes) == 4
        r = anonymizers("pixelate").anonymize(image)
        assert all(_changed(r.image, image, b) >= 0.7 for b in boxes), r.report


def test_the_second_look_covers_a_face_detection_missed(cameraman):
    """HOG as the detector misses the cameraman's profile (what every method used to publish
    untouched); the second look (CenterFace on the output) finds him, covers his head and
    says so; --strict refuses such an image."""
    from veilchain.anonymizer.faces import HogDetector

    hog, blur = HogDetector(), build_anonymizer("blur").method
    off = Anonymizer(hog, blur, second_look=False, secret=SECRET).anonymize(cameraman)
    assert off.faces == [] and np.array_equal(off.image, cameraman)
    r = Anonymizer(hog, blur, secret=SECRET).anonymize(cameraman)
    assert r.report["second_look"]["uncovered"] == 1
    (face,) = r.faces
    assert face.found_by == "second_look" and face.fallback == "second_look"
    assert _changed(r.image, cameraman, CAMERAMAN_FACE) >= 0.7
    with pytest.raises(UncoveredFaceError, match="second look found 1 face"):
        Anonymizer(hog, blur, strict=True, secret=SECRET).anonymize(cameraman)


def test_low_scoring_faces_are_covered_in_the_detection_pass(sample):
    """With the second look on, faces scoring between its threshold and the detector's are
    taken in the same full-resolution pass and covered over the whole head."""
    img = sample("obama.jpg")
    (truth,) = CenterFaceDetector().detect_faces(img)
    picky = CenterFaceDetector(threshold=0.99)
    r = Anonymizer(picky, build_anonymizer("blur").method, secret=SECRET).anonymize(img)
    (face,) = r.faces
    assert face.fallback == "low_score" and face.found_by == "detector"
    assert _changed(r.image, img, truth.box) >= 0.7


def test_the_report_records_the_detector(anonymizers, sample):
    det = anonymizers("blur").anonymize(sample("biden.jpg")).report["detector"]
    assert det["name"] == "centerface" and len(det["model_sha256"]) == 64
    assert det["threshold"] == 0.4 and det["second_look"] is True
    assert det["sweep_threshold"] == 0.15 and det["sweep_angles"] == [-40.0, 40.0]


# --- the linking attack ---------------------------------------------------------------------
def _old_key(image: np.ndarray) -> int:
    """How the report's face key was derived before: a hash of the original pixels."""
    h = hashlib.sha256()
    h.update(str(image.shape).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return int.from_bytes(h.digest()[:8], "big")


def _numbers(obj) -> list[float]:
    if isinstance(obj, dict):
        return [n for v in obj.values() for n in _numbers(v)]
    if isinstance(obj, list):
        return [n for v in obj for n in _numbers(v)]
    if isinstance(obj, int | float) and not isinstance(obj, bool):
        return [float(obj)]
    return []


def test_published_reports_cannot_be_linked_to_candidate_photos(samples_dir):
    """The attacker holds every candidate photo and the published reports (as in the
    manifest). Everything they can compute from a candidate with the public code (the old
    pixel-hash keys, each face's detector box and score, the image size) is looked for in
    the reports: nothing matches."""
    anon = build_anonymizer("ciagan", secret=SECRET)
    photos = {p.name: load_image(p) for p in sorted(samples_dir.glob("*.jpg"))}
    published = [anon.anonymize(img).report for img in photos.values()]
    for report in published:  # what the registration publishes has no private field
        json.dumps(report)
        for face in report["faces"]:
            assert not {"box", "score", "key"} & set(face)
        assert "size" not in report
    numbers = {round(n, 1) for rep in published for n in _numbers(rep)}
    detector = CenterFaceDetector()
    for img in photos.values():
        base = _old_key(img)
        fingerprints = [float(base + i) for i in range(8)]
        for face in detector.detect_faces(img):
            fingerprints += [round(v, 1) for v in face.box] + [round(face.score, 4)]
        fingerprints += [float(img.shape[1]), float(img.shape[0])]
        linked = [f for f in fingerprints if round(f, 1) in numbers and abs(f) > 2]
        assert linked == [], linked


def test_random_streams_need_the_secret(sample):
    """Without the installation's secret nobody can recompute a face's random stream: two
    secrets give different faces for one photo, seed and method."""
    img = sample("obama.jpg")
    a = build_anonymizer("dp", identity_check=False, secret=b"one").anonymize(img).image
    b = build_anonymizer("dp", identity_check=False, secret=b"two").anonymize(img).image
    again = build_anonymizer("dp", identity_check=False, secret=b"one").anonymize(img).image
    assert not np.array_equal(a, b) and np.array_equal(a, again)


# --- odd inputs --------------------------------------------------------------------------
def test_odd_images_give_an_output_or_a_one_line_error(tmp_path, anonymizers, sample):
    anon = anonymizers("blur")
    one = anon.anonymize(np.full((1, 1, 3), 128, np.uint8))
    assert one.faces == [] and one.image.shape == (1, 1, 3)

    panorama = np.tile(cv2.resize(sample("group.jpg"), (1100, 400)), (1, 46, 1))  # 50,600 px
    r = anon.anonymize(panorama)
    assert r.image.shape == panorama.shape and len(r.faces) >= 46  # detected downscaled

    x0, y0, x1, y1 = (int(v) for v in CenterFaceDetector().detect_faces(sample("obama.jpg"))[0].box)
    head = sample("obama.jpg")[max(0, y0 - 20) : y1 + 20, max(0, x0 - 20) : x1 + 20]
    face = cv2.resize(head, (64, 80), interpolation=cv2.INTER_AREA)
    crowd = np.tile(face, (10, 20, 1))  # 200 faces of 80 px
    boxes = [
        (64 * c + 8, 80 * r_ + 8, 64 * c + 56, 80 * r_ + 72) for r_ in range(10) for c in range(20)
    ]
    r = anon.anonymize(crowd)
    assert len(r.faces) >= 200 and min(_changed(r.image, crowd, b) for b in boxes) >= 0.7

    deep = (sample("biden.jpg").astype(np.uint16) * 257).astype(np.uint16)
    png16 = tmp_path / "deep.png"
    cv2.imwrite(str(png16), cv2.cvtColor(deep, cv2.COLOR_RGB2BGR))
    img16 = load_image(png16)
    assert img16.dtype == np.uint8 and anon.anonymize(img16).faces

    cmyk = tmp_path / "cmyk.jpg"
    Image.fromarray(sample("biden.jpg")).convert("CMYK").save(cmyk, "JPEG")
    assert anon.anonymize(load_image(cmyk)).faces

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    with pytest.raises(ImageDecodeError) as err:
        load_image(bad)
    assert "\n" not in str(err.value)
    buf = io.BytesIO()
    Image.new("RGB", (20_000, 20_000)).save(buf, "PNG")
    (tmp_path / "bomb.png").write_bytes(buf.getvalue())
    with pytest.raises(ImageDecodeError, match="pixels"):
        load_image(tmp_path / "bomb.png", max_pixels=10_000_000)
