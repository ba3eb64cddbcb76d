"""What the second look's view of a dark output as it is (``uncovered_faces(..., also=)``)
and ``visible_cover`` cost, on the recall set's low-light images.

    python bench/dark_sweep_cost.py --json [--rounds 3]

Each low-light image goes through ``build_anonymizer("blur", identity_check=False)``; the
sweep's inputs (brightened output, rewritten-pixel mask, the output as it is) are kept and
the sweep then runs on them with and without the second view, alternately, image by image,
on one thread (the machine is shared, so both see the same load). ``visible_cover`` is timed
on a dark 160x130 blurred region (a 150 px face's head cover), where it adds its step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    import onnxruntime  # noqa: F401 - loaded before torch, as in the pipeline
    import torch

    torch.set_num_threads(1)
    import recall

    import veilchain.anonymizer.pipeline as pipeline
    from veilchain.anonymizer.baselines import GaussianBlur
    from veilchain.anonymizer.replacement import visible_cover
    from veilchain.anonymizer.second_look import uncovered_faces

    gt = recall.load_set()
    anon, _ = recall._build_anonymizer("blur")
    kept = []
    shipped = pipeline.uncovered_faces

    def keep(detector, image, covered, **kw):
        kept.append((detector, image.copy(), covered.copy(), kw.get("also")))
        return shipped(detector, image, covered, **kw)

    pipeline.uncovered_faces = keep
    for rec in gt["images"]:
        if rec["category"] == "low_light":
            anon.anonymize(np.ascontiguousarray(recall._load(rec, recall.DATA)[..., ::-1]))
    pipeline.uncovered_faces = shipped
    load0 = os.getloadavg()
    times, found = [0.0, 0.0], [0, 0]
    for _ in range(args.rounds):
        for detector, image, covered, also in kept:
            for k, view in enumerate((also, None)):
                t = time.perf_counter()
                missed, _ = uncovered_faces(detector, image, covered, threshold=0.15, also=view)
                times[k] += time.perf_counter() - t
                found[k] += len(missed)
    n = args.rounds * len(kept)
    rng = np.random.default_rng(0)
    region = rng.integers(0, 30, (160, 130, 3), dtype=np.uint8)
    mask = np.ones(region.shape[:2], bool)
    blur = GaussianBlur()
    new = blur.apply(region.copy(), mask, 60.0, rng)
    t = time.perf_counter()
    for _ in range(50):
        visible_cover(region, new, mask, blur, rng)
    cover_ms = 1000 * (time.perf_counter() - t) / 50
    out = {
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "images": len(kept),
        "sweep_ms_per_image": {
            "with_the_view_as_it_is": round(1000 * times[0] / n, 1),
            "brightened_only": round(1000 * times[1] / n, 1),
        },
        "uncovered_faces_found": {"with": found[0], "without": found[1]},
        "visible_cover_ms_dark_160x130": round(cover_ms, 2),
        "loadavg": [round(v, 2) for v in (*load0, *os.getloadavg())],
    }
    print(json.dumps(out, indent=1) if args.json else out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
