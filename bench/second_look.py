"""The second look's cost on the 640x480 one-face photos, against another tree's version.

    python bench/second_look.py --json [--against /work/main/src] [--rounds 5]

Each photo goes through ``build_anonymizer("ciagan", identity_check=False)``; the output and
its rewritten-pixel mask are kept, and the sweep (:func:`uncovered_faces`) is then timed on
them alternately with this tree's version (CenterFace with the MTCNN verifier) and the
other tree's ``second_look.py`` (loaded from its file; CenterFace alone, as it shipped), in
one process on one thread, so both see the same load. Reports ms per image for each, their
ratio and what each found uncovered.
"""

from __future__ import annotations

import argparse
import importlib.util
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
    ap.add_argument("--against", type=Path, default=Path("/work/main/src"))
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    import onnxruntime  # noqa: F401 - loaded before torch, as in the pipeline
    import torch

    torch.set_num_threads(1)
    from anonymize import photos_640x480

    import veilchain.anonymizer.pipeline as pipeline
    from veilchain.anonymizer import build_anonymizer
    from veilchain.anonymizer.detectors import CenterFaceDetector, build_detector
    from veilchain.anonymizer.second_look import uncovered_faces

    path = args.against / "veilchain" / "anonymizer" / "second_look.py"
    spec = importlib.util.spec_from_file_location("other_second_look", path)
    assert spec is not None and spec.loader is not None
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)

    kept: list[tuple[np.ndarray, np.ndarray]] = []
    shipped = pipeline.uncovered_faces

    def keep(detector, image, covered, **kw):
        kept.append((image.copy(), covered.copy()))
        return shipped(detector, image, covered, **kw)

    pipeline.uncovered_faces = keep
    anon = build_anonymizer("ciagan", identity_check=False, secret=b"bench-second-look")
    for img in photos_640x480():
        anon.anonymize(img)
    pipeline.uncovered_faces = shipped
    load0 = os.getloadavg()
    ours, theirs = build_detector(), CenterFaceDetector()
    times = {"this": 0.0, "other": 0.0}
    found = {"this": 0, "other": 0}
    for img, covered in kept:  # warm-up
        uncovered_faces(ours, img, covered, threshold=0.15)
        other.uncovered_faces(theirs, img, covered, threshold=0.15)
    for _ in range(args.rounds):
        for img, covered in kept:
            t = time.perf_counter()
            found["this"] += len(uncovered_faces(ours, img, covered, threshold=0.15)[0])
            times["this"] += time.perf_counter() - t
            t = time.perf_counter()
            found["other"] += len(other.uncovered_faces(theirs, img, covered, threshold=0.15)[0])
            times["other"] += time.perf_counter() - t
    n = args.rounds * len(kept)
    out = {
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "against": str(path),
        "images": n,
        "ms_per_image": {k: round(1000 * v / n, 1) for k, v in times.items()},
        "ratio_this_over_other": round(times["this"] / times["other"], 3),
        "uncovered_found": found,
        "loadavg": [round(v, 2) for v in (*load0, *os.getloadavg())],
    }
    print(json.dumps(out, indent=1) if args.json else out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
