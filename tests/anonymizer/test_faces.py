"""faces: detection, landmarks, alignment round trip, masks, low light, embeddings (real dlib)."""

from __future__ import annotations

import numpy as np
import pytest

from veilchain.anonymizer.alignment import (
    CANONICAL_TEMPLATE_128,
    align_face,
    canonical_template,
    face_mask,
    inter_ocular_distance,
    transform_points,
    warp_back,
)
from veilchain.anonymizer.embedding import FaceEmbedder, face_distance
from veilchain.anonymizer.faces import (
    FaceDetection,
    enhance_low_light,
    is_low_light,
    landmarks_for_box,
    match_lighting,
    mmod_face_boxes,
)
from veilchain.errors import FaceDetectionError


def test_template_is_symmetric_and_inside_the_crop():
    t = CANONICAL_TEMPLATE_128
    assert t.shape == (68, 2) and t.dtype == np.float32
    assert (t > 0).all() and (t < 128).all()
    assert abs(t[36:42, 1].mean() - t[42:48, 1].mean()) < 1e-3  # eyes level
    assert abs(t[:, 0].mean() - 64) < 0.5
    assert np.allclose(canonical_template(256), t * 2)


def test_detect_one_face_with_landmarks(detector, sample):
    img = sample("obama.jpg")
    faces = detector.detect(img)
    assert len(faces) == 1
    f = faces[0]
    assert f.landmarks.shape == (68, 2) and f.landmarks.dtype == np.float32
    x0, y0, x1, y1 = f.box
    inside = (f.landmarks[:, 0] > x0 - 20) & (f.landmarks[:, 0] < x1 + 20)
    assert inside.all() and f.score > 0.5
    again = FaceDetection.from_dict(f.to_dict())
    assert again.box == f.box and np.allclose(again.landmarks, f.landmarks, atol=0.01)
    assert np.allclose(landmarks_for_box(img, f.box), f.landmarks)


def test_group_photo_and_many_faces(detector, sample):
    group = sample("group.jpg")
    assert len(detector.detect(group)) == 4
    big = np.concatenate([group] * 3, axis=0)  # 12 faces in one image
    assert len(detector.detect(big)) == 12


def test_no_face(detector):
    assert detector.detect(np.full((120, 160, 3), 90, np.uint8)) == []


def test_rejects_non_rgb(detector):
    with pytest.raises(FaceDetectionError):
        detector.detect(np.zeros((10, 10), np.uint8))


def test_large_image_is_downscaled_for_detection(detector, sample):
    import cv2

    img = sample("obama.jpg")
    big = cv2.resize(img, (img.shape[1] * 3, img.shape[0] * 3))  # 1536x1920 > 1280
    small_box = np.array(detector.detect(img)[0].box)
    big_box = np.array(detector.detect(big)[0].box)
    assert np.abs(big_box / 3 - small_box).max() < 12


def test_align_and_warp_back_round_trip(detector, sample):
    img = sample("obama.jpg")
    lm = detector.detect(img)[0].landmarks
    crop, m = align_face(img, lm)
    assert crop.shape == (128, 128, 3) and m.shape == (2, 3)
    crop_lm = transform_points(lm, m)
    err = np.linalg.norm(crop_lm[17:] - CANONICAL_TEMPLATE_128[17:], axis=1).mean()
    assert err < 4.0  # pixels in the 128 crop
    back = warp_back(crop, m, img.shape)
    mask = face_mask(lm, img.shape)
    diff = np.abs(back.astype(int) - img.astype(int))[mask].mean()
    assert diff < 12  # resampling loss only (crop is smaller than the face)


def test_face_mask_dilation_grows(detector, sample):
    img = sample("obama.jpg")
    lm = detector.detect(img)[0].landmarks
    m0 = face_mask(lm, img.shape)
    m1 = face_mask(lm, img.shape, dilation=0.3)
    assert m0.sum() > 0.5 * inter_ocular_distance(lm) ** 2
    assert m1.sum() > m0.sum() and (m1 | m0).sum() == m1.sum()
    off = face_mask(lm, (200, 200), offset=(150, 40))
    assert np.array_equal(off, m0[40:240, 150:350])


def test_low_light_detected_enhanced_and_face_found(detector, sample):
    img = sample("obama.jpg")
    dark = (img.astype(np.float32) * 0.12).astype(np.uint8)
    assert not is_low_light(img) and is_low_light(dark)
    enhanced = enhance_low_light(dark)
    assert enhanced.mean() > 2 * dark.mean()
    faces = detector.detect(dark)
    assert len(faces) == 1
    ref = detector.detect(img)[0]
    assert np.abs(np.array(faces[0].box) - np.array(ref.box)).max() < 25


