"""Trainer: checkpoints, exact resume, time budget, export -> builder round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from veilchain.anonymizer import alignment, embedding
from veilchain.anonymizer import faces as F
from veilchain.anonymizer.corpus import FIXED_BOX, Corpus, FaceHuntersDecoder, load_codes, to_uint8
from veilchain.anonymizer.training import TrainConfig, Trainer
from veilchain.errors import InputError

pytest.importorskip("h5py")


@pytest.fixture(scope="module")
def tiny_corpus() -> Corpus:
    codes, _, _ = load_codes()
    raw = to_uint8(FaceHuntersDecoder()(codes[:: 7000 // 24][:24]))
    crops, lms = [], []
    for img in raw:
        lm = F.landmarks_for_box(img, FIXED_BOX)
        crop, m = alignment.align_face(img, lm, 128)
        crops.append(crop)
        lms.append(alignment.transform_points(lm, m))
    ident = np.arange(24) % 4
    hold = np.zeros(24, bool)
    hold[-4:] = True
    return Corpus(np.stack(crops), np.stack(lms), ident.astype(np.int64), hold, None)


def _cfg(model: str, steps: int) -> TrainConfig:
    """``ciagan128``: the 128 px generator with every term of its training on."""
    hi = model == "ciagan128"
    return TrainConfig(
        model="ciagan" if hi else model,
        steps=steps,
        batch=4,
        ch=4,
        id_dim=8,
        latent=8,
        checkpoint_every=1000,
        log_every=1000,
        **({"res": 128, "lambda_fm": 2.0, "lambda_edge": 5.0, "jitter": 0.15} if hi else {}),
    )


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {
        f"{n}.{k}": v.clone()
        for n, net in trainer.nets.items()
        for k, v in net.state_dict().items()
    }


CENTROIDS = np.random.default_rng(0).normal(size=(4, 128)).astype(np.float32)


@pytest.mark.parametrize("model", ["ciagan", "ciagan128", "dp"])
def test_resume_continues_exactly(model, tiny_corpus, tmp_path):
    straight = Trainer(tiny_corpus, tmp_path / "a", _cfg(model, 4), seed=7, centroids=CENTROIDS)
    straight.train(progress=lambda m: None)
    first = Trainer(tiny_corpus, tmp_path / "b", _cfg(model, 2), seed=7, centroids=CENTROIDS)
    first.train(progress=lambda m: None)
    torch.manual_seed(12345)  # a fresh process: global RNG state differs
    resumed = Trainer(tiny_corpus, tmp_path / "b", _cfg(model, 4), seed=7, centroids=CENTROIDS)
    resumed.train(resume=True, progress=lambda m: None)
    assert resumed.step == straight.step == 4
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_time_budget_stops_and_checkpoints(tiny_corpus, tmp_path):
    cfg = _cfg("dp", 1000)
    cfg.max_minutes = 0.0
    t = Trainer(tiny_corpus, tmp_path, cfg, seed=0)
    lines: list[str] = []
    t.train(progress=lines.append)
    assert t.step == 1
    assert (tmp_path / "checkpoint.pt").is_file()
    assert any("time budget" in line for line in lines)


def test_export_loads_in_builders(tiny_corpus, tmp_path):
    from veilchain.anonymizer.ciagan import build_ciagan_generator, file_sha256
    from veilchain.anonymizer.dp_latent import build_dp_generator

    for model in ("ciagan", "dp"):
        t = Trainer(tiny_corpus, tmp_path / model, _cfg(model, 1), seed=0, centroids=CENTROIDS)
        t.train(progress=lambda m: None)
        path = t.export(tmp_path / "w")
        assert path.with_suffix(".json").is_file()
    g = build_ciagan_generator(tmp_path / "w")
    assert g.model_hash() == file_sha256(tmp_path / "w" / "ciagan.pt")
    d = build_dp_generator(epsilon=2.0, weights_dir=tmp_path / "w")
    out = d.generate(tiny_corpus.faces[0], tiny_corpus.landmarks[0], np.random.default_rng(0))
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8


def test_128_generator_warm_starts_from_a_64_one_and_exports(tiny_corpus, tmp_path):
    """A 64 px generator warm-starts the 128 px one: the U-Net body and identity embedding
    are copied, the detail head starts at zero, so the first 128 px face is the 64 px face
    upsampled (to a few grey levels: the body now sees the 128 inputs averaged down). The
    trained 128 generator exports and loads at 128."""
    import torch.nn.functional as nnf

    from veilchain.anonymizer import ciagan as C

    src = Trainer(tiny_corpus, tmp_path / "src", _cfg("ciagan", 3), seed=1, centroids=CENTROIDS)
    src.train(progress=lambda m: None)
    src.export(tmp_path / "w64")
    hi = Trainer(tiny_corpus, tmp_path / "hi", _cfg("ciagan128", 2), seed=2, centroids=CENTROIDS)
    hi.init_from_weights(tmp_path / "w64")
    g64, g128 = src.nets["generator"].eval(), hi.nets["generator"].eval()
    assert not g128.head.out.weight.any()
    crop, lm = tiny_corpus.faces[0], tiny_corpus.landmarks[0]
    with torch.no_grad():
        a = [torch.from_numpy(x)[None] for x in C.prepare(crop, lm, 64)]
        b = [torch.from_numpy(x)[None] for x in C.prepare(crop, lm, 128)]
        up = nnf.interpolate(g64.half().float()(*a, torch.tensor([1])), scale_factor=2,
                             mode="bilinear")  # fmt: skip
        out = g128(*b, torch.tensor([1]))
    assert out.shape == (1, 3, 128, 128)
    assert float((out - up).abs().mean()) * 127.5 < 6.0
    hi.train(progress=lambda m: None)
    path = hi.export(tmp_path / "w128")
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["resolution"] == 128 and meta["lambda_fm"] == 2.0 and meta["jitter"] == 0.15
    gen = C.build_ciagan_generator(tmp_path / "w128")
    assert gen.net.res == 128 and gen.privacy_params()["resolution"] == 128
    face = gen.generate(crop, lm, np.random.default_rng(0))
    assert face.shape == (128, 128, 3) and not np.array_equal(face, crop)


def test_mask_edge_term_sees_a_band_and_not_a_clean_paste():
    """The mask-edge term is 0 when the composite equals the real face, and grows with a
    bright band drawn along the inside of the mask border (the DP latent's forehead band)."""
    from veilchain.anonymizer.ciagan import mask_edge_excess

    real = torch.rand(1, 3, 64, 64) * 0.2
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    assert float(mask_edge_excess(real, real, mask)) == 0.0
    banded = real.clone()
    banded[..., 16:19, 16:48] += 0.8
    assert float(mask_edge_excess(banded, real, mask)) > 0.05


def test_warm_start_loads_exported_generator(tiny_corpus, tmp_path):
    """--init-from: the generator starts from exported (fp16) weights; the critic and siamese
    start fresh; the warm start is recorded through checkpoint and export."""
    src = Trainer(tiny_corpus, tmp_path / "src", _cfg("ciagan", 2), seed=1, centroids=CENTROIDS)
    src.train(progress=lambda m: None)
    src.export(tmp_path / "w1")
    warm = Trainer(tiny_corpus, tmp_path / "warm", _cfg("ciagan", 1), seed=2, centroids=CENTROIDS)
    meta = warm.init_from_weights(tmp_path / "w1")
    for k, v in src.nets["generator"].state_dict().items():
        assert torch.equal(warm.nets["generator"].state_dict()[k], v.half().float()), k
    cold = Trainer(tiny_corpus, tmp_path / "cold", _cfg("ciagan", 1), seed=2, centroids=CENTROIDS)
    for key in ("critic", "siamese"):
        for k, v in cold.nets[key].state_dict().items():
            assert torch.equal(warm.nets[key].state_dict()[k], v), (key, k)
    warm.train(progress=lambda m: None)
    resumed = Trainer(
        tiny_corpus, tmp_path / "warm", _cfg("ciagan", 2), seed=2, centroids=CENTROIDS
    )
    resumed.train(resume=True, progress=lambda m: None)
    path = resumed.export(tmp_path / "w2")
    exported = json.loads(path.with_suffix(".json").read_text())
    assert exported["init_from"] == {"sha256": meta["sha256"], "steps": 2}
    with pytest.raises(InputError, match="cannot warm-start"):
        other = TrainConfig(**{**_cfg("ciagan", 1).__dict__, "ch": 8})
        Trainer(tiny_corpus, tmp_path / "x", other, seed=0, centroids=CENTROIDS).init_from_weights(
            tmp_path / "w1"
        )


def test_holdout_evaluation_runs_the_pipeline_path(tiny_corpus):
    """Shipped CIAGAN on the 4 held-out faces of the tiny corpus, with and without checks."""
    from veilchain.anonymizer.ciagan import build_ciagan_generator
    from veilchain.anonymizer.holdout import evaluate_holdout

    emb = embedding.FaceEmbedder()
    embeddings = np.concatenate(
        [emb.embed(c, lm) for c, lm in zip(tiny_corpus.faces, tiny_corpus.landmarks, strict=True)]
    )
    c = tiny_corpus
    corpus = Corpus(c.faces, c.landmarks, c.identity, c.holdout, embeddings)
    r = evaluate_holdout(build_ciagan_generator(), corpus, retries=2)
    assert r["n"] == 4 and r["gallery"] == 4 and 1 <= r["mean_attempts"] <= 3
    # a rank-1 hit under 0.6 is an output under 0.6 from its source
    assert r["reid_rate_with_check"] <= r["within_threshold_of_source_rate"]
    assert 0 <= r["check_failed_rate"] <= 1
    for key in ("detection_retention", "detection_retention_first", "crop_psnr_db"):
        assert key in r
    assert 0 <= r["landmark_displacement_iod_mean"] < 1
    hog = r["landmark_displacement_iod_mean_hog"]  # over the faces HOG finds, if any
    assert (hog is None) == (r["detection_base"] == 0)
    assert hog is None or 0 <= hog < 1
    # realism: a generated face keeps some detail of its own, has no strong seam, and the
    # sources' and outputs' embeddings give a finite FD
    assert r["detail_ratio_median"] > 0 and 0 < r["seam_score_median"] < 3
    assert np.isfinite(r["fd_dlib"]) and r["fd_dlib"] > 0
    assert 0 <= r["detection_base_mmod"] <= 4
    mmod = r["detection_retention_mmod"]
    assert (r["detection_base_mmod"] == 0) == np.isnan(mmod) and (np.isnan(mmod) or 0 <= mmod <= 1)


def test_cli_train_exports_with_the_given_identity_weight(tmp_path):
    from typer.testing import CliRunner

    from veilchain.anonymizer.corpus import build_face_hunters_corpus
    from veilchain.cli import app

    build_face_hunters_corpus(tmp_path / "c", limit=24, holdout=4, k=2, log=lambda m: None)
    args = ["train", "ciagan", "--data", str(tmp_path / "c"), "--out", str(tmp_path / "r")]
    res = CliRunner().invoke(app, [*args, "--steps", "1", "--lambda-id", "3"])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "r" / "ciagan" / "weights" / "ciagan.json").read_text())
    assert meta["lambda_id"] == 3.0 and meta["steps"] == 1 and meta["train_faces"] == 20
    # a later export from the run's checkpoint writes the same file and metadata
    from veilchain.anonymizer.training import main

    threads = str(torch.get_num_threads())
    run = ["--data", str(tmp_path / "c"), "--out", str(tmp_path / "r" / "ciagan")]
    main(["export", "ciagan", *run, "--weights", str(tmp_path / "w2"), "--threads", threads])
    assert json.loads((tmp_path / "w2" / "ciagan.json").read_text()) == meta
