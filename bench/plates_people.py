"""Plates on people: what the plates stage redraws on photos of people with no plate, and
whether it still redraws every real plate in street scenes, for one or more source trees.

    python bench/plates_people.py --json [--tree OLD_TREE] [--tree .] [--sets DIR ...]
                                  [--people DIR_OR_FILE ...] [--limit 50]

Each tree (a directory holding ``src/veilchain``: ``git archive`` of a commit, or a
worktree; default: this one) runs in its own process, the whole pipeline as ``register``
runs it (``--method``, default blur; CenterFace; identifiers faces,plates; second looks on;
identity check off, which changes no plate):
  ``people``  photos of people without a licence plate (default: the sample photos and the
              recall set's photos of people). Every plate redrawn there is a false positive:
              plates per image, by who found it (detection, second look), the share of the
              image the plates redrew (against the same pipeline with faces only), and what
              the people rules (plates/people.py) ruled out. ``--save DIR`` writes the
              outputs to DIR/<tree folder name>/ (``scripts/outputs_sheet.py`` shows them).
  ``sets``    plate benchmark sets (bench/data/plates layout: ground_truth.json). A plate
              >= 20 px tall counts as published unchanged when fewer than half of its
              pixels inside the image changed; also the faces detected there (false ones on
              cars, or people in the backgrounds) and what was ruled out.
Prints one JSON document (``--json``) or a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLES = ROOT / "src" / "veilchain" / "data" / "samples"
RECALL_BASE = HERE / "data" / "recall" / "base"
#: The recall set's base photos that show people (its other photos are backgrounds, and
#: ``synthetic_faces.jpg`` is a grid of 64 px faces; its ``astronaut.jpg`` is the samples' one).
RECALL_PEOPLE = (
    "basketball1.jpg", "basketball2.jpg", "camera.jpg", "grace_hopper.jpg",
    "messi5.jpg",
)  # fmt: skip

_WORKER = r"""
import json, sys
tree, method, limit, save = sys.argv[1], sys.argv[2], int(sys.argv[5]), sys.argv[6]
people, sets = json.loads(sys.argv[3]), json.loads(sys.argv[4])
sys.path[:0] = [tree + "/src"]
import cv2, numpy as np
from veilchain.anonymizer import build_anonymizer
anon = build_anonymizer(method, identity_check=False, identifiers="faces,plates", secret=b"p" * 32)
faces_only = build_anonymizer(method, identity_check=False, identifiers="faces", secret=b"p" * 32)

def run(path):
    img = np.ascontiguousarray(cv2.imread(path)[..., ::-1])
    res = anon.anonymize(img)
    return img, res

def count(res):
    r = res.report
    by = {"detection": 0, "second_look": 0}
    for p in r["plates"]:
        by[p.get("found_by", "detection")] += 1
    ruled = r.get("plates_ruled_out", {"on_faces": 0, "on_people": 0})
    return by, ruled, len(r.get("faces", []))

out = {"people": [], "sets": {}}
for path in people:
    img, res = run(path)
    by, ruled, n_faces = count(res)
    redrawn = float((res.image != faces_only.anonymize(img).image).any(2).mean())
    if save:
        name = "%02d_%s.png" % (len(out["people"]), path.rsplit("/", 1)[-1].rsplit(".", 1)[0])
        cv2.imwrite(save + "/" + name, np.ascontiguousarray(res.image[..., ::-1]))
    out["people"].append({
        "file": path.rsplit("/", 1)[-1], "faces": n_faces, "plates": by, "ruled_out": ruled,
        "image_share_redrawn": round(redrawn, 4),
    })
