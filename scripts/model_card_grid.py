"""The model card's grid: generated faces beside their inputs, for sample-photo faces and
held-out corpus faces, as the pipeline publishes them (checks and retries on).

    python scripts/model_card_grid.py --corpus data/corpus data/corpus_dcgan \
        [--faces 4] [--out docs/img/model_card_grid.png] [--before DIR] [--methods ciagan,dp]

One block per source, side by side: one face from each of the first ``--faces`` sample
photos (files in sorted order, CenterFace detection as in ``veilchain evaluate``), then the
first ``--faces`` held-out faces of each corpus (not chosen by look). Each block's columns:
the input's 128x128 aligned crop (headed "samples" or the corpus folder's name), CIAGAN's,
DP latent's at epsilon 1. Corpus faces are anonymized on their 128 crop with the box and
landmarks the held-out evaluation gives them (:mod:`veilchain.anonymizer.holdout`).
``--before DIR`` adds, left of each method's column, the same method with the weights in DIR
(a before/after picture: e.g. DIR holding the generators' weights without the
super-resolution network, so their faces are upsampled bicubic).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "src" / "veilchain" / "data" / "samples"
#: (column label, method, epsilon)
METHODS = (("CIAGAN", "ciagan", None), ("DP eps 1", "dp", 1.0))


def _sample_faces(n: int):
    """(image, [detection]) for the first trusted face of each of the first ``n`` sample
    photos (files in sorted order)."""
    from veilchain.anonymizer.detectors import CenterFaceDetector, locate_face
    from veilchain.anonymizer.image_io import is_image_path, load_image

    cnn, taken = CenterFaceDetector(), 0
    for f in sorted(p for p in SAMPLES.iterdir() if is_image_path(p)):
        image = load_image(f)
        found = [locate_face(image, c) for c in cnn.detect_faces(image)]
        found = [d for d in found if not d.fallback][:1]
        if found:
            yield image, found
            taken += 1
        if taken >= n:
            return


def _corpus_faces(folder: Path, n: int):
    """(crop, [detection], index) for the first ``n`` held-out faces of a built corpus."""
    from veilchain.anonymizer import faces as F
    from veilchain.anonymizer.corpus import load_corpus

    test = load_corpus(folder).test()
    hog = F.HogDetector(upsample=1, low_light=False)
    for i in range(min(n, len(test.faces))):
        crop, lm = test.faces[i], test.landmarks[i]
        boxes = [b for b, _ in hog.detect_boxes(crop)]
        lo, hi = lm.min(0), lm.max(0)
        box = boxes[0] if boxes else (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
        yield crop, [F.FaceDetection(box, 1.0, F.landmarks_for_box(crop, box))], i


def main(argv: list[str] | None = None) -> Path:
    from veilchain.anonymizer import build_anonymizer
    from veilchain.anonymizer.alignment import align_face
    from veilchain.anonymizer.evaluation_plots import write_contact_sheet

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, nargs="*", default=[], help="built corpora")
    ap.add_argument("--faces", type=int, default=4, help="faces per source")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "model_card_grid.png")
    ap.add_argument("--before", type=Path, default=None, help="weights dir for 'before' columns")
    ap.add_argument("--methods", default="ciagan,dp", help="methods to show (ciagan, dp)")
    args = ap.parse_args(argv)
    anonymizers = {}
    for label, m, eps in (row for row in METHODS if row[1] in args.methods.split(",")):
        if args.before is not None:
            anonymizers[f"{label} before"] = build_anonymizer(
                m, epsilon=eps, secret=b"model card grid", weights_dir=args.before
            )
        anonymizers[label] = build_anonymizer(m, epsilon=eps, secret=b"model card grid")
    blocks = []  # per source: {column label: crops}; the input column names the source
    block: dict[str, list[np.ndarray]] = {"samples": [], **{lb: [] for lb in anonymizers}}
    for image, dets in _sample_faces(args.faces):
        block["samples"] += [align_face(image, d.landmarks)[0] for d in dets]
        for label, anon in anonymizers.items():
            out = anon.anonymize(image, detections=dets).image
            block[label] += [align_face(out, d.landmarks)[0] for d in dets]
    blocks.append(block)
    for folder in args.corpus:
        name = folder.name
        block = {name: [], **{lb: [] for lb in anonymizers}}
        for crop, dets, i in _corpus_faces(folder, args.faces):
            block[name].append(crop)
            for label, anon in anonymizers.items():
                out = anon.anonymize(crop, detections=dets, face_keys=[i]).image
                block[label].append(out)
        blocks.append(block)
    write_contact_sheet(blocks, args.out)
    print(args.out)
    return args.out


if __name__ == "__main__":
    main()
