"""A motion-blurred copy of a licence-plate benchmark set (scripts/build_plate_set.py).

    python scripts/blur_plate_set.py --data /tmp/p99 --out /tmp/p99-motion --length 15 --angle 45

Every scene is convolved with a line kernel (``--length`` px long at ``--angle`` degrees from
the horizontal, counter-clockwise), as a camera moving during the exposure blurs it; the
ground truth is copied unchanged. The one real photo on the benchmark
(bench/data/plates/real/) has a diagonal blur of this kind; this gives that category a
measurable set (recall, plates published unchanged, false positives) on the synthetic scenes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np


def line_kernel(length: int, angle_deg: float) -> np.ndarray:
    """A normalized line of ``length`` px through the kernel's centre at ``angle_deg``."""
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    a = np.deg2rad(angle_deg)
    dx, dy = np.cos(a) * c, -np.sin(a) * c
    cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
    return k / k.sum()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--length", type=int, default=15)
    ap.add_argument("--angle", type=float, default=45.0)
    args = ap.parse_args(argv)
    if args.length < 2:
        raise SystemExit("--length must be at least 2 px")
    truth = json.loads((args.data / "ground_truth.json").read_text())
    kernel = line_kernel(args.length, args.angle)
    args.out.mkdir(parents=True, exist_ok=True)
    for im in truth["images"]:
        img = cv2.imread(str(args.data / im["file"]))
        out = cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT)
        cv2.imwrite(str(args.out / im["file"]), out, [cv2.IMWRITE_JPEG_QUALITY, 92])
    truth["motion_blur"] = {"length": args.length, "angle": args.angle}
    (args.out / "ground_truth.json").write_text(json.dumps(truth, indent=1))
    print(
        json.dumps({"out": str(args.out), "images": len(truth["images"]), **truth["motion_blur"]})
    )


if __name__ == "__main__":
    main()
