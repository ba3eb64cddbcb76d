"""Feature-selective faces: only the chosen features change, the identity check still rules."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from veilchain.anonymizer.alignment import align_face, transform_points
from veilchain.anonymizer.ciagan import build_ciagan_generator
from veilchain.anonymizer.faces import landmarks_for_box
from veilchain.anonymizer.features import FeatureSelective, feature_mask, parse_features
from veilchain.anonymizer.methods import build_method
from veilchain.anonymizer.wiring import build_anonymizer
from veilchain.cli import app
from veilchain.errors import InputError


def test_parse_features_is_canonical_and_strict():
    assert parse_features("mouth,eyes") == ("eyes", "mouth")
    assert parse_features("eyes+nose") == ("eyes", "nose")
    assert parse_features(" Eyes , ") == ("eyes",)
    assert parse_features("") == () and parse_features(None) == ()
    with pytest.raises(InputError, match="unknown feature ears"):
        parse_features("eyes,ears")


@pytest.fixture(scope="module")
def aligned(sample, detector):
    """An aligned 128x128 crop of a real face and its 68 landmarks in the crop."""
    image = sample("obama.jpg")
    (det,) = detector.detect(image)
    crop, matrix = align_face(image, det.landmarks)
    return crop, transform_points(det.landmarks, matrix).astype(np.float32)


def test_mask_covers_the_features_and_not_the_rest(aligned):
    _, lm = aligned
    eyes = feature_mask(lm, ["eyes"], 128)
    assert eyes[tuple(np.round(lm[36:42].mean(0)[::-1]).astype(int))] > 0.9  # an eye
    assert eyes[tuple(np.round(lm[62][::-1]).astype(int))] < 0.05  # the mouth
    assert eyes[tuple(np.round(lm[8][::-1]).astype(int))] < 0.05  # the chin
    full = feature_mask(lm, ["eyes", "nose", "mouth"], 128)
    assert full[tuple(np.round(lm[62][::-1]).astype(int))] > 0.9
    assert full[tuple(np.round(lm[30][::-1]).astype(int))] > 0.9  # the nose tip
    assert (full >= eyes - 1e-6).all()


def test_only_the_chosen_features_change(aligned):
    crop, lm = aligned
    inner = build_ciagan_generator()
    out = FeatureSelective(inner, ["mouth"]).generate(crop, lm, np.random.default_rng(1))
    alpha = feature_mask(lm, ["mouth"], 128)
    diff = np.abs(out.astype(int) - crop.astype(int)).max(axis=2)
    assert (diff[alpha == 0] == 0).all(), "a pixel outside the mouth changed"
    assert diff[alpha > 0.9].mean() > 10, "the mouth was not regenerated"


def test_features_need_a_generator():
    with pytest.raises(InputError, match="needs a generator"):
        build_method("blur", features=("eyes",))
    res = CliRunner().invoke(app, ["anonymize", "x.jpg", "-o", "out", "--method", "blur",
                                   "--features", "eyes"])  # fmt: skip
    assert res.exit_code == 2


def test_pipeline_records_features_and_keeps_the_identity_check(sample, detector):
    image = sample("obama.jpg")
    anon = build_anonymizer("ciagan", features=("eyes", "nose", "mouth"), secret=b"t")
    result = anon.anonymize(image)
    assert result.report["privacy_params"]["features"] == ["eyes", "nose", "mouth"]
    (face,) = result.report["faces"]
    assert face["distance"] is not None and face["passed"] is not None  # checked
    # What is kept is the original's: the jaw line's landmarks barely move.
    (det,) = detector.detect(image)
    lm_in, lm_out = det.landmarks, landmarks_for_box(result.image, det.box)
    iod = np.linalg.norm(lm_in[36:42].mean(0) - lm_in[42:48].mean(0))
    assert np.linalg.norm(lm_in[0:17] - lm_out[0:17], axis=1).mean() / iod < 0.1


def test_one_feature_is_rewritten_not_covered_over_the_head(sample):
    """Replacing the eyes only leaves most of the detector's box as it was by design: the
    partly_unchanged rule (a rewrite that changed too little of the face) is off for
    feature-selective faces, or every such face would be blurred over its head."""
    anon = build_anonymizer("ciagan", features=("eyes",), identity_check=False, secret=b"t")
    assert anon.min_changed_share == 0.0
    (face,) = anon.anonymize(sample("obama.jpg")).faces
    assert face.fallback is None
