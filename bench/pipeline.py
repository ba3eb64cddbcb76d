"""The trust pipeline's figures in one run: encryption, CIDs, gas, and register + verify of
1,000 images on embedded defaults.

    python bench/pipeline.py            # tables on stderr, summary on stdout
    python bench/pipeline.py --json     # one JSON document on stdout

Encryption, CID and gas figures come from bench/crypto.py, bench/cid.py and bench/gas.py (run
as subprocesses with --json, so each measures in a fresh interpreter). The register/verify
part makes N distinct 320x240 photos from the shipped samples (crops, flips, brightness),
registers them with the blur method (identity check on) on a fresh embedded chain, block
store and SQLite, then verifies the data set without any key.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TARGET_VERIFY_S = 10.0


def _sub_bench(name: str, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, str(HERE / f"{name}.py"), "--json", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    print(proc.stderr, file=sys.stderr)
    return json.loads(proc.stdout)


def make_photos(out: Path, n: int, seed: int = 0) -> list[Path]:
    """N distinct 320x240 variants of the sample photos (their faces stay detectable)."""
    import cv2

    from veilchain.anonymizer.image_io import load_image, save_image
    from veilchain.platform.demo import samples_dir

    rng = np.random.default_rng(seed)
    sources = [load_image(p) for p in sorted(samples_dir().glob("*.jpg"))]
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = sources[i % len(sources)]
        h, w = img.shape[:2]
        s = rng.uniform(0.85, 1.0)
        ch, cw = int(h * s), int(w * s)
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = cv2.resize(img[y : y + ch, x : x + cw], (320, 240), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crop = np.clip(crop.astype(np.float32) * rng.uniform(0.8, 1.2), 0, 255).astype(np.uint8)
        path = out / f"photo_{i:05d}.png"
        save_image(np.ascontiguousarray(crop), path)
        paths.append(path)
    return paths


def bench_register_verify(n: int) -> dict:
    from veilchain.config import Settings
    from veilchain.platform.wiring import build_service

    with tempfile.TemporaryDirectory(prefix="veilchain-bench-") as tmp:
        tmp = Path(tmp)
        make_photos(tmp / "photos", n)
        t = time.perf_counter()
        svc = build_service(Settings(data_dir=tmp / "data", env="test"))
        open_s = time.perf_counter() - t

        last = [0.0]

        def progress(done: int, total: int, stage: str) -> None:
            now = time.perf_counter()
            if now - last[0] > 10:
                print(f"  {stage}: {done}/{total}", file=sys.stderr)
                last[0] = now

        t = time.perf_counter()
        res = svc.register(
            [tmp / "photos"], name="bench", method="blur", allow_recognizable=True,
            progress=progress,
        )  # fmt: skip
        register_s = time.perf_counter() - t
        t = time.perf_counter()
        report = svc.verify(res.dataset_id)
        verify_s = time.perf_counter() - t
        ver = svc.chain.get_version(res.dataset_id, 1)
        return {
            "images": n,
            "method": "blur",
            "open_service_s": round(open_s, 2),
            "register_s": round(register_s, 2),
            "register_images_per_s": round(n / register_s, 1),
            "verify_s": round(verify_s, 2),
            "verify_ok": report.ok,
            "verify_target_s": TARGET_VERIFY_S,
            "verify_meets_target": verify_s <= TARGET_VERIFY_S,
            "faces": res.faces,
            "faces_still_matched": res.faces_failed,
            "record_count_on_chain": ver.record_count,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--images", type=int, default=1_000)
    parser.add_argument("--skip", default="", help="comma list of: crypto,cid,gas,register")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    result: dict = {"load_avg_1m": os.getloadavg()[0]}
    if "crypto" not in skip:
        result["crypto"] = _sub_bench("crypto")
    if "cid" not in skip:
        result["cid"] = _sub_bench("cid")
    if "gas" not in skip:
        result["gas"] = _sub_bench("gas")
    if "register" not in skip:
        result["register_verify"] = bench_register_verify(args.images)
        print(json.dumps(result["register_verify"], indent=2), file=sys.stderr)
    print(json.dumps(result, indent=2 if args.json else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