for d in sets:
    gt = json.load(open(d + "/ground_truth.json"))["images"][:limit]
    acc = dict.fromkeys(("images", "plates_ge20", "unchanged_ge20", "plates_lt20", "unchanged_lt20",
                         "faces", "plates_redrawn", "on_faces", "on_people"), 0)
    for im in gt:
        img, res = run(d + "/" + im["file"])
        by, ruled, n_faces = count(res)
        acc["images"] += 1
        acc["faces"] += n_faces
        acc["plates_redrawn"] += by["detection"] + by["second_look"]
        acc["on_faces"] += ruled["on_faces"]
        acc["on_people"] += ruled["on_people"]
        H, W = img.shape[:2]
        changed = np.abs(res.image.astype(int) - img.astype(int)).max(2) > 0
        for p in im["plates"]:
            q = np.asarray(p["quad"], np.float64)
            inside = np.zeros((H, W), np.uint8)
            cv2.fillConvexPoly(inside, np.round(q).astype(np.int32), 1)
            n = int(inside.sum())
            if n == 0:
                continue
            h = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
            band = "ge20" if h >= 20 else "lt20"
            acc["plates_" + band] += 1
            acc["unchanged_" + band] += int(changed[inside > 0].mean() < 0.5)
    out["sets"][d.rstrip("/").rsplit("/", 1)[-1]] = acc
print(json.dumps(out))
"""


def default_people() -> list[str]:
    files = sorted(SAMPLES.glob("*.jpg"))
    files += [RECALL_BASE / n for n in RECALL_PEOPLE if (RECALL_BASE / n).is_file()]
    return [str(f) for f in files]


def people_paths(args: list[str]) -> list[str]:
    out: list[str] = []
    for a in args:
        p = Path(a)
        out += (
            [str(f) for f in sorted(p.glob("*.jpg")) + sorted(p.glob("*.png"))]
            if p.is_dir()
            else [a]
        )
    return out


def run_tree(
    tree: Path, method: str, people: list[str], sets: list[str], limit: int, save: Path | None
) -> dict:
    t0 = time.time()
    folder = ""
    if save is not None:
        (save / tree.name).mkdir(parents=True, exist_ok=True)
        folder = str(save / tree.name)
    args = [
        sys.executable,
        "-c",
        _WORKER,
        str(tree),
        method,
        json.dumps(people),
        json.dumps(sets),
        str(limit),
        folder,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: the worker failed: {proc.stderr.strip().splitlines()[-1:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    pl = result["people"]
    n = max(len(pl), 1)
    plates = sum(r["plates"]["detection"] + r["plates"]["second_look"] for r in pl)
    result["people_summary"] = {
        "images": len(pl),
        "plates_per_image": round(plates / n, 3),
        "image_share_redrawn": round(sum(r["image_share_redrawn"] for r in pl) / n, 4),
        "ruled_out_per_image": {
            k: round(sum(r["ruled_out"].get(k, 0) for r in pl) / n, 3)
            for k in ("on_faces", "on_people")
        },
    }
    result["seconds"] = round(time.time() - t0, 1)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", type=Path, action="append", help="a source tree (repeatable)")
    ap.add_argument("--sets", nargs="*", default=[], help="plate benchmark set folders")
    ap.add_argument(
        "--people", nargs="*", help="photos of people without plates (files or folders)"
    )
    ap.add_argument("--limit", type=int, default=50, help="images per plate set")
    ap.add_argument("--method", default="blur")
    ap.add_argument("--save", type=Path, help="write each tree's outputs of --people here")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    trees = args.tree or [ROOT]
    people = people_paths(args.people) if args.people is not None else default_people()
    sets = [str(Path(s).resolve()) for s in args.sets]
    for s in sets:
        if not (Path(s) / "ground_truth.json").is_file():
            raise SystemExit(
                f"{s}: no ground_truth.json (build one with scripts/build_plate_set.py)"
            )
    report = {
        "command": "python " + " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "method": args.method,
        "trees": {
            str(t): run_tree(t.resolve(), args.method, people, sets, args.limit, args.save)
            for t in trees
        },
    }
    if args.json:
        print(json.dumps(report, indent=1))
        return
    for tree, r in report["trees"].items():
        print(tree, json.dumps(r["people_summary"]))
        for name, acc in r["sets"].items():
            print(f"  {name}: {json.dumps(acc)}")


if __name__ == "__main__":
    main()
