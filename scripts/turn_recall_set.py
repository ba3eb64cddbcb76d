"""A copy of the face-recall set with every image turned by a quarter turn, for faces that
lie sideways or upside down (a person lying down, a photo stored sideways without an EXIF
orientation):

    python scripts/turn_recall_set.py --out /tmp/recall_turned
    python bench/recall.py --json --detectors none --pipeline blur --data /tmp/recall_turned

Image i of the set (base photos and generated images, in ground-truth order) is turned
counter-clockwise by 90 degrees times 1 + i mod 3, so each turn takes a third of every
category; boxes are carried over exactly (a quarter turn moves pixels without resampling).
The set is built first if it is missing (see scripts/build_recall_set.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data" / "recall"


def turn_box(box: list[float], k: int, w: int, h: int) -> list[float]:
    """``box`` (x0, y0, x1, y1) of a ``w`` x ``h`` image in the pixels of ``np.rot90(image, k)``:
    each counter-clockwise quarter turn takes (x, y) of a frame ``fw`` wide to (y, fw - x)."""
    pts = np.array([box[:2], box[2:]], np.float64)
    for step in range(k):
        fw = w if step % 2 == 0 else h
        pts = np.stack([pts[:, 1], fw - pts[:, 0]], axis=1)
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    return [round(float(v), 1) for v in (x0, y0, x1, y1)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="a new folder for the turned set")
    ap.add_argument("--data", type=Path, default=DATA, help="the set to turn (default: ours)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "bench"))
    import recall  # noqa: PLC0415 - the benchmark builds the set when it is missing

    gt = recall.load_set(args.data)
    out_gt = {**gt, "about": gt["about"] + " Turned by scripts/turn_recall_set.py.", "images": []}
    for i, rec in enumerate(gt["images"]):
        k = 1 + i % 3
        img = cv2.imread(str(args.data / rec["file"]), cv2.IMREAD_COLOR)
        if img is None:
            raise SystemExit(f"cannot read {args.data / rec['file']}")
        h, w = img.shape[:2]
        dst = args.out / rec["file"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(dst), np.rot90(img, k), [cv2.IMWRITE_JPEG_QUALITY, 95])
        faces = [{**f, "box": turn_box(f["box"], k, w, h)} for f in rec["faces"]]
        size = {"width": h, "height": w} if k % 2 else {"width": w, "height": h}
        out_gt["images"].append({**rec, **size, "faces": faces, "turned_degrees": 90 * k})
    (args.out / "generated").mkdir(parents=True, exist_ok=True)
    (args.out / "generated" / "ground_truth.json").write_text(json.dumps(out_gt, indent=1))
    for name in ("annotations.json", "SOURCES.md"):
        shutil.copy(args.data / name, args.out / name)
    print(f"{len(out_gt['images'])} images turned into {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
