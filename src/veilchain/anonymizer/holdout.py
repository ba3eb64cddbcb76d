"""Held-out evaluation of trained generators: privacy and utility on the corpus's test faces.

:func:`evaluate_holdout` runs the pipeline's own path on every held-out face, once without
checks and once with them, and summarises re-identification, landmark displacement,
detection retention (HOG, Haar, dlib's CNN), realism (detail ratio, seam score, FD over dlib
embeddings) and image quality. :func:`evaluate_weights` does it for a weights
folder (CIAGAN, or DP at several epsilons); ``python -m veilchain.anonymizer.training
evaluate`` prints its result.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from veilchain.anonymizer.corpus import Corpus
from veilchain.errors import AnonymizationError, InputError

__all__ = ["evaluate_holdout", "evaluate_weights"]


@dataclass(frozen=True)
class _HoldoutJob:
    """What every worker evaluates: the generator on the test split, with these checks."""

    generator: Any  # a FaceGenerator
    test: Corpus
    retries: int | None
    threshold: float
    seed: int


def _eval_faces(job: _HoldoutJob, indices: list[int]) -> list[dict]:
    """Per-face records for the held-out rows ``indices``."""
    from veilchain.anonymizer import embedding
    from veilchain.anonymizer import faces as F
    from veilchain.anonymizer import metrics as M
    from veilchain.anonymizer.pipeline import Anonymizer

    torch.set_num_threads(1)
    gen, test, retries, thr, seed = job.generator, job.test, job.retries, job.threshold, job.seed
    embedder, detector = embedding.FaceEmbedder(), F.HogDetector(upsample=1, low_light=False)
    checked = Anonymizer(
        detector,
        gen,
        embedder=embedder,
        identity_threshold=thr,
        identity_retries=retries,
        seed=seed,
    )
    unchecked = Anonymizer(detector, gen, seed=seed)  # the first attempt only
    assert test.embeddings is not None, "evaluate_holdout refuses a corpus without them"
    records = []
    for i in indices:
        crop, lm, emb = test.faces[i], test.landmarks[i], test.embeddings[i]
        b_orig = [b for b, _ in detector.detect_boxes(crop)]
        lo, hi = lm.min(0), lm.max(0)  # HOG's box as in the pipeline, else the landmarks'
        box = b_orig[0] if b_orig else (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
        # the landmarks the pipeline itself predicts on this image (the corpus's came from the
        # full-size source before alignment and sit 0.07 IOD away from these on average)
        lm_orig = F.landmarks_for_box(crop, box)
        faces = [F.FaceDetection(box, 1.0, lm_orig)]
        rec: dict = {"i": int(i), "retries": checked.identity_retries}
        # the source embedded as the outputs are (landmarks predicted on the crop), for FD
        rec["source"] = embedder.embed(crop, [lm_orig])[0]
        h_orig = F.haar_face_boxes(crop)
        m_orig = F.mmod_face_boxes(crop)  # the crop is the face's region: searched whole
        inner = M.inner_face_mask(lm_orig, crop.shape)
        for name, anon in (("first", unchecked), ("checked", checked)):
            res = anon.anonymize(crop, detections=faces, face_keys=[int(i)])
            out, lm_out = res.image, F.landmarks_for_box(res.image, box)
            rec[name] = embedder.embed(out, lm_out)[0]
            rec["dist_" + name] = float(np.linalg.norm(rec[name] - emb))
            rec["disp_" + name] = M.landmark_displacement(lm_orig, lm_out)
            if b_orig:
                after = [b for b, _ in detector.detect_boxes(out)]
                rec["ret_" + name] = M.detection_retention(b_orig, after)
            if h_orig:
                rec["ret_haar_" + name] = M.detection_retention(h_orig, F.haar_face_boxes(out))
            if m_orig:
                rec["ret_mmod_" + name] = M.detection_retention(m_orig, F.mmod_face_boxes(out))
            rec["detail_" + name] = M.detail_ratio(crop, out, inner)
            rec["noise_" + name] = M.noise_ratio(crop, out, inner)
            rec["seam_" + name] = M.seam_score(crop, out, M.changed_region(crop, out))
        rec.update(
            attempts=res.faces[0].attempts,
            passed=res.faces[0].passed,
            psnr=M.psnr(crop, out),
            ssim=M.ssim(crop, out),
        )
        records.append(rec)
    return records


def _in_forked_processes(job: _HoldoutJob, chunks: list[list[int]]) -> list[list[dict]]:
    """:func:`_eval_faces` on each chunk in its own forked process (one torch thread each).

    Fork, not spawn: the children inherit ``job`` (generator and test faces) instead of
    receiving a pickled copy. Each sends its records back over a pipe."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    receivers, processes = [], []
    for chunk in chunks:
        receiver, sender = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_eval_child, args=(job, chunk, sender), daemon=True)
        process.start()
        sender.close()
        receivers.append(receiver)
        processes.append(process)
    try:
        answers = []
        for receiver in receivers:
            try:
                answers.append(receiver.recv())
            except EOFError as exc:
                raise AnonymizationError("a holdout evaluation process died") from exc
    finally:
        for process in processes:
            process.join()
    for ok, value in answers:
        if not ok:
            raise AnonymizationError(f"holdout evaluation failed in a worker: {value}")
    return [value for _, value in answers]


