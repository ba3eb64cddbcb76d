"""Anonymizer throughput: images/s for 640x480 one-face photos, per method, on N cores.

    python bench/anonymize.py [--json] [--n 20] [--workers 2] [--methods blur,pixelate,...]

dlib's detector and the pipeline are single-threaded, so "on 2 cores" means 2 worker
processes, each running the same Anonymizer with 1 torch/OpenCV thread (``--threads``) on its
share of the images; the figure is the aggregate (images / wall time from the moment every
worker is loaded and warmed up). The same run also measures one worker alone (the
single-process baseline) and reports the ratio. Each method runs with the identity check
(dlib embedding of original and output, as shipped) and without it. The time breakdown
(detect, landmarks, generate, blend, identity) is the mean per image from the pipeline's own
timers. Methods whose weights are missing are reported as unavailable with the reason.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "veilchain" / "data" / "samples"
STAGES = ("detect", "landmarks", "generate", "blend", "identity")
MODES = ("with_identity_check", "without_identity_check")


def photos_640x480(detector) -> list[np.ndarray]:
    """4:3 crops around the face of each single-face sample, resized to 640x480."""
    import cv2

    from veilchain.anonymizer.image_io import load_image

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


# --- worker process -------------------------------------------------------------
def _worker(conn, threads: int, weights_dir: str | None) -> None:
    """Loads the models once, then answers ("prepare", method, mode) and ("go", indices)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import cv2
    import torch

    from veilchain.anonymizer.faces import FaceEmbedder, HogDetector
    from veilchain.anonymizer.pipeline import Anonymizer, build_method
    from veilchain.errors import ModelLoadError

    cv2.setNumThreads(threads)
    torch.set_num_threads(threads)
    detector, embedder = HogDetector(), FaceEmbedder()
    photos = photos_640x480(detector)
    methods: dict = {}
    anon = None
    conn.send(("loaded", None))
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            return
        if msg[0] == "prepare":
            _, name, mode = msg
            try:
                if name not in methods:
                    eps = 1.0 if name in ("dp", "dppix") else None
                    wd = Path(weights_dir) if weights_dir else None
                    methods[name] = build_method(name, epsilon=eps, weights_dir=wd)
            except ModelLoadError as exc:
                conn.send(("unavailable", str(exc)))
                continue
            emb = embedder if mode == MODES[0] else None
            anon = Anonymizer(detector, methods[name], embedder=emb, seed=0)
            anon.anonymize(photos[0])  # warm-up: lazy model loads
            conn.send(("ready", methods[name].model_hash()))
        elif msg[0] == "go":
            rows = []
            for i in msg[1]:
                r = anon.anonymize(photos[i % len(photos)])
                attempts = sum(f.attempts for f in r.faces)
                rows.append((r.report["timing_s"], len(r.faces), len(r.failed), attempts))
            conn.send(("done", rows))


class Pool:
    def __init__(self, workers: int, threads: int, weights_dir: Path | None) -> None:
        ctx = mp.get_context("spawn")  # torch and dlib state must not be forked
        self.conns, self.procs = [], []
        for _ in range(workers):
            parent, child = ctx.Pipe()
            p = ctx.Process(
                target=_worker,
                args=(child, threads, str(weights_dir) if weights_dir else None),
                daemon=True,
            )
            p.start()
            self.conns.append(parent)
            self.procs.append(p)
        for c in self.conns:
            assert c.recv()[0] == "loaded"

    def run(self, name: str, mode: str, n: int, k: int) -> dict:
        """``n`` images on the first ``k`` workers (round robin); aggregate figures."""
        conns = self.conns[:k]
        for c in conns:
            c.send(("prepare", name, mode))
        replies = [c.recv() for c in conns]
        if replies[0][0] == "unavailable":
            return {"unavailable": replies[0][1]}
        t0 = time.perf_counter()
        for j, c in enumerate(conns):
            c.send(("go", list(range(j, n, k))))
        rows = [row for c in conns for row in c.recv()[1]]
        wall = time.perf_counter() - t0
        totals = {s: sum(row[0][s] for row in rows) for s in STAGES}
        faces = sum(row[1] for row in rows)
        return {
            "model_hash": replies[0][1],
            "images_per_s": round(n / wall, 2),
            "ms_per_image": round(1000 * wall / n, 1),
            "breakdown_ms": {s: round(1000 * v / n, 2) for s, v in totals.items()},
            "faces": faces,
            "failed_identity_check": sum(row[2] for row in rows),
            "mean_attempts": round(sum(row[3] for row in rows) / max(faces, 1), 2),
        }

    def close(self) -> None:
        for c in self.conns:
            c.send(("stop",))
        for p in self.procs:
            p.join(10)


def main(argv: list[str] | None = None) -> dict:
    from veilchain.anonymizer.pipeline import METHODS

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--n", type=int, default=20, help="images per method and mode")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--workers", type=int, default=2, help="worker processes (the cores used)")
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads per worker")
    ap.add_argument("--weights-dir", type=Path, default=None, help="CIAGAN / DP weights")
    args = ap.parse_args(argv)
    if args.workers < 1 or args.threads < 1 or args.n < 1:
        ap.error("--workers, --threads and --n must be >= 1")

    result: dict = {
        "image_size": [640, 480],
        "images": args.n,
        "workers": args.workers,
        "threads_per_worker": args.threads,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, python {sys.version.split()[0]}",
        "weights_dir": str(args.weights_dir) if args.weights_dir else "shipped",
        "load_avg_before": [round(v, 2) for v in os.getloadavg()],
        "methods": {},
        "unavailable": {},
    }
    pool = Pool(args.workers, args.threads, args.weights_dir)
    try:
        for name in args.methods.split(","):
            entry: dict = {}
            for mode in MODES:
                single = pool.run(name, mode, args.n, 1)
                if "unavailable" in single:
                    result["unavailable"][name] = single["unavailable"]
                    break
                entry["model_hash"] = single.pop("model_hash")
                par = pool.run(name, mode, args.n, args.workers) if args.workers > 1 else single
                par.pop("model_hash", None)
                par["single_process"] = {
                    k: single[k] for k in ("images_per_s", "ms_per_image", "breakdown_ms")
                }
                par["speedup_vs_single"] = round(par["images_per_s"] / single["images_per_s"], 2)
                entry[mode] = par
            else:
                result["methods"][name] = entry
                if not args.json:
                    w, wo = entry[MODES[0]], entry[MODES[1]]
                    print(
                        f"{name:9s} {wo['images_per_s']:7.2f} img/s without check "
                        f"(x{wo['speedup_vs_single']} vs 1 process), {w['images_per_s']:6.2f} "
                        f"with (x{w['speedup_vs_single']}); ms: {w['breakdown_ms']}",
                        flush=True,
                    )
    finally:
        pool.close()
    result["load_avg_after"] = [round(v, 2) for v in os.getloadavg()]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, why in result["unavailable"].items():
            print(f"{name:9s} unavailable: {why}")
    return result


if __name__ == "__main__":
    main()
