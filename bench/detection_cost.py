"""Detection and second-look cost on the 640x480 one-face photos, against another tree.

    python bench/detection_cost.py --json [--against /work/main/src] [--rounds 5]

The other tree's ``detectors.py``, ``second_look.py`` and (when it has one) ``mtcnn.py`` are
loaded from their files, its detector gets its own MTCNN verifier as ``build_detector()``
gives ours (so a change to the verifier is timed too); both
trees then run alternately, image by image, in one process on one thread, so both see the
same load (the machine is shared: separate runs minutes apart differ by 2-3x). Timed:
detection of each input photo at the detector's threshold (0.4, the pipeline without the
second look) and at the candidate threshold (0.15, with it), and at 0.15 on the photos
smeared by a 17 px motion blur, on the photos turned by 90, 180 and 270 degrees (in turn) and
on the recall set's face-free backgrounds at 640x480, each tree's detector as its
``build_detector()`` makes it; and the sweep (:func:`uncovered_faces`) on each
``build_anonymizer("ciagan", identity_check=False)`` output with its rewritten-pixel mask.
Reports ms per image for each tree, the ratios and the faces each found.
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


def _load(path: Path):
    """A module of another tree, from its file (its own imports resolve to this tree)."""
    spec = importlib.util.spec_from_file_location(f"other_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _smeared(image: np.ndarray) -> np.ndarray:
    """The photo smeared by a 17 px line at 30 degrees (camera shake, as the recall set's
    motion-blur images are made)."""
    import cv2

    from veilchain.anonymizer.motion import line_kernel

    return cv2.filter2D(image, -1, line_kernel(17, 30.0), borderType=cv2.BORDER_REFLECT)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--against", type=Path, default=Path("/work/main/src"))
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    import cv2
    import onnxruntime  # noqa: F401 - loaded before torch, as in the pipeline
    import torch

    torch.set_num_threads(1)
    from anonymize import photos_640x480

    import veilchain.anonymizer.pipeline as pipeline
    from veilchain.anonymizer import build_anonymizer
    from veilchain.anonymizer.detectors import build_detector
    from veilchain.anonymizer.image_io import load_image
    from veilchain.anonymizer.second_look import uncovered_faces

    folder = args.against / "veilchain" / "anonymizer"
    other_det, other = (_load(folder / f"{n}.py") for n in ("detectors", "second_look"))
    other_verifier = None
    if (folder / "mtcnn.py").is_file():
        other_verifier = _load(folder / "mtcnn.py").MtcnnVerifier()

    photos = photos_640x480()
    kept: list[tuple[np.ndarray, np.ndarray]] = []
    shipped = pipeline.uncovered_faces

    def keep(detector, image, covered, **kw):
        kept.append((image.copy(), covered.copy()))
        return shipped(detector, image, covered, **kw)

    pipeline.uncovered_faces = keep
    anon = build_anonymizer("ciagan", identity_check=False, secret=b"bench-second-look")
    for img in photos:
        anon.anonymize(img)
    pipeline.uncovered_faces = shipped
    load0 = os.getloadavg()
    ours = build_detector()
    theirs = other_det.build_detector()  # with the passes its build_detector turns on
    theirs.verifier = other_verifier  # its own MTCNN file's verifier
    smeared = [_smeared(im) for im in photos]
    turned = [np.ascontiguousarray(np.rot90(im, 1 + i % 3)) for i, im in enumerate(photos)]
    no_face = [
        np.ascontiguousarray(cv2.resize(load_image(p), (640, 480), interpolation=cv2.INTER_AREA))
        for p in sorted((HERE / "data" / "recall" / "base" / "bg").glob("*.jpg"))
    ]

    def detect(detector, threshold: float):
        return lambda im: detector.detect_faces(im, threshold=threshold)

    runs = {
        "detect_0.4": [detect(ours, 0.4), detect(theirs, 0.4)],
        "detect_0.15": [detect(ours, 0.15), detect(theirs, 0.15)],
        "detect_0.15_smeared": [detect(ours, 0.15), detect(theirs, 0.15)],
        "detect_0.15_turned": [detect(ours, 0.15), detect(theirs, 0.15)],
        "detect_0.15_no_face": [detect(ours, 0.15), detect(theirs, 0.15)],
        "second_look": [
            lambda im: uncovered_faces(ours, im[0], im[1], threshold=0.15)[0],
            lambda im: other.uncovered_faces(theirs, im[0], im[1], threshold=0.15)[0],
        ],
    }
    inputs = {
        "detect_0.4": photos,
        "detect_0.15": photos,
        "detect_0.15_smeared": smeared,
        "detect_0.15_turned": turned,
        "detect_0.15_no_face": no_face,
        "second_look": kept,
    }
    out = {
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "against": str(folder),
        "images": args.rounds * len(photos),
    }
    for name, (this, that) in runs.items():
        for im in inputs[name]:  # warm-up
            this(im), that(im)
        times, found = [0.0, 0.0], [0, 0]
        for _ in range(args.rounds):
            for im in inputs[name]:
                for k, run in enumerate((this, that)):
                    t = time.perf_counter()
                    found[k] += len(run(im))
                    times[k] += time.perf_counter() - t
        n = args.rounds * len(inputs[name])
        out[name] = {
            "ms_per_image": {"this": round(1000 * times[0] / n, 1),
                             "other": round(1000 * times[1] / n, 1)},
            "ratio_this_over_other": round(times[0] / times[1], 3),
            "faces_found": {"this": found[0], "other": found[1]},
        }  # fmt: skip
    out["loadavg"] = [round(v, 2) for v in (*load0, *os.getloadavg())]
    print(json.dumps(out, indent=1) if args.json else out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