def _eval_child(job: _HoldoutJob, indices: list[int], sender: Any) -> None:
    try:
        sender.send((True, _eval_faces(job, indices)))
    except Exception as exc:  # reported to the parent, which raises
        sender.send((False, f"{type(exc).__name__}: {exc}"))
    finally:
        sender.close()


def evaluate_holdout(
    generator,
    corpus: Corpus,
    *,
    retries: int | None = None,
    threshold: float = 0.6,
    seed: int = 0,
    limit: int | None = None,
    workers: int = 1,
) -> dict:
    """Privacy and utility of ``generator`` on the held-out faces of ``corpus``.

    Per face, the pipeline's own path (``Anonymizer`` given the face box and the landmarks
    dlib predicts in it, as the pipeline would: align, generate, match lighting, blend; its
    checks and up to ``retries`` retries, by default the pipeline's) on the 128 crop, once
    without checks (first attempt) and once with them. The face box is HOG's on the original
    crop (as the pipeline has it), else the corpus landmarks' bounding box. The output is
    embedded with dlib (68 landmarks re-predicted in the face box) and compared with the
    source embedding. Detection retention counts HOG detections
    (upsample 1) on the whole crop; it agrees with the pipeline's own re-detection check, so
    it is also reported for OpenCV's Haar cascade and for dlib's CNN (MMOD), detectors no check
    uses (MMOD: nothing in the anonymizer does). Detail ratio and seam score compare the output
    crop with the original inside the inner face and on the border of the replaced region
    (the pipeline's own face mask); FD-dlib fits Gaussians to the sources' and the outputs'
    dlib embeddings. Re-identification is
    rank-1 against the gallery of all held-out originals (metrics.reidentification), for the
    first attempt and for the identity-checked output. Landmark displacement compares
    landmarks predicted with the same box on the original and the output crop. ``workers``
    processes (fork, one torch thread each) share the faces.
    """
    from veilchain.anonymizer import metrics as M

    test = corpus.test()
    if test.embeddings is None:
        raise InputError("evaluation needs the corpus embeddings (build the corpus first)")
    n = len(test.faces) if limit is None else min(limit, len(test.faces))
    job = _HoldoutJob(generator, test, retries, threshold, seed)
    t0 = time.time()
    chunks = [list(range(k, n, workers)) for k in range(workers)]
    parts = _in_forked_processes(job, chunks) if workers > 1 else [_eval_faces(job, chunks[0])]
    recs = sorted((r for part in parts for r in part), key=lambda r: r["i"])
    ids = [r["i"] for r in recs]
    gallery = test.embeddings
    r0 = M.reidentification(
        gallery, np.stack([r["first"] for r in recs]), probe_ids=ids, threshold=threshold
    )
    r1 = M.reidentification(
        gallery, np.stack([r["checked"] for r in recs]), probe_ids=ids, threshold=threshold
    )
    return _summary(recs, r0, r1, n=n, gallery_size=len(gallery), threshold=threshold,
                    retries=retries, t0=t0)  # fmt: skip


