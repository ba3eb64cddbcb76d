"""The identity and still-a-face checks run lazily (``Anonymizer._anonymize_face``): the
kept attempt, the attempt count, the reported figures and the output pixels must be those of
the plain rule, where every attempt gets all three checks, the first acceptable one is kept
and otherwise the best ranked (the earliest on ties). The rule is written out here with the
pipeline's own building blocks and compared face by face, in the cases that reach each of
the lazy paths: an attempt accepted at once, retries for landmark shift, no acceptable
attempt, no attempt that the recognizer stops matching."""

from __future__ import annotations

import numpy as np
import pytest

from veilchain.anonymizer.detectors import landmark_box
from veilchain.anonymizer.embedding import face_distance
from veilchain.anonymizer.faces import HogDetector, landmarks_for_box
from veilchain.anonymizer.methods import build_method
from veilchain.anonymizer.metrics import landmark_displacement
from veilchain.anonymizer.pipeline import Anonymizer
from veilchain.anonymizer.replacement import plan_face, write_face
from veilchain.anonymizer.report import AttemptCheck

SECRET = b"check order"


def _every_check(anon: Anonymizer, image: np.ndarray, det, key: int, original: np.ndarray):
    """(kept attempt, attempts, its AttemptCheck, output) under the plain rule."""
    hog, box = HogDetector(), landmark_box(det)
    tried: list[tuple[AttemptCheck, np.ndarray]] = []
    for attempt in range(1, anon.max_attempts() + 1):
        out = image.copy()
        timing = dict.fromkeys(("generate", "blend"), 0.0)
        plan = plan_face(out.shape, image, image, det.landmarks, anon.method, anon.shape)
        assert plan is not None
        write_face(out, plan, anon.method, anon.shape, anon.rng_for(key, attempt), original, timing)
        lm = landmarks_for_box(out, box)
        distance = float(face_distance(anon.embedder.embed(out, [lm]), original)[0, 0])
        check = AttemptCheck(
            distance,
            distance >= anon.identity_threshold,
            hog.redetects(out, box),
            landmark_displacement(det.landmarks, lm),
        )
        tried.append((check, out))
        if check.acceptable(anon.face_tolerance):
            return attempt, attempt, check, out
    best = max(range(len(tried)), key=lambda i: (tried[i][0].rank(anon.face_tolerance), -i))
    return best + 1, len(tried), tried[best][0], tried[best][1]


@pytest.fixture(scope="module")
def ciagan():
    return build_method("ciagan")


@pytest.mark.parametrize(
    ("tolerance", "threshold", "keys"),
    [
        # (keys picked on obama3.jpg, measured with the rule below)
        (0.10, 0.6, [0, 1, 4]),  # as shipped: accepted at once, at the 5th or 3rd attempt
        (0.0, 0.6, [1, 4]),  # none acceptable: the least shift HOG still finds (5th, 3rd)
        (0.10, 0.95, [1, 4]),  # the recognizer matches every attempt: ranked by HOG, distance
    ],
)
def test_lazy_checks_keep_what_checking_every_attempt_keeps(
    tolerance, threshold, keys, ciagan, detector, embedder, sample
):
    image = sample("obama3.jpg")
    anon = Anonymizer(
        detector, ciagan, embedder=embedder, identity_retries=4, second_look=False,
        landmark_tolerance=tolerance, identity_threshold=threshold, secret=SECRET,
    )  # fmt: skip
    (det,) = anon.detect(image)
    original = embedder.embed(image, [det.landmarks])[0]
    for key in keys:
        kept, attempts, check, out = _every_check(anon, image, det, key, original)
        result = anon.anonymize(image, detections=[det], face_keys=[key])
        (face,) = result.faces
        assert (face.kept_attempt, face.attempts) == (kept, attempts), key
        assert face.distance == pytest.approx(check.distance, abs=1e-9)
        assert (face.passed, face.detected) == (check.passed, check.detected)
        assert face.landmark_displacement == pytest.approx(check.displacement, abs=1e-9)
        assert np.array_equal(result.image, out), key


def test_retries_for_landmark_shift_skip_the_embedding_and_hog(
    ciagan, detector, embedder, sample, monkeypatch
):
    """With no attempt acceptable for its shift, the checks run on one attempt only (the
    least shifted, found by HOG and unmatched), not on all five."""
    image = sample("obama.jpg")
    anon = Anonymizer(detector, ciagan, embedder=embedder, identity_retries=4,
                      second_look=False, landmark_tolerance=0.0, secret=SECRET)  # fmt: skip
    (det,) = anon.detect(image)
    calls = {"embed": 0, "hog": 0}
    embed, redetects = type(embedder).embed, HogDetector.redetects

    def counted_embed(self, *args, **kwargs):
        calls["embed"] += 1
        return embed(self, *args, **kwargs)

    def counted_hog(self, *args, **kwargs):
        calls["hog"] += 1
        return redetects(self, *args, **kwargs)

    monkeypatch.setattr(type(embedder), "embed", counted_embed)
    monkeypatch.setattr(HogDetector, "redetects", counted_hog)
    (face,) = anon.anonymize(image, detections=[det], face_keys=[1]).faces
    assert face.attempts == 5 and face.passed is True and face.detected is True
    # the original's embedding, then one attempt's (more only if the least shifted failed)
    assert calls["embed"] < 1 + 5 and calls["hog"] < 5
