"""``evaluate``: run methods over a folder of photos and measure privacy and utility.

Every method anonymizes the same detected faces (detected once on the originals). By default
the pipeline's checks and retries are OFF: the identity check uses the same dlib model as the
re-identification metric, so the figures describe the method itself. ``check=True`` measures
what the pipeline publishes (checks on). Writes ``evaluation.json``, ``privacy_utility.png``
(re-identification and face SSIM over epsilon for dp / dppix), ``before_after.png`` and
``contact_sheet.png`` (one row per face: the original crop, then each method's).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from veilchain.anonymizer import metrics as M
from veilchain.anonymizer.alignment import (
    align_face,
    canonical_template,
    transform_points,
)
from veilchain.anonymizer.detectors import CenterFaceDetector, landmark_box, locate_face
from veilchain.anonymizer.embedding import FaceEmbedder
from veilchain.anonymizer.evaluation_plots import (
    plot_before_after,
    plot_privacy_utility,
    write_contact_sheet,
)
from veilchain.anonymizer.faces import (
    FaceDetection,
    HogDetector,
    haar_face_boxes,
    mmod_face_boxes,
)
from veilchain.anonymizer.features import parse_features
from veilchain.anonymizer.image_io import is_image_path, load_image
from veilchain.anonymizer.methods import METHODS, build_method
from veilchain.anonymizer.pipeline import Anonymizer
from veilchain.errors import InputError, ModelLoadError, VeilchainError

DEFAULT_EPSILONS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0)
EPSILON_METHODS = ("dp", "dppix")
#: Columns of the CLI table: (report key, short header).
SUMMARY_COLUMNS = (
    ("method", "method"),
    ("features", "features"),
    ("epsilon", "eps"),
    ("faces", "faces"),
    ("reid_rate", "re-id"),
    ("detection_retention", "det"),
    ("detection_retention_haar", "detHaar"),
    ("detection_retention_cnn", "detCNN"),
    ("detection_retention_mmod", "detMMOD"),
    ("landmark_nme", "lm/iod"),
    ("detail_ratio_median", "detail"),
    ("seam_score_median", "seam"),
    ("psnr", "PSNR"),
    ("ssim", "SSIM"),
    ("psnr_face", "PSNRf"),
    ("ssim_face", "SSIMf"),
    ("fd_dlib", "FDdlib"),
)


def _fallback_detection(detector: HogDetector, image: np.ndarray) -> FaceDetection | None:
    """For small aligned crops HOG often finds nothing: use the canonical face box."""
    h, w = image.shape[:2]
    if max(h, w) > 256:
        return None
    tpl = canonical_template(min(h, w))
    box = (*tpl.min(0), *tpl.max(0))
    return FaceDetection(box, 0.0, detector.landmarks(image, box))


def _read_labels(data_dir: Path) -> dict[str, str]:
    """``labels.csv`` (optional): ``file,label`` lines naming the person in each photo."""
    path = data_dir / "labels.csv"
    if not path.is_file():
        return {}
    labels = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#") and "," in line:
            name, label = (v.strip() for v in line.split(",", 1))
            labels[name] = label
    return labels


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else None


@dataclass
class _Originals:
    """The photos' faces, detected and embedded once for every method."""

    images: list[tuple[Path, np.ndarray, bool]]  # (file, pixels, canonical-box fallback)
    dets: list[list[FaceDetection]]
    skipped: list[str]
    gallery: np.ndarray  # (faces, 128) dlib embeddings
    labels: list[str]  # one identity per gallery face
    haar: list[list[tuple[float, float, float, float]]]  # OpenCV Haar boxes per image
    cnn: list[list[tuple[float, float, float, float]]]  # CenterFace boxes per image
    # per image, per face: dlib MMOD's box on the original around the face, None if not found
    mmod: list[list[tuple[float, float, float, float] | None]]


_PER_FACE = ("retention", "retention_haar", "retention_cnn", "retention_mmod", "nme",
             "psnr_face", "ssim_face", "dhash_face", "detail", "noise", "seam")  # fmt: skip
_PER_IMAGE = ("psnr", "ssim", "l0", "l2", "ald0", "ald2", "aldinf")