def _summary(
    recs: list[dict],
    r0: dict,
    r1: dict,
    *,
    n: int,
    gallery_size: int,
    threshold: float,
    retries: int | None,
    t0: float,
) -> dict:
    """The figures :func:`evaluate_holdout` returns, from the per-face records and the
    re-identification results without (``r0``) and with (``r1``) the identity check."""
    from veilchain.anonymizer import metrics as M

    dist = np.array([r["dist_checked"] for r in recs])
    disp = np.array([r["disp_checked"] for r in recs])
    hog = np.array(["ret_checked" in r for r in recs])

    def share(key: str) -> tuple[float, int]:
        vals = [r[key] for r in recs if key in r]
        return (float(np.mean(vals)) if vals else float("nan")), len(vals)

    def median(key: str) -> float | None:
        vals = [r[key] for r in recs if r.get(key) is not None]
        return float(np.median(vals)) if vals else None

    def fd(key: str) -> float:
        return M.dlib_embedding_fd(np.stack([r["source"] for r in recs]),
                                   np.stack([r[key] for r in recs]))  # fmt: skip

    return {
        "n": n,
        "gallery": gallery_size,
        "reid_rate_no_check": r0["rate"],
        "reid_rate_with_check": r1["rate"],
        # the pipeline's verdict (its own embedding of the source) and, stricter, how many
        # outputs sit under the threshold from the corpus embedding (other landmarks)
        "check_failed_rate": float(np.mean([r["passed"] is False for r in recs])),
        "within_threshold_of_source_rate": float((dist < threshold).mean()),
        "mean_attempts": float(np.mean([r["attempts"] for r in recs])),
        "dist_to_source_first_mean": float(np.mean([r["dist_first"] for r in recs])),
        "dist_to_source_checked_mean": float(dist.mean()),
        "landmark_displacement_iod_mean": float(disp.mean()),
        "landmark_displacement_iod_median": float(np.median(disp)),
        "landmark_displacement_iod_mean_first": float(np.mean([r["disp_first"] for r in recs])),
        # over the faces HOG finds on the original: the pipeline's own inputs, boxed by HOG
        "landmark_displacement_iod_mean_hog": float(disp[hog].mean()) if hog.any() else None,
        "crop_psnr_db": float(np.mean([r["psnr"] for r in recs])),
        "crop_ssim": float(np.mean([r["ssim"] for r in recs])),
        "detection_retention": share("ret_checked")[0],
        "detection_retention_first": share("ret_first")[0],
        "detection_base": share("ret_checked")[1],
        "detection_retention_haar": share("ret_haar_checked")[0],
        "detection_retention_haar_first": share("ret_haar_first")[0],
        "detection_base_haar": share("ret_haar_checked")[1],
        "detection_retention_mmod": share("ret_mmod_checked")[0],
        "detection_retention_mmod_first": share("ret_mmod_first")[0],
        "detection_base_mmod": share("ret_mmod_checked")[1],
        # realism on the 128 crop (metrics.detail_ratio, metrics.seam_score), medians
        "detail_ratio_median": median("detail_checked"),
        "detail_ratio_median_first": median("detail_first"),
        "noise_ratio_median": median("noise_checked"),
        "seam_score_median": median("seam_checked"),
        "seam_score_median_first": median("seam_first"),
        # outputs against their sources, both embedded with landmarks predicted on the crop
        "fd_dlib": fd("checked") if recs else float("nan"),
        "fd_dlib_first": fd("first") if recs else float("nan"),
        "threshold": threshold,
        "retries": recs[0]["retries"] if recs else retries,
        "seconds": round(time.time() - t0, 1),
    }


def evaluate_weights(
    model: str,
    corpus: Corpus,
    *,
    weights: Path | None,
    epsilons: Sequence[float],
    check_epsilons: set[float],
    retries: int | None,
    limit: int | None,
    workers: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """:func:`evaluate_holdout` for the ``model`` weights in ``weights`` (None: the shipped
    ones): CIAGAN once, DP once per epsilon (with retries only at ``check_epsilons``)."""
    from veilchain.anonymizer.ciagan import build_ciagan_generator
    from veilchain.anonymizer.dp_latent import build_dp_generator

    results: dict[str, Any] = {}
    if model == "ciagan":
        gen = build_ciagan_generator(weights)
        results["model_hash"] = gen.model_hash()
        results["ciagan"] = evaluate_holdout(
            gen, corpus, retries=retries, limit=limit, workers=workers
        )
        say(json.dumps(results["ciagan"]))
        return results
    results["dp"] = {}
    for eps in epsilons:
        dp = build_dp_generator(epsilon=eps, weights_dir=weights)
        results["model_hash"] = dp.model_hash()
        results["clip"] = dp.clip
        r = evaluate_holdout(
            dp,
            corpus,
            retries=retries if eps in check_epsilons else 0,
            limit=limit,
            workers=workers,
        )
        results["dp"][str(eps)] = r
        say(f"epsilon {eps}: {json.dumps(r)}")
    return results
