"""CPU time of the plates stage alone, for one or more source trees run one after the other.

    python bench/plates_speed.py --data DIR --tree OLD_TREE --tree . --rounds 3 --limit 80

Each round runs every tree in turn (OLD, NEW, OLD, NEW, ...; a shared, noisy machine loads
them alike), each in its own processes so that each imports its own ``veilchain``:
  ``pool``   bench/plates.py's "plates_stage" worker in a pool of ``--workers`` processes:
             the stage with its second look, CPU ms per image, and what ``--workers`` free
             cores would do from that (images/s)
  ``split``  one process, OpenCV on one thread, each image with and without the second look
             (alternating), so the second look's own CPU time is the difference
A tree is a directory holding ``src/veilchain`` and ``bench/plates.py`` (``git archive`` of a
commit, or a worktree). Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

_POOL = """
import json, sys, time
from concurrent.futures import ProcessPoolExecutor
import numpy as np
tree, data, n, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path[:0] = [tree + "/src", tree]
from bench import plates as B
ims = json.load(open(data + "/ground_truth.json"))["images"][:n]
paths = [data + "/" + i["file"] for i in ims]
with ProcessPoolExecutor(workers, initializer=B._init, initargs=("plates_stage",)) as pool:
    list(pool.map(B._work, paths[:workers]))  # warm-up
    t0 = time.perf_counter()
    cpu = list(pool.map(B._work, paths))
    dt = time.perf_counter() - t0
ms = 1000 * float(np.mean(cpu))
print(json.dumps({"cpu_ms_per_image": round(ms, 1),
                  "images_per_s_cpu_bound": round(workers * 1000 / ms, 2),
                  "images_per_s_wall": round(len(paths) / dt, 2)}))
"""

_SPLIT = """
import json, sys, time
import cv2, numpy as np
tree, data, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path[:0] = [tree + "/src"]
from veilchain.anonymizer.plates import build_plate_anonymizer
cv2.setNumThreads(1)
stage = build_plate_anonymizer(1.0)
ims = json.load(open(data + "/ground_truth.json"))["images"][:n]
cpu = {True: 0.0, False: 0.0}
for k, im in enumerate(ims):
    img = np.ascontiguousarray(cv2.imread(data + "/" + im["file"])[..., ::-1])
    for on in (True, False):
        out, t = img.copy(), time.process_time()
        stage.anonymize(out, img, lambda i: np.random.default_rng([k, i]), {}, second_look=on)
        cpu[on] += time.process_time() - t
on, off = 1000 * cpu[True] / len(ims), 1000 * cpu[False] / len(ims)
print(json.dumps({"stage_ms": round(on, 1), "without_second_look_ms": round(off, 1),
                  "second_look_ms": round(on - off, 1)}))
"""


def _run(code: str, *args: str) -> dict:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--tree", action="append", required=True, help="repeat: one per tree")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-split", action="store_true")
    args = ap.parse_args(argv)
    trees = [str(Path(t).resolve()) for t in args.tree]
    data = str(args.data.resolve())
    runs: dict[str, list] = {t: [] for t in trees}
    for r in range(args.rounds):
        for t in trees:
            row = {"round": r, "load": round(os.getloadavg()[0], 2)}
            row["pool"] = _run(_POOL, t, data, str(args.limit), str(args.workers))
            if not args.skip_split:
                row["split"] = _run(_SPLIT, t, data, str(args.limit))
            runs[t].append(row)
            print(json.dumps({"tree": t, **row}), file=sys.stderr, flush=True)

    def mean(rows, *keys):
        vals = [row[keys[0]][keys[1]] for row in rows if keys[0] in row]
        return round(sum(vals) / len(vals), 1) if vals else None

    summary = {
        t: {
            "pool_cpu_ms_per_image": mean(rows, "pool", "cpu_ms_per_image"),
            "pool_images_per_s_cpu_bound": round(
                args.workers * 1000 / mean(rows, "pool", "cpu_ms_per_image"), 2
            ),
            "split_stage_ms": mean(rows, "split", "stage_ms"),
            "split_without_second_look_ms": mean(rows, "split", "without_second_look_ms"),
            "split_second_look_ms": mean(rows, "split", "second_look_ms"),
        }
        for t, rows in runs.items()
    }
    print(json.dumps({"data": data, "images": args.limit, "workers": args.workers,
                      "summary": summary, "runs": runs}))  # fmt: skip


if __name__ == "__main__":
    main()
