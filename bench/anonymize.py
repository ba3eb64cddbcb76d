"""Anonymizer throughput: images/s for 640x480 one-face photos, per method, on 2 threads.

    python bench/anonymize.py [--json] [--n 20] [--methods blur,pixelate,...]

Each method runs twice: with the identity check (dlib embedding of original and output, as
shipped) and without it. The time breakdown (detect, landmarks, generate, blend, identity) is
the mean per image from the pipeline's own timers. Methods whose weights are missing are
reported as unavailable with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from veilchain.anonymizer.faces import FaceDetector, FaceEmbedder  # noqa: E402
from veilchain.anonymizer.image_io import load_image  # noqa: E402
from veilchain.anonymizer.pipeline import METHODS, Anonymizer, build_method  # noqa: E402
from veilchain.errors import ModelLoadError  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "veilchain" / "data" / "samples"
STAGES = ("detect", "landmarks", "generate", "blend", "identity")


def photos_640x480(detector: FaceDetector) -> list[np.ndarray]:
    """4:3 crops around the face of each single-face sample, resized to 640x480."""
    out = []
    for name in ("obama.jpg", "biden.jpg", "obama3.jpg", "astronaut.jpg", "obama2.jpg"):
        img = load_image(SAMPLES / name)
        x0, y0, x1, y1 = detector.detect(img)[0].box
        h, w = img.shape[:2]
        cw = min(w, int(h * 4 / 3))
        ch = int(cw * 3 / 4)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        left = int(np.clip(cx - cw / 2, 0, w - cw))
        top = int(np.clip(cy - ch / 2, 0, h - ch))
        crop = img[top : top + ch, left : left + cw]
        out.append(cv2.resize(crop, (640, 480), interpolation=cv2.INTER_AREA))
    return out


def run(anon: Anonymizer, photos: list[np.ndarray], n: int) -> dict:
    anon.anonymize(photos[0])  # warm-up: lazy model loads
    totals = dict.fromkeys(STAGES, 0.0)
    faces = failed = 0
    t0 = time.perf_counter()
    for i in range(n):
        r = anon.anonymize(photos[i % len(photos)])
        for k in STAGES:
            totals[k] += r.report["timing_s"][k]
        faces += len(r.faces)
        failed += len(r.failed)
    wall = time.perf_counter() - t0
    return {
        "images_per_s": round(n / wall, 2),
        "ms_per_image": round(1000 * wall / n, 1),
        "breakdown_ms": {k: round(1000 * v / n, 2) for k, v in totals.items()},
        "faces": faces,
        "failed_identity_check": failed,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--n", type=int, default=20, help="images per method and mode")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights-dir", type=Path, default=None, help="CIAGAN / DP weights")
    args = ap.parse_args(argv)

    cv2.setNumThreads(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:  # pragma: no cover
        pass
    detector, embedder = FaceDetector(), FaceEmbedder()
    photos = photos_640x480(detector)
    result: dict = {
        "image_size": [640, 480],
        "images": args.n,
        "threads": args.threads,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, python {sys.version.split()[0]}",
        "weights_dir": str(args.weights_dir) if args.weights_dir else "shipped",
        "load_avg_before": [round(v, 2) for v in os.getloadavg()],
        "methods": {},
        "unavailable": {},
    }
    for name in args.methods.split(","):
        try:
            eps = 1.0 if name in ("dp", "dppix") else None
            method = build_method(name, epsilon=eps, weights_dir=args.weights_dir)
        except ModelLoadError as exc:
            result["unavailable"][name] = str(exc)
            continue
        entry = {}
        for mode, emb in (("with_identity_check", embedder), ("without_identity_check", None)):
            anon = Anonymizer(detector, method, embedder=emb, seed=0)
            entry[mode] = run(anon, photos, args.n)
        entry["model_hash"] = method.model_hash()
        result["methods"][name] = entry
        if not args.json:
            w, wo = entry["with_identity_check"], entry["without_identity_check"]
            print(
                f"{name:9s} {wo['images_per_s']:7.2f} img/s without check, "
                f"{w['images_per_s']:6.2f} with; ms: {w['breakdown_ms']}",
                flush=True,
            )
    result["load_avg_after"] = [round(v, 2) for v in os.getloadavg()]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, why in result["unavailable"].items():
            print(f"{name:9s} unavailable: {why}")
    return result


if __name__ == "__main__":
    main()
