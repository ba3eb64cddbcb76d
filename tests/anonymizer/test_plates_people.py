"""Plate candidates on people (plates/people.py): ruled out on faces and torsos, never where
a real plate can be seen, and never when OCR reads them."""

from __future__ import annotations

import numpy as np
import pytest

from tests.anonymizer.test_plates import _changed_inside, scene_with
from veilchain.anonymizer.faces import FaceDetection
from veilchain.anonymizer.plates.detect import PlateDetection
from veilchain.anonymizer.plates.people import MIN_HEIGHT, People, person_quads


def face(box=(400.0, 100.0, 500.0, 220.0), down=(0.0, 1.0), fallback=None) -> FaceDetection:
    """A detected face whose eyes-to-mouth direction is ``down``."""
    x0, y0, x1, y1 = box
    c = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    d = np.asarray(down, float) / np.hypot(*down)
    r = np.array([-d[1], d[0]]) * 20
    eyes, mouth = c - 20 * d, c + 25 * d
    kp = np.array([eyes - r, eyes + r, c, mouth - r, mouth + r])
    return FaceDetection(box, 0.9, np.zeros((68, 2)), keypoints=kp, fallback=fallback)


def candidate(cx: float, cy: float, w: float = 120, h: float = 50) -> PlateDetection:
    q = np.array(
        [[cx - w / 2, cy - h / 2], [cx + w / 2, cy - h / 2], [cx + w / 2, cy + h / 2],
         [cx - w / 2, cy + h / 2]], np.float32,
    )  # fmt: skip
    return PlateDetection(q, q.copy(), 0.6 * h, 5)


def test_the_zones_turn_with_the_face():
    upright = person_quads(face())
    torso = upright[1].mean(0)
    assert torso[1] > 220 + 100 and abs(torso[0] - 450) < 1  # below the face
    sideways = person_quads(face(down=(1.0, 0.0)))  # a photo on its side: down is +x
    torso = sideways[1].mean(0)
    assert torso[0] > 500 + 100 and abs(torso[1] - 160) < 1
    head = upright[0]
    assert head[:, 1].min() < 100  # the head zone reaches above the face box (hair, a hat)


def test_an_unread_candidate_on_a_torso_is_ruled_out_and_a_read_one_is_redrawn():
    people = People([face()])
    on_chest = candidate(450, 160 + 1.5 * 120)  # 1.5 face heights below the face's centre
    assert people.ruled_out(on_chest, False, None) == "on_people"
    assert people.ruled_out(on_chest, True, None) is None


def test_where_a_plate_can_be_seen_nothing_is_ruled_out():
    people = People([face()])
    # at the person's depth a plate lies about 5.5 face heights below the face's centre
    assert people.ruled_out(candidate(450, 160 + 5.5 * 120), False, None) is None
    # beside the person, at chest height
    assert people.ruled_out(candidate(450 + 4 * 100, 160 + 2 * 120), False, None) is None
    # a small plate under a face larger than life (a poster): under the height floor
    small = candidate(450, 160 + 2 * 120, w=40, h=MIN_HEIGHT * 120 - 5)
    assert small.height < MIN_HEIGHT * 120
    assert people.ruled_out(small, False, None) is None
    # no faces: nothing to rule out
    assert People([]).ruled_out(candidate(450, 400), False, None) is None


def test_a_candidate_is_ruled_out_on_a_face_only_when_the_face_stage_rewrote_almost_all_of_it():
    people = People([face()])
    covered = np.zeros((720, 1280), bool)
    covered[100:220, 400:500] = True
    inside = candidate(450, 160, w=60, h=30)
    assert people.ruled_out(inside, True, covered) == "on_faces"  # already rewritten
    # half on the face, half beside it: the half beside it would be published as it was
    straddling = candidate(500, 160, w=100, h=30)
    assert people.ruled_out(straddling, True, covered) is None
    # a plate that covers a (false) face detected on it is still a plate
    over = candidate(450, 160, w=260, h=120)
    assert people.ruled_out(over, True, None) is None


def test_faces_the_detector_was_unsure_of_rule_nothing_out():
    unsure = face(fallback="low_score")
    on_chest = candidate(450, 160 + 2 * 120)
    assert People([face()]).ruled_out(on_chest, False, None) == "on_people"
    assert People([unsure]).ruled_out(on_chest, False, None) is None


def test_a_plate_below_a_seated_person_or_a_child_is_redrawn():
    """A plate at the person's depth lies (h - 0.4) / f face heights below the face's centre:
    3.6 for a seated adult, 3.3 for a child; the chest zone ends at 3."""
    people = People([face()])
    for below in (3.3, 3.6):
        assert people.ruled_out(candidate(450, 160 + below * 120), False, None) is None


@pytest.fixture(scope="module")
def blur_pipeline():
    from veilchain.anonymizer import build_anonymizer

    return build_anonymizer(
        "blur", identity_check=False, identifiers="faces,plates", secret=b"q" * 32
    )


def test_a_portrait_keeps_its_suit_and_a_street_plate_beside_it_is_redrawn(blur_pipeline):
    """A portrait pasted into a street scene: the pipeline redraws the real plate and rules
    out candidates on the person; the stage told of the face redraws less of the portrait
    than the same stage told of none."""
    import cv2

    from veilchain.anonymizer.image_io import load_image

    portrait = load_image("src/veilchain/data/samples/obama.jpg")
    scene, quad = scene_with("KX47 ZTR", width=260, center=(1000, 560))
    h = 560
    w = round(portrait.shape[1] * h / portrait.shape[0])
    scene[720 - h :, :w] = cv2.resize(portrait, (w, h), interpolation=cv2.INTER_AREA)
    res = blur_pipeline.anonymize(scene)
    assert len(res.faces) >= 1
    ruled = res.report["plates_ruled_out"]
    assert ruled["on_people"] + ruled["on_faces"] >= 1
    assert _changed_inside(scene, res.image, quad) > 25  # the real plate is redrawn

    stage, area = blur_pipeline.plates, np.s_[720 - h :, :w]
    changed = {}
    for told, faces in (("told", res.detections), ("blind", [])):
        out = scene.copy()
        stage.anonymize(out, scene, lambda i: np.random.default_rng(i), {}, faces=faces)
        changed[told] = (out[area] != scene[area]).any(2).mean()
        assert _changed_inside(scene, out, quad) > 25
    assert changed["told"] < changed["blind"]
