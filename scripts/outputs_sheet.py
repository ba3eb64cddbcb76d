"""A picture of what a run published: the images in each folder (e.g. the demo's
``demo-credentials/``, anonymized and signed), scaled to one height, one row per folder.

    python scripts/outputs_sheet.py OUT.png DIR [DIR ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT = 300, 400


def row(folder: Path) -> np.ndarray:
    tiles = []
    for f in sorted(folder.glob("0*.png")):
        img = cv2.imread(str(f))
        if img is None:
            raise SystemExit(f"{f}: not an image")
        img = cv2.resize(img, (WIDTH, round(img.shape[0] * WIDTH / img.shape[1])))[:HEIGHT]
        tiles.append(cv2.copyMakeBorder(img, 0, HEIGHT - img.shape[0], 0, 4, cv2.BORDER_CONSTANT))
    if not tiles:
        raise SystemExit(f"{folder}: no 0*.png images")
    return np.concatenate(tiles, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("folders", type=Path, nargs="+")
    args = ap.parse_args()
    rows = [row(f) for f in args.folders]
    width = max(r.shape[1] for r in rows)
    rows = [cv2.copyMakeBorder(r, 0, 6, 0, width - r.shape[1], cv2.BORDER_CONSTANT) for r in rows]
    cv2.imwrite(str(args.out), np.concatenate(rows, 0))


if __name__ == "__main__":
    main()
