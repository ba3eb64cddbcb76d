"""The face-hunters decoder, the DCGAN sampler and corpus building (real package data,
small subsets)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("h5py")
pytest.importorskip("face_hunters")

from veilchain.anonymizer import corpus as K  # noqa: E402
from veilchain.anonymizer import faces as F  # noqa: E402


def test_load_codes_skips_the_corrupt_file():
    codes, labels, skipped = K.load_codes()
    assert skipped == ["img_female_old_wavy.csv.npy"]
    assert codes.shape == (7000, 2048) and codes.dtype == np.float32
    assert len(labels) == 7000 and labels[0] == "img_female_old_straight:0"


def test_decoder_reproduces_known_output():
    codes, _, _ = K.load_codes()
    faces = K.FaceHuntersDecoder()(codes[:2])
    assert faces.shape == (2, 128, 128, 3) and faces.dtype == np.float32
    assert faces.min() >= 0.0 and faces.max() <= 1.0  # sigmoid output
    # reference values of this decoder on the first two codes (RGB order, NHWC reshape)
    np.testing.assert_allclose(faces.mean(axis=(1, 2, 3)), [0.5303226, 0.4719499], atol=1e-5)
    np.testing.assert_allclose(faces[0, 64, 64], [0.81398374, 0.63552934, 0.52096957], atol=1e-5)


def test_kmeans_is_seeded():
    x = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    c1, l1 = K.kmeans(x, 5, seed=3)
    c2, l2 = K.kmeans(x, 5, seed=3)
    np.testing.assert_array_equal(l1, l2)
    np.testing.assert_array_equal(c1, c2)


def test_build_small_corpus_is_reproducible(tmp_path):
    m1 = K.build_face_hunters_corpus(tmp_path / "a", limit=40, holdout=8, k=4, log=lambda m: None)
    corpus = K.load_corpus(tmp_path / "a")
    assert corpus.faces.shape == (40, 128, 128, 3) and corpus.landmarks.shape == (40, 68, 2)
    assert corpus.holdout.sum() == 8 and corpus.train().faces.shape[0] == 32
    assert set(corpus.train().identity) <= set(range(4))
    manifest = json.loads((tmp_path / "a" / K.MANIFEST_FILE).read_text())
    assert manifest["skipped_files"] == ["img_female_old_wavy.csv.npy"]
    assert manifest["faces"][5]["sha256"] == K.sha256_array(corpus.faces[5])
    m2 = K.build_face_hunters_corpus(tmp_path / "b", limit=40, holdout=8, k=4, log=lambda m: None)
    assert [f["sha256"] for f in m1["faces"]] == [f["sha256"] for f in m2["faces"]]
    assert [f["split"] for f in m1["faces"]] == [f["split"] for f in m2["faces"]]


def test_dcgan_corpus_is_reproducible_and_aligned(tmp_path):
    pytest.importorskip("gan_face_generate")
    m1 = K.build_dcgan_corpus(tmp_path / "a", samples=40, holdout=4, k=2, log=lambda m: None)
    corpus = K.load_corpus(tmp_path / "a")
    n = m1["kept"]
    assert 20 <= n <= 40 and m1["samples"] == 40  # HOG finds a face in most samples
    assert corpus.faces.shape == (n, 128, 128, 3) and corpus.holdout.sum() == 4
    # the stored landmarks describe the crop's pixels (padding offset included): the
    # predictor run again on the crop finds them within a tenth of the eye distance
    detector, errors = F.HogDetector(upsample=1), []
    for crop, lm in zip(corpus.faces[:10], corpus.landmarks[:10], strict=True):
        found = detector.detect(crop)
        if found:
            iod = np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0))
            errors.append(np.linalg.norm(found[0].landmarks - lm, axis=1).mean() / iod)
    assert len(errors) >= 5 and np.median(errors) < 0.1
    assert m1["faces"][0]["source"].startswith("dcgan:")
    m2 = K.build_dcgan_corpus(tmp_path / "b", samples=40, holdout=4, k=2, log=lambda m: None)
    assert [f["sha256"] for f in m1["faces"]] == [f["sha256"] for f in m2["faces"]]


def test_merged_corpus_keeps_every_sources_holdout(tmp_path):
    pytest.importorskip("gan_face_generate")
    from veilchain.errors import InputError

    quiet = dict(log=lambda m: None)
    K.build_face_hunters_corpus(tmp_path / "fh", limit=24, holdout=4, k=2, **quiet)
    K.build_dcgan_corpus(tmp_path / "dc", samples=24, holdout=4, k=2, **quiet)
    parts = [K.load_corpus(tmp_path / d) for d in ("fh", "dc")]
    m = K.merge_corpora([tmp_path / "fh", tmp_path / "dc"], tmp_path / "mix", k=3, **quiet)
    mixed = K.load_corpus(tmp_path / "mix")
    assert len(mixed.faces) == sum(len(p.faces) for p in parts) == m["count"]
    held = {K.sha256_array(f) for p in parts for f in p.test().faces}
    assert {K.sha256_array(f) for f in mixed.test().faces} == held
    assert m["holdout_count"] == sum(int(p.holdout.sum()) for p in parts) > 4
    assert set(mixed.train().identity) == {0, 1, 2}  # clustered afresh across both sources
    np.testing.assert_array_equal(mixed.embeddings[: len(parts[0].faces)], parts[0].embeddings)
    sources = [f["source"] for f in m["faces"]]
    assert sources[0].startswith("img_") and sources[-1].startswith("dcgan:")
    assert "CelebA" in m["licence"] and "DigiFace-1M" in m["licence"]
    (tmp_path / "half").mkdir()  # the faces without their manifest
    (tmp_path / "half" / K.CORPUS_FILE).write_bytes((tmp_path / "fh" / K.CORPUS_FILE).read_bytes())
    for bad in ("nope", "half"):
        with pytest.raises(InputError, match="not a built corpus"):
            K.merge_corpora([tmp_path / "fh", tmp_path / bad], tmp_path / "bad", **quiet)


def test_load_corpus_rejects_unknown_layout(tmp_path):
    from veilchain.errors import InputError

    with pytest.raises(InputError):
        K.load_corpus(tmp_path)
