"""The GAN engineer's generators plug into the pipeline (untrained networks: interface only;
the shipped weights are tested in their own test files)."""

from __future__ import annotations

import numpy as np
import pytest

from veilchain.anonymizer.alignment import face_mask
from veilchain.anonymizer.methods import FaceGenerator
from veilchain.anonymizer.pipeline import DEFAULT_DILATION, Anonymizer

torch = pytest.importorskip("torch")
C = pytest.importorskip("veilchain.anonymizer.ciagan")
D = pytest.importorskip("veilchain.anonymizer.dp_latent")


def _untrained():
    from veilchain.anonymizer.identities import PseudoIdentities

    torch.manual_seed(0)
    ids = PseudoIdentities(np.random.default_rng(0).normal(size=(8, 128)).astype(np.float32))
    ciagan = C.CiaganGenerator(C.IdentityGenerator(8, 16, 16), ids, "0" * 64, {})
    dp = D.DpLatentGenerator(
        D.LatentEncoder(D.DEFAULT_LATENT, 16),
        D.LatentDecoder(D.DEFAULT_LATENT, 16),
        epsilon=1.0,
        clip=D.DEFAULT_CLIP,
        weights_sha256="1" * 64,
        meta={"ch": 16},
    )
    return ciagan, dp


def test_generators_run_in_the_pipeline(detector, embedder, sample):
    img = sample("biden.jpg")
    for gen in _untrained():
        assert isinstance(gen, FaceGenerator)
        anon = Anonymizer(detector, gen, embedder=embedder, identity_retries=0, seed=3)
        r = anon.anonymize(img)
        assert r.image.shape == img.shape and len(r.faces) == 1
        assert r.faces[0].distance is not None
        keep = ~face_mask(r.detections[0].landmarks, img.shape, dilation=DEFAULT_DILATION)
        assert np.array_equal(r.image[keep], img[keep])
        assert np.array_equal(anon.anonymize(img).image, r.image)
        assert r.report["model_hash"] == gen.model_hash()
        assert r.report["privacy_params"]["method"] == gen.name
    assert r.report["epsilon_spent_max"] == 1.0  # dp: one attempt, eps 1
