"""How much fine detail a face generator can keep, given the resolution it draws at and the
faces it learnt from (issue "Natural replacement faces", detail ratio target >= 0.30).

Two measurements, both with ``evaluate``'s detail ratio (variance of the Laplacian inside the
inner face of the 128 px aligned crop, output over original):

1. *Resolution ceiling.* An "oracle generator" returns the original face itself, resampled
   to ``r`` px and back up to the 128 px crop as CIAGAN's 64 px output is (bicubic). It runs
   through the pipeline's own paste path (relighting, grain, blending), so its ratio is the
   most a generator drawing at ``r`` px can reach on these photos. It is a measuring device
   only: what it writes is derived from the original and is never published.
2. *Corpus ceiling.* The Laplacian variance inside the inner face of the training corpus's
   aligned crops, over that of the sample photos' faces (median over median): the detail a
   generator that reproduced its training faces perfectly would carry.

    python scripts/detail_ceiling.py --json [--corpus data/corpus_dcgan data/corpus]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import cv2
import numpy as np

from veilchain.anonymizer import metrics as M
from veilchain.anonymizer.alignment import align_face, transform_points
from veilchain.anonymizer.corpus import load_corpus
from veilchain.anonymizer.detectors import CenterFaceDetector, locate_face
from veilchain.anonymizer.faces import HogDetector
from veilchain.anonymizer.image_io import load_image
from veilchain.anonymizer.pipeline import Anonymizer

SAMPLES = Path(__file__).resolve().parents[1] / "src/veilchain/data/samples"
RESOLUTIONS = (32, 48, 64, 96, 128)


class OracleGenerator:
    """The original face resampled to ``res`` px and back: a measuring device, never published."""

    name = "ciagan"

    def __init__(self, res: int):
        self.res = res

    def model_hash(self) -> str:
        return f"oracle-{self.res}"

    def privacy_params(self) -> dict:
        return {"method": "oracle", "res": self.res}

    def generate(self, crop, landmarks, rng, *, embedding=None) -> np.ndarray:
        size = crop.shape[1], crop.shape[0]
        small = cv2.resize(crop, (self.res, self.res), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, size, interpolation=cv2.INTER_CUBIC)


def _inner_variance(crop: np.ndarray, crop_lm: np.ndarray) -> float:
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    lap = cv2.Laplacian(grey, cv2.CV_64F, ksize=3)
    return float(lap[M.inner_face_mask(crop_lm, crop.shape)].var())


def sample_faces() -> list[tuple[np.ndarray, list]]:
    """Each sample photo with the faces the pipeline's detector locates (landmarks trusted)."""
    cnn = CenterFaceDetector()
    photos = []
    for f in sorted(SAMPLES.glob("*.jpg")):
        img = load_image(f)
        dets = [d for d in (locate_face(img, c) for c in cnn.detect_faces(img)) if not d.fallback]
        if dets:
            photos.append((img, dets))
    return photos


def resolution_ceiling(photos) -> dict:
    out = {}
    for res in RESOLUTIONS:
        # the oracle at full resolution returns the face as it was: the partly_unchanged
        # rule, which would cover it, is off here (the ceiling measures the rewrite itself)
        anon = Anonymizer(HogDetector(), OracleGenerator(res), seed=0, secret=b"ceiling",
                          second_look=False, min_changed_share=0.0)  # fmt: skip
        ratios = []
        for img, dets in photos:
            result = anon.anonymize(img, detections=dets).image
            for d in dets:
                a, matrix = align_face(img, d.landmarks)
                b, _ = align_face(result, d.landmarks)
                inner = M.inner_face_mask(transform_points(d.landmarks, matrix), a.shape)
                ratio = M.detail_ratio(a, b, inner)
                if ratio is not None:
                    ratios.append(ratio)
        out[str(res)] = {"detail_ratio_median": round(statistics.median(ratios), 3),
                         "faces": len(ratios)}  # fmt: skip
    return out


def corpus_ceiling(photos, corpus_dir: Path, limit: int) -> dict:
    real = []
    for img, dets in photos:
        for d in dets:
            a, matrix = align_face(img, d.landmarks)
            real.append(_inner_variance(a, transform_points(d.landmarks, matrix)))
    train = load_corpus(corpus_dir).train()
    n = min(limit, len(train.faces))
    corpus = [_inner_variance(train.faces[i], train.landmarks[i]) for i in range(n)]
    return {
        "faces": n,
        "laplacian_variance_median": round(statistics.median(corpus), 1),
        "samples_laplacian_variance_median": round(statistics.median(real), 1),
        "ratio_of_medians": round(statistics.median(corpus) / statistics.median(real), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, nargs="*", default=[])
    ap.add_argument("--limit", type=int, default=1000, help="corpus faces to measure")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    photos = sample_faces()
    result = {"resolution_ceiling": resolution_ceiling(photos),
              "corpus_ceiling": {str(c): corpus_ceiling(photos, c, args.limit)
                                 for c in args.corpus}}  # fmt: skip
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
