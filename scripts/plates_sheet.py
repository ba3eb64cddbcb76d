"""Before/after sheet of street scenes with faces and licence plates (docs/img/plates.png).

    python scripts/plates_sheet.py [--out docs/img/plates.png] [--seed 7]

Three scenes from the plate benchmark's generator (scripts/build_plate_set.py), each with a
sample photo's person pasted on the pavement, are anonymized with the defaults a registration
uses (pixelate, identifiers faces+plates, plate epsilon 1). Left: the input with a green
frame on each plate found (orange: found by the second look); right: what is published.
Below, every plate zoomed, before and after. The sample photos are the project's own
(src/veilchain/data/samples, see SOURCES.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import build_plate_set as gen  # noqa: E402

SAMPLES = ROOT / "src" / "veilchain" / "data" / "samples"


def _with_person(scene: np.ndarray, person: np.ndarray, x: int) -> np.ndarray:
    h = 300
    p = cv2.resize(person, (int(person.shape[1] * h / person.shape[0]), h))
    y = 40
    scene[y : y + h, x : x + p.shape[1]] = p[:, : max(0, min(p.shape[1], scene.shape[1] - x))]
    return scene


def main(argv=None) -> None:
    from veilchain.anonymizer import build_anonymizer, load_image

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "plates.png")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    bgs = [cv2.imread(str(p))[..., ::-1] for p in sorted(gen.BG_DIR.glob("*.jpg"))]
    people = [load_image(SAMPLES / n) for n in ("obama.jpg", "biden.jpg", "obama2.jpg")]
    anon = build_anonymizer(
        "pixelate", identity_check=False, identifiers="faces,plates", secret=b"plates-sheet" * 3
    )
    rows, zooms = [], []
    for k in range(3):
        scene = np.zeros((0,))
        while not scene.size:  # a scene with at least one plate
            scene, plates = gen.make_scene(k, rng, bgs)
            if not plates:
                scene = np.zeros((0,))
        scene = _with_person(np.ascontiguousarray(scene), people[k], 40 + 400 * k)
        res = anon.anonymize(scene)
        before = scene.copy()
        for p in res.plates:
            q = np.round(np.array(p.quad)).astype(np.int32)
            colour = (0, 220, 0) if p.found_by == "detection" else (255, 140, 0)
            cv2.polylines(before, [q], True, colour, 2)
            x0, y0, x1, y1 = (int(v) for v in p.box)
            pad = 6
            x0, y0 = max(0, x0 - pad), max(0, y0 - pad)
            x1, y1 = min(scene.shape[1], x1 + pad), min(scene.shape[0], y1 + pad)
            pair = np.hstack(
                [
                    scene[y0:y1, x0:x1],
                    np.full((y1 - y0, 4, 3), 255, np.uint8),
                    res.image[y0:y1, x0:x1],
                ]
            )
            zooms.append(cv2.resize(pair, (int(pair.shape[1] * 80 / pair.shape[0]), 80)))
        half = lambda im: cv2.resize(im, (640, 360), interpolation=cv2.INTER_AREA)  # noqa: E731
        rows.append(np.hstack([half(before), np.full((360, 8, 3), 255, np.uint8), half(res.image)]))
    sheet = np.vstack([np.vstack([r, np.full((8, r.shape[1], 3), 255, np.uint8)]) for r in rows])
    width = sheet.shape[1]
    line, lines, x = [], [], 0
    for z in zooms:
        if x + z.shape[1] > width and line:
            lines.append(line)
            line, x = [], 0
        line.append(z)
        x += z.shape[1] + 8
    lines.append(line)
    for ln in lines:
        strip = np.full((88, width, 3), 255, np.uint8)
        x = 0
        for z in ln:
            w = min(z.shape[1], width - x)
            strip[4:84, x : x + w] = z[:, :w]
            x += z.shape[1] + 8
        sheet = np.vstack([sheet, strip])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), sheet[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(args.out, sheet.shape)


if __name__ == "__main__":
    main()