def evaluate(
    data_dir: str | Path,
    methods: Sequence[str] | None,
    epsilons: Sequence[float] | None,
    out_dir: str | Path,
    *,
    seed: int = 0,
    limit: int | None = None,
    weights_dir: Path | None = None,
    detector: HogDetector | None = None,
    embedder: FaceEmbedder | None = None,
    check: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Evaluate ``methods`` on the photos in ``data_dir``; returns (and writes) the report.

    By default each method's first output is measured (no checks); ``check=True`` measures
    what the pipeline publishes: identity and (for generators) re-detection and landmark
    checks, with retries. Detection retention is given for dlib's HOG (the detector the
    generator's still-a-face check uses), for OpenCV's Haar cascade (used by no check), for
    CenterFace (the pipeline's detector, which no generator check uses) and for dlib's CNN
    (MMOD; used by nothing in the anonymizer), searched around each face."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    methods = _checked_methods(methods)
    epsilons = [float(e) for e in (epsilons or DEFAULT_EPSILONS)]
    files = _image_files(data_dir, limit)
    detector = detector or HogDetector()
    embedder = embedder or FaceEmbedder()
    configs = [
        (m, e)
        for m in methods
        for e in (epsilons if m.split(":")[0] in EPSILON_METHODS else [None])
    ]
    step = [0]

    def tick(msg: str) -> None:
        step[0] += 1
        if progress is not None:
            progress(msg, step[0], len(files) * (1 + len(configs)))

    originals = _originals(files, data_dir, detector, embedder, tick)
    results, unavailable = [], []
    samples: dict[str, dict[str, np.ndarray]] = {}  # face views per file, per method
    crops: dict[str, list[np.ndarray]] = {"original": _face_crops(originals, None)}
    for method, eps in configs:
        label = method if eps is None else f"{method} eps={eps:g}"
        base, _, subset = method.partition(":")
        features = parse_features(subset)
        try:
            built = build_method(
                base, epsilon=eps, seed=seed, weights_dir=weights_dir, features=features
            )
            anon = Anonymizer(
                detector,
                built,
                embedder=embedder if check else None,
                seed=seed,
                secret=f"evaluate seed {seed}".encode(),
            )
        except (ModelLoadError, ImportError) as exc:
            unavailable.append(f"{label}: {exc}")
            step[0] += len(originals.images)
            continue
        row, outputs = _evaluate_method(anon, originals, detector, embedder, samples, label, tick)
        row.update(method=base, features=list(features) or None, epsilon=eps,
                   identity_check=check)  # fmt: skip
        results.append(row)
        if eps is None or eps == 1.0:
            crops[label] = _face_crops(originals, outputs)

    out_dir.mkdir(parents=True, exist_ok=True)
    report = _report(data_dir, out_dir, originals, results, unavailable, seed, check)
    plot_privacy_utility(results, EPSILON_METHODS, out_dir / "privacy_utility.png")
    plot_before_after(samples, out_dir / "before_after.png")
    write_contact_sheet(crops, out_dir / "contact_sheet.png")
    (out_dir / "evaluation.json").write_text(json.dumps(report, indent=2, default=_json_default))
    return json.loads(json.dumps(report, default=_json_default))


def _checked_methods(methods: Sequence[str] | None) -> list[str]:
    """The method names (default: the baselines), each known and with known features."""
    methods = list(methods or ("blur", "pixelate", "mask", "dppix"))
    for m in methods:  # "ciagan:eyes+nose": only those features regenerated
        if m.split(":")[0] not in METHODS:
            raise InputError(f"unknown method {m!r}; use one of {', '.join(METHODS)}")
        parse_features(m.partition(":")[2])
    return methods


def _image_files(data_dir: Path, limit: int | None) -> list[Path]:
    """The images under ``data_dir``, sorted, the first ``limit`` of them when given."""
    if not data_dir.is_dir():
        raise InputError(f"{data_dir}: not a folder")
    files = sorted(p for p in data_dir.rglob("*") if p.is_file() and is_image_path(p))
    files = files[:limit] if limit else files
    if not files:
        raise InputError(f"{data_dir}: no images found")
    return files


def _originals(files, data_dir: Path, detector, embedder, tick) -> _Originals:
    """Detect (once) and embed the faces of every readable photo."""
    cnn = CenterFaceDetector()
    images, dets, skipped = [], [], []
    for f in files:
        try:
            img = load_image(f)
        except VeilchainError as exc:
            skipped.append(str(exc))
            tick("originals")
            continue
        # the pipeline's own detection; faces whose landmarks cannot be trusted (profiles,
        # tiny faces) fall back to a head region and have no identity to measure
        found = [d for d in (locate_face(img, f) for f in cnn.detect_faces(img)) if not d.fallback]
        fallback = False
        if not found:
            fb = _fallback_detection(detector, img)
            found, fallback = ([fb], True) if fb is not None else ([], False)
        if found:
            images.append((f, img, fallback))
            dets.append(found)
        else:
            skipped.append(f"{f}: no face found")
        tick("originals")
    gallery = np.concatenate(
        [
            embedder.embed(img, [d.landmarks for d in ds])
            for (_, img, _), ds in zip(images, dets, strict=True)
        ]
        or [np.zeros((0, 128), np.float32)]
    )
    # identity labels: from labels.csv when given (several photos of one person count as one
    # identity), else every face is its own identity
    names = _read_labels(data_dir)
    labels = [
        names.get(f"{f.name}#{i}", names.get(f.name, f"{f.name}#{i}"))
        if len(ds) > 1
        else names.get(f.name, f"{f.name}#{i}")
        for (f, _, _), ds in zip(images, dets, strict=True)
        for i in range(len(ds))
    ]
    return _Originals(
        images, dets, skipped, gallery, labels,
        haar=[haar_face_boxes(img) for _, img, _ in images],  # once, not per method
        cnn=[[f.box for f in cnn.detect_faces(img)] for _, img, _ in images],
        mmod=[[_mmod_box(img, d) for d in ds]
              for (_, img, _), ds in zip(images, dets, strict=True)],
    )  # fmt: skip


def _mmod_box(image: np.ndarray, det: FaceDetection) -> tuple[float, float, float, float] | None:
    """dlib MMOD's box for this face: of those found around it, the one overlapping it most."""
    found = mmod_face_boxes(image, around=det.box)
    best = max(found, key=lambda b: M.box_iou(b, det.box), default=None)
    return best if best is not None and M.box_iou(best, det.box) > 0 else None


def _evaluate_method(anon, originals: _Originals, detector, embedder, samples, label, tick):
    """One method over every photo: the summary row and the outputs."""
    cnn = CenterFaceDetector()
    t0 = time.perf_counter()
    per: dict[str, list] = {k: [] for k in (*_PER_FACE, *_PER_IMAGE)}
    probes: list[np.ndarray] = []
    outputs = []
    for (f, img, fallback), ds, haar, cnn_boxes, mmod in zip(
        originals.images, originals.dets, originals.haar, originals.cnn, originals.mmod,
        strict=True,
    ):  # fmt: skip
        out = anon.anonymize(img, detections=ds).image
        outputs.append(out)
        if f.name not in samples and len(samples) < 4:
            samples[f.name] = {"original": _face_view(img, ds)}
        if f.name in samples:
            samples[f.name][label] = _face_view(out, ds)
        if not fallback:  # per face: each original (HOG-style) box found again or not
            after = [b for b, _ in detector.detect_boxes(detector.prepare(out))]
            per["retention"] += [M.detection_retention([landmark_box(d)], after) for d in ds]
        haar_after = haar_face_boxes(out) if haar else []
        per["retention_haar"] += [M.detection_retention([b], haar_after) for b in haar]
        cnn_after = [g.box for g in cnn.detect_faces(out)] if cnn_boxes else []
        per["retention_cnn"] += [M.detection_retention([b], cnn_after) for b in cnn_boxes]
        per["retention_mmod"] += [
            M.detection_retention([b], mmod_face_boxes(out, around=d.box))
            for d, b in zip(ds, mmod, strict=True)
            if b is not None
        ]
        new_lms = [detector.landmarks(out, landmark_box(d)) for d in ds]
        probes.append(embedder.embed(out, new_lms))
        for d, nlm in zip(ds, new_lms, strict=True):
            _measure_face(per, img, out, d, nlm)
        for key, fn in (("psnr", M.psnr), ("ssim", M.ssim), ("l0", M.l0_distance),
                        ("l2", M.l2_distance)):  # fmt: skip
            per[key].append(fn(img, out))
        for key, p in (("ald0", 0), ("ald2", 2), ("aldinf", np.inf)):
            per[key].append(M.ald_p(img, out, p))
        tick(label)
    probe_matrix = np.concatenate(probes) if probes else np.zeros((0, 128))
    reid = M.reidentification(originals.gallery, probe_matrix, gallery_labels=originals.labels)
    row = {
        "faces": len(originals.gallery),
        "reid_rate": reid["rate"],
        "own_match_rate": _mean([float(d < M.DLIB_THRESHOLD) for d in reid["distances"]]),
        "mean_identity_distance": _mean(reid["distances"]),
        "detection_retention": _mean(per["retention"]),
        "detection_retention_haar": _mean(per["retention_haar"]),
        "detection_retention_cnn": _mean(per["retention_cnn"]),
        "detection_retention_mmod": _mean(per["retention_mmod"]),
        "detection_base_mmod": len(per["retention_mmod"]),
        "landmark_nme": _mean(per["nme"]),
        "detail_ratio_median": _median(per["detail"]),
        "noise_ratio_median": _median(per["noise"]),
        "seam_score_median": _median(per["seam"]),
        "psnr": _mean(per["psnr"]),
        "ssim": _mean(per["ssim"]),
        "psnr_face": _mean(per["psnr_face"]),
        "ssim_face": _mean(per["ssim_face"]),
        "dhash_face": _mean(per["dhash_face"]),
        "l0": _mean(per["l0"]),
        "l2": _mean(per["l2"]),
        "ald_0": _mean(per["ald0"]),
        "ald_2": _mean(per["ald2"]),
        "ald_inf": _mean(per["aldinf"]),
        "fd_dlib": M.dlib_embedding_fd(originals.gallery, probe_matrix),
        "model_hash": anon.model_hash(),
        "privacy_params": anon.privacy_params(),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return row, outputs


def _measure_face(per, img, out, det: FaceDetection, new_lm) -> None:
    """Per-face figures on 128x128 crops aligned with the original landmarks."""
    a, matrix = align_face(img, det.landmarks)
    b, _ = align_face(out, det.landmarks)
    per["nme"].append(M.landmark_displacement(det.landmarks, new_lm))
    per["psnr_face"].append(M.psnr(a, b))
    per["ssim_face"].append(M.ssim(a, b))
    per["dhash_face"].append(M.dhash_distance(a, b))
    crop_lm = transform_points(det.landmarks, matrix)
    inner = M.inner_face_mask(crop_lm, a.shape)
    per["detail"].append(M.detail_ratio(a, b, inner))
    per["noise"].append(M.noise_ratio(a, b, inner))
    per["seam"].append(M.seam_score(a, b, M.changed_region(a, b)))


def _face_crops(originals: _Originals, outputs: list[np.ndarray] | None) -> list[np.ndarray]:
    """Every face as a 128x128 crop aligned with its original landmarks."""
    images = [img for _, img, _ in originals.images] if outputs is None else outputs
    return [
        align_face(img, d.landmarks)[0]
        for img, ds in zip(images, originals.dets, strict=True)
        for d in ds
    ]


def _report(data_dir, out_dir, originals: _Originals, results, unavailable, seed, check):
    return {
        "data_dir": str(data_dir),
        "images": len(originals.images),
        "faces": len(originals.gallery),
        "labelled": bool(_read_labels(data_dir)),
        "skipped": originals.skipped,
        "seed": seed,
        "identity_check": check,
        "notes": [
            "re-identification: rank-1 against all original faces, dlib 128-d, threshold 0.6; "
            "identities from labels.csv when present, else one identity per face",
            "own_match_rate: share of anonymized faces within 0.6 of their own original",
            "PSNR/SSIM full image over the whole frame; face variants on 128x128 crops aligned "
            "with the original landmarks",
            "detail_ratio: Laplacian variance inside the inner face, output over original "
            "(median over faces); noise raises it as well as real detail",
            "noise_ratio: noise level of the flattest part of the inner face (grey), output "
            "over original (median); above 1 the output is noisier than the original there",
            "seam_score: gradient energy in a 3 px band each side of the replaced region's "
            "border, output over original (median); about 1 = no visible seam",
            "detection_retention_cnn: CenterFace (the pipeline's detector, not used by the "
            "generators' own checks) finds the face again",
            "detection_retention_mmod: dlib's CNN (MMOD) face detector, which no part of the "
            "anonymizer uses, finds the face again (IoU >= 0.5) in the region around it; base: "
            "the faces it finds on the originals (detection_base_mmod)",
            "fd_dlib is a Frechet distance over dlib embeddings, not FID",
            (
                "checks on: outputs passed the identity check, which uses the same dlib model "
                "as the re-identification metric, so re-id here is not an independent measure"
                if check
                else "identity-check retries off (the check uses the same dlib model as the metric)"
            ),
        ],
        "results": results,
        "unavailable": unavailable,
        "files": {
            "json": str(out_dir / "evaluation.json"),
            "curve": str(out_dir / "privacy_utility.png"),
            "grid": str(out_dir / "before_after.png"),
            "contact_sheet": str(out_dir / "contact_sheet.png"),
        },
    }


def _median(values) -> float | None:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.median(vals)) if vals else None


def _face_view(image: np.ndarray, dets: Sequence[FaceDetection]) -> np.ndarray:
    """The region around all faces (boxes grown 60 %), for the before/after grid."""
    h, w = image.shape[:2]
    x0 = min(d.box[0] - 0.6 * d.width for d in dets)
    y0 = min(d.box[1] - 0.6 * d.height for d in dets)
    x1 = max(d.box[2] + 0.6 * d.width for d in dets)
    y1 = max(d.box[3] + 0.6 * d.height for d in dets)
    return image[max(0, int(y0)) : min(h, int(y1)), max(0, int(x0)) : min(w, int(x1))]


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    return str(v)
