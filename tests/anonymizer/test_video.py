"""Video: frame count, size and tracks survive the round trip; one identity per person."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from veilchain.anonymizer.files import anonymize_paths
from veilchain.anonymizer.video import FaceTracker, anonymize_video
from veilchain.anonymizer.wiring import build_anonymizer
from veilchain.errors import ImageDecodeError, InputError


def _write_video(path, frames, fourcc):
    h, w = frames[0].shape[:2]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (w, h))
    assert wr.isOpened()
    for f in frames:
        wr.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    wr.release()


def _count(path):
    cap = cv2.VideoCapture(str(path))
    n, size = 0, None
    while True:
        ok, f = cap.read()
        if not ok:
            break
        n, size = n + 1, f.shape[:2]
    cap.release()
    return n, size


@pytest.fixture(scope="module")
def frames():
    from tests.anonymizer.conftest import SAMPLES
    from veilchain.anonymizer.image_io import load_image

    img = cv2.resize(load_image(SAMPLES / "obama.jpg"), (256, 320))
    canvas = np.full((320, 352, 3), 60, np.uint8)
    out = []
    for i in range(5):  # the face slides right 8 px per frame
        f = canvas.copy()
        f[:, 8 * i : 8 * i + 256] = img
        out.append(f)
    return out


@pytest.mark.parametrize("suffix,fourcc", [(".avi", "MJPG"), (".mp4", "mp4v")])
def test_round_trip_keeps_frames_and_size(tmp_path, frames, suffix, fourcc, detector, embedder):
    src = tmp_path / f"clip{suffix}"
    _write_video(src, frames, fourcc)
    anon = build_anonymizer("pixelate", detector=detector, embedder=embedder)
    res = anonymize_video(src, tmp_path / f"out{suffix}", anon)
    assert res.frames == 5 and res.size == (352, 320)
    assert _count(tmp_path / f"out{suffix}") == (5, (320, 352))
    assert res.tracks == 1 and res.n_faces == 5 and res.n_failed == 0
    assert {tuple(r["tracks"]) for r in res.frame_reports} == {(0,)}
    # one random stream (one target identity) for the whole track, keyed by the secret
    assert {r["faces"][0]["kept_attempt"] for r in res.frame_reports} == {1}
    assert anon.track_key(0) == anon.track_key(0) != anon.track_key(1)
    other = build_anonymizer("pixelate", detector=detector, embedder=None, identity_check=False)
    assert other.track_key(0) != anon.track_key(0)  # fresh secret, unlinkable streams


def test_anonymize_paths_handles_video(tmp_path, frames, detector, embedder):
    _write_video(tmp_path / "c.avi", frames[:2], "MJPG")
    anon = build_anonymizer("mask", detector=detector, embedder=None, identity_check=False)
    (res,) = anonymize_paths([tmp_path / "c.avi"], tmp_path / "out", anonymizer=anon)
    assert res.kind == "video" and res.output.endswith("c.avi") and res.n_faces == 2
    assert _count(tmp_path / "out" / "c.avi")[0] == 2


def test_tracker_keeps_ids_and_opens_new_ones():
    t = FaceTracker()
    assert t.update([(0, 0, 10, 10), (50, 50, 60, 60)]) == [0, 1]
    assert t.update([(52, 51, 62, 61), (1, 0, 11, 10)]) == [1, 0]
    assert t.update([(200, 200, 210, 210)]) == [2]


def test_bad_video(tmp_path, detector):
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"not a video at all")
    anon = build_anonymizer("blur", detector=detector, identity_check=False)
    with pytest.raises(ImageDecodeError, match="x.mp4"):
        anonymize_video(bad, tmp_path / "o.mp4", anon)
    with pytest.raises(InputError):
        anonymize_video(bad, tmp_path / "o.mkv", anon)


def test_a_track_keeps_the_attempt_it_kept(tmp_path, frames, detector, embedder, sample):
    """Frame 1 needs three attempts (the first two still look like the source); later frames
    start from attempt 3, so the person keeps that attempt's target identity."""
    from tests.anonymizer.test_pipeline import _Script
    from veilchain.anonymizer.alignment import align_face
    from veilchain.anonymizer.pipeline import Anonymizer

    donor_img = sample("biden.jpg")
    donor = align_face(donor_img, detector.detect(donor_img)[0].landmarks)[0]
    src = tmp_path / "clip.avi"
    _write_video(src, frames[:3], "MJPG")
    gen = _Script(donor, ["source", "source", "donor"])  # by call: 2 misses, then donors
    anon = Anonymizer(detector, gen, embedder=embedder, landmark_tolerance=1.0)
    res = anonymize_video(src, tmp_path / "out.avi", anon)
    faces = [r["faces"][0] for r in res.frame_reports]
    assert [f["kept_attempt"] for f in faces] == [3, 3, 3]
    assert [f["attempts"] for f in faces] == [3, 1, 1] and all(f["passed"] for f in faces)
