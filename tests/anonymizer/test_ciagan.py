"""CIAGAN: sketch, targets never the source's identity, shipped weights, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest

from veilchain.anonymizer import ciagan as C
from veilchain.anonymizer.identities import PseudoIdentities
from veilchain.anonymizer.superres import SR_WEIGHTS, combined_hash
from veilchain.errors import ModelLoadError


def test_sketch_and_prepare_shapes():
    from veilchain.anonymizer.alignment import CANONICAL_TEMPLATE_128 as lm

    crop = np.full((128, 128, 3), 128, np.uint8)
    img, sk, m = C.prepare(crop, lm)
    assert img.shape == (3, 64, 64) and sk.shape == (1, 64, 64) and m.shape == (1, 64, 64)
    assert sk.sum() > 0 and sk.max() <= 1.0 and 0.1 < m.mean() < 0.6
    img2, sk2, m2 = C.prepare(crop, lm, 128)
    assert img2.shape == (3, 128, 128) and sk2.shape == m2.shape == (1, 128, 128)
    # the 128 sketch's lines are 2 px wide: averaged down it is close to the 64 sketch
    # (measured: ink 1.32x, mean difference 0.027)
    down = sk2[0].reshape(64, 2, 64, 2).mean((1, 3))
    assert abs(down.sum() - sk.sum()) < 0.4 * sk.sum() and np.abs(down - sk[0]).mean() < 0.05


def test_target_never_the_source_identity():
    rng = np.random.default_rng(0)
    ids = PseudoIdentities(rng.normal(size=(20, 128)).astype(np.float32) * 0.1)
    for _ in range(300):
        emb = rng.normal(size=128).astype(np.float32) * 0.1
        t = ids.choose_target(emb, rng)
        assert t != ids.assign(emb)
        # drawn among the farthest half: at least 10 of the 20 centroids are no farther
        assert (ids.distances(emb) <= ids.distances(emb)[t]).sum() > 10
    # all but one cluster within the exclusion radius: still never the nearest
    close = PseudoIdentities(np.vstack([np.zeros((5, 128)), np.ones((1, 128))]).astype(np.float32))
    for _ in range(50):
        assert close.choose_target(np.zeros(128, np.float32), rng) != close.assign(np.zeros(128))


def test_missing_or_foreign_weights(tmp_path):
    with pytest.raises(ModelLoadError, match="weights not found"):
        C.build_ciagan_generator(tmp_path)
    (tmp_path / C.CIAGAN_WEIGHTS).write_bytes(b"not a checkpoint")
    (tmp_path / "ciagan.json").write_text('{"format": "veilchain-ciagan/1"}')
    with pytest.raises(ModelLoadError):
        C.build_ciagan_generator(tmp_path)
    (tmp_path / "ciagan.json").write_text('{"format": "something-else"}')
    with pytest.raises(ModelLoadError, match="not a"):
        C.build_ciagan_generator(tmp_path)


needs_weights = pytest.mark.skipif(
    not (C.WEIGHTS_DIR / C.CIAGAN_WEIGHTS).is_file(), reason="shipped CIAGAN weights not present"
)


@needs_weights
def test_shipped_weights_load_and_hash():
    gen = C.build_ciagan_generator()
    assert gen.name == "ciagan"
    meta = json.loads((C.WEIGHTS_DIR / "ciagan.json").read_text())
    assert meta["sha256"] == C.file_sha256(C.WEIGHTS_DIR / C.CIAGAN_WEIGHTS)
    # the published hash covers the super-resolution weights shipped beside the generator
    assert gen.model_hash() == combined_hash(meta["sha256"], gen.upsampler)
    if (C.WEIGHTS_DIR / SR_WEIGHTS).is_file():
        assert gen.upsampler is not None and gen.model_hash() != meta["sha256"]
        assert gen.privacy_params()["upsampling"] == "superres"
    assert gen.identities.k == gen.net.num_ids


@needs_weights
def test_generate_deterministic_and_keeps_background():
    from veilchain.anonymizer import alignment, embedding
    from veilchain.anonymizer import faces as F
    from veilchain.anonymizer.corpus import FIXED_BOX, FaceHuntersDecoder, load_codes, to_uint8

    codes, _, _ = load_codes()
    img = to_uint8(FaceHuntersDecoder()(codes[:1]))[0]
    lm = F.landmarks_for_box(img, FIXED_BOX)
    crop, m = alignment.align_face(img, lm, 128)
    lm = alignment.transform_points(lm, m)
    emb = embedding.FaceEmbedder().embed(crop, lm)[0]
    gen = C.build_ciagan_generator()
    a = gen.generate(crop, lm, np.random.default_rng(5), embedding=emb)
    b = gen.generate(crop, lm, np.random.default_rng(5), embedding=emb)
    assert a.shape == (128, 128, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    outside = ~alignment.face_mask(lm, (128, 128), dilation=0.1, forehead=C.MASK_FOREHEAD)
    assert np.array_equal(a[outside], crop[outside])
    assert not np.array_equal(a, crop)
    t = gen.choose_target(crop, lm, np.random.default_rng(5), emb)
    assert t != gen.identities.assign(emb)


@needs_weights
def test_onnxruntime_generator_matches_pytorch():
    """The generator runs through onnxruntime (traced from the PyTorch network): for each target
    the network's output agrees with PyTorch's to float rounding, and the pasted face to a
    couple of grey levels at a few pixels (CPU kernels differ between machines: the CI machine
    saw 2 levels where this one sees 0)."""
    import torch

    from veilchain.anonymizer import alignment

    gen = C.build_ciagan_generator()
    rng = np.random.default_rng(3)
    crop = rng.integers(40, 200, (C.CROP, C.CROP, 3), dtype=np.uint8)
    lm = alignment.canonical_template(C.CROP)
    img, sk, m = (torch.from_numpy(a)[None] for a in C.prepare(crop, lm, gen.net.res))
    for target in range(0, gen.identities.k, max(1, gen.identities.k // 8)):
        with torch.inference_mode():
            raw = gen.net(img, sk, m, torch.tensor([target]))[0].numpy()
            theirs = C.paste(crop, C.to_uint8_image(torch.from_numpy(raw)), lm, gen.upsampler)
        ours = gen.generate_target(crop, lm, target)
        feed = {
            "image": img.numpy(),
            "sketch": sk.numpy(),
            "mask": m.numpy(),
            "target": np.array([target], np.int64),
        }
        assert np.abs(gen._session.run(None, feed)[0][0] - raw).max() < 4e-3, (
            target
        )  # half a grey level
        diff = np.abs(ours.astype(int) - theirs.astype(int))
        assert diff.max() <= 3 and (diff > 0).sum() <= 64, target  # here: 0 levels, 0 pixels