def test_match_lighting_takes_the_originals_brightness():
    rng = np.random.default_rng(0)
    bright = rng.integers(150, 230, (64, 64, 3), dtype=np.uint8)
    dark = (bright * 0.2).astype(np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[8:56, 8:56] = True
    out = match_lighting(bright, dark, mask)
    assert abs(out[mask].mean() - dark[mask].mean()) < 3


def test_embeddings_same_face_close_other_far(detector, embedder, sample):
    o1, o2, b = sample("obama.jpg"), sample("obama2.jpg"), sample("biden.jpg")
    e = [embedder.embed(i, [detector.detect(i)[0].landmarks])[0] for i in (o1, o2, b)]
    d = face_distance(np.stack(e), np.stack(e))
    assert d[0, 1] < 0.6 < d[0, 2]
    batch = embedder.embed_batch([o1, b], [[detector.detect(o1)[0].landmarks], []])
    assert batch[0].shape == (1, 128) and batch[1].shape == (0, 128)
    assert np.allclose(batch[0][0], e[0], atol=1e-5)


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_embedder_backends_match_dlib(backend, detector, sample):
    """The PyTorch run of dlib's ResNet (dlib's weights, dlib's chip) and its onnxruntime
    export give dlib's embeddings."""
    ours, dlib_emb = FaceEmbedder(backend=backend), FaceEmbedder(backend="dlib")
    assert FaceEmbedder().backend == "onnx" and FaceEmbedder(num_jitters=1).backend == "dlib"
    group, obama = sample("group.jpg"), sample("obama.jpg")
    lms_g = [d.landmarks for d in detector.detect(group)]
    lms_o = [d.landmarks for d in detector.detect(obama)]
    a, b = ours.embed(group, lms_g), dlib_emb.embed(group, lms_g)
    assert a.shape == (4, 128) and a.dtype == np.float32
    assert np.abs(a - b).max() < 1e-4  # measured 3e-7 (torch)
    batch_t = ours.embed_batch([obama, group, obama], [lms_o, lms_g, []])
    batch_d = dlib_emb.embed_batch([obama, group, obama], [lms_o, lms_g, []])
    assert [x.shape for x in batch_t] == [(1, 128), (4, 128), (0, 128)]
    for x, y in zip(batch_t, batch_d, strict=True):
        assert np.abs(x - y).max(initial=0.0) < 1e-4
    with pytest.raises(ValueError, match="backend"):
        FaceEmbedder(backend="tensorflow")


def _large_and_small_face(sample) -> np.ndarray:
    """640x480: a ~75 px face and, beside it, a ~50 px one (HOG level 0 finds only the first)."""
    import cv2

    a, b = sample("obama.jpg"), sample("biden.jpg")
    canvas = np.full((480, 640, 3), 90, np.uint8)
    half = cv2.resize(a, (a.shape[1] // 2, a.shape[0] // 2))[:480, :320]
    canvas[: half.shape[0], : half.shape[1]] = half
    small = cv2.resize(b, (b.shape[1] // 2, b.shape[0] // 2))
    canvas[100 : 100 + small.shape[0], 450 : 450 + small.shape[1]] = small
    return canvas


def test_auto_upsampling_misses_a_small_face_beside_a_large_one(sample):
    """The documented trade-off of ``upsample=None``; ``upsample=1`` finds both faces."""
    from veilchain.anonymizer.faces import HogDetector
    from veilchain.errors import InputError

    img = _large_and_small_face(sample)
    assert len(HogDetector().detect_boxes(img)) == 1
    assert len(HogDetector(upsample=1).detect_boxes(img)) == 2
    with pytest.raises(InputError, match="upsample must be 0-3"):
        HogDetector(upsample=-1)


def test_mmod_finds_every_sample_face_and_no_masked_one(detector, sample):
    """dlib's CNN (evaluation only) finds each of the nine sample faces in the region around
    the pipeline's CenterFace box, in image coordinates, and none once the face is masked."""
    from veilchain.anonymizer.baselines import SolidMask
    from veilchain.anonymizer.detectors import CenterFaceDetector
    from veilchain.anonymizer.metrics import box_iou, detection_retention
    from veilchain.anonymizer.pipeline import Anonymizer

    cnn, found = CenterFaceDetector(), 0
    for name in ("biden.jpg", "obama.jpg", "obama2.jpg", "obama3.jpg", "group.jpg"):
        img = sample(name)
        for face in cnn.detect_faces(img):
            boxes = mmod_face_boxes(img, around=face.box)
            assert max(box_iou(b, face.box) for b in boxes) > 0.5, name
            found += 1
    assert found == 8
    img = sample("obama.jpg")
    (face,) = cnn.detect_faces(img)
    before = mmod_face_boxes(img, around=face.box)
    assert detection_retention(before, mmod_face_boxes(img, around=face.box)) == 1.0
    masked = Anonymizer(detector, SolidMask()).anonymize(img).image
    assert detection_retention(before, mmod_face_boxes(masked, around=face.box)) == 0.0
