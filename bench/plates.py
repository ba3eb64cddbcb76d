"""Licence plates: detection recall, OCR accuracy, edit distance by epsilon, and speed.

    python scripts/build_plate_set.py          # once: bench/data/plates/generated/
    python bench/plates.py                      # tables on stderr, summary JSON on stdout
    python bench/plates.py --json               # one JSON document on stdout
    python bench/plates.py --limit 40 --skip-speed
    python bench/plates.py --data bench/data/plates/real --skip-speed --skip-baselines
                                                # the real photo(s), annotated by hand
    python scripts/build_plate_set.py --closeups --seed 5 --n 40 --out /tmp/c
    python bench/plates.py --data /tmp/c --skip-speed --skip-baselines   # close-ups only
    python scripts/blur_plate_set.py --data DIR --out /tmp/m --length 15 --angle 45
    python bench/plates.py --data /tmp/m --skip-speed --skip-baselines   # motion blur

Recall counts a ground-truth plate as found when a detection's box overlaps its box with
IoU >= 0.3; it is reported for plates >= 20 px tall (the target) and below. False positives
are detections matching no plate (every one of them is redrawn too). OCR accuracy is over
detected plates >= 20 px: "read" (OCR gave a plausible line), "exact" (equal to the truth)
and the mean character edit distance of read plates. Edit distance by epsilon is between
the TRUE text and the text the stage publishes for each detected plate (read plates get DP
text, unread ones random text), 5 draws per plate. "Unchanged" counts plates >= 20 px whose
published text equals the truth or that were not detected (published as they were).
"Second look" runs the whole stage as the pipeline does (detection, OCR, redraw, then the
sweep of the output) and counts the plates still published unchanged by pixels (fewer than
half of a plate's visible pixels rewritten) or partly (fewer than 90 %), what the sweep
redrew and its false positives.

Speed: 1280x720 scenes, the plates stage alone and the whole pipeline (pixelate, CenterFace,
second look, no identity check) with identifiers faces+plates against faces only, measured
in the same run, one process per core (``--workers``, default 2), Tesseract single-threaded.
The baselines for detection: OpenCV's two shipped plate cascades and Tesseract's own layout
analysis (word boxes of a full-page read), on the same images.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # Tesseract: one thread per worker

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "plates" / "generated"
EPSILONS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0)


def _box(q, size=(1280, 720)) -> tuple:
    """A plate's box, clipped to the image (a plate cut by the border: its visible part)."""
    q = np.asarray(q, np.float64)
    x0, y0 = np.maximum(q.min(0), 0)
    x1, y1 = np.minimum(q.max(0), size)
    return (x0, y0, x1, y1)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / u if u > 0 else 0.0


def _load(data: Path, limit: int | None):
    gt = json.loads((data / "ground_truth.json").read_text())["images"]
    return gt[:limit] if limit else gt


def _image(data: Path, name: str) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(data / name))[..., ::-1])


def _match(found_boxes, im):
    """Ground-truth index -> detection index (greedy by IoU >= 0.3) in image ``im`` (its
    ground-truth entry: ``plates``, and ``size`` when it is not 1280x720)."""
    plates, size = im["plates"], tuple(im.get("size", (1280, 720)))
    pairs = sorted(
        (
            (_iou(f, _box(p["quad"], size)), i, j)
            for j, f in enumerate(found_boxes)
            for i, p in enumerate(plates)
        ),
        reverse=True,
    )
    gt_to_det, used = {}, set()
    for iou, i, j in pairs:
        if iou < 0.3:
            break
        if i not in gt_to_det and j not in used:
            gt_to_det[i] = j
            used.add(j)
    return gt_to_det


def _recall_row(name, per_image, images) -> dict:
    big = small = big_hit = small_hit = fp = 0
    for boxes, im in zip(per_image, images, strict=True):
        m = _match(boxes, im)
        fp += len(boxes) - len(m)
        for i, p in enumerate(im["plates"]):
            if p["height_px"] >= 20:
                big += 1
                big_hit += i in m
            else:
                small += 1
                small_hit += i in m
    return {
        "detector": name,
        "plates_ge20": big,
        "recall_ge20": round(big_hit / max(big, 1), 4),
        "plates_lt20": small,
        "recall_lt20": round(small_hit / max(small, 1), 4),
        "false_positives_per_image": round(fp / max(len(images), 1), 3),
    }


def _cascade_boxes(img, path):
    casc = cv2.CascadeClassifier(path)
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return [(x, y, x + w, y + h) for x, y, w, h in casc.detectMultiScale(gray, 1.1, 3)]


def _tesseract_layout_boxes(img):
    """Word boxes of a full-page Tesseract read, merged per line: text regions."""
    import pytesseract

    d = pytesseract.image_to_data(img, config="--psm 11", output_type=pytesseract.Output.DICT)
    boxes = []
    for t, c, x, y, w, h in zip(
        d["text"], d["conf"], d["left"], d["top"], d["width"], d["height"], strict=True
    ):
        if t.strip() and float(c) > 0 and len(t.strip()) >= 3:
            boxes.append((x, y, x + w, y + h))
    return boxes


def detection(data, images, with_baselines: bool, log) -> tuple[list[dict], list]:
    from veilchain.anonymizer.plates import build_plate_anonymizer

    det = build_plate_anonymizer(1.0).detector  # the stage's own
    rows, ours, t = [], [], 0.0
    for im in images:
        img = _image(data, im["file"])
        t0 = time.perf_counter()
        found = det.detect(img)
        t += time.perf_counter() - t0
        ours.append(found)
    row = _recall_row(
        f"{det.describe()['name']} (shipped)", [[d.box for d in f] for f in ours], images
    )
    row["ms_per_image"] = round(1000 * t / len(images), 1)
    rows.append(row)
    if with_baselines:
        for name in (
            "haarcascade_russian_plate_number.xml",
            "haarcascade_license_plate_rus_16stages.xml",
        ):
            per, t = [], 0.0
            for im in images:
                img = _image(data, im["file"])
                t0 = time.perf_counter()
                per.append(_cascade_boxes(img, cv2.data.haarcascades + name))
                t += time.perf_counter() - t0
            r = _recall_row(f"cascade {name}", per, images)
            r["ms_per_image"] = round(1000 * t / len(images), 1)
            rows.append(r)
        sub = images[: min(len(images), 30)]  # Tesseract layout is slow: a subset
        per, t = [], 0.0
        for im in sub:
            img = _image(data, im["file"])
            t0 = time.perf_counter()
            per.append(_tesseract_layout_boxes(img))
            t += time.perf_counter() - t0
        r = _recall_row(f"tesseract layout (psm 11, first {len(sub)} images)", per, sub)
        r["ms_per_image"] = round(1000 * t / len(sub), 1)
        rows.append(r)
    return rows, ours


def ocr_and_dp(data, images, ours, log) -> tuple[dict, list[dict]]:
    from veilchain.anonymizer.plates import PlateReader, edit_distance, randomized_response
    from veilchain.anonymizer.plates.dp import random_text

    reader = PlateReader()
    n = read = exact = 0
    cer = []
    pairs = []  # (truth, read text or None, n_chars) per detected plate >= 20 px
    missed = 0
    for im, found in zip(images, ours, strict=True):
        m = _match([d.box for d in found], im)
        img = _image(data, im["file"])
        # a plate whose text is null (a real photo the annotator could not read) has no
        # truth to compare with: it is left out of OCR and edit distance
        big = [(i, p) for i, p in enumerate(im["plates"]) if p["height_px"] >= 20 and p["text"]]
        dets = [found[m[i]] for i, p in big if i in m]
        truths = [p["text"] for i, p in big if i in m]
        missed += sum(1 for i, p in big if i not in m)
        for d, truth, r in zip(dets, truths, reader.read_all(img, dets), strict=True):
            n += 1
            if r.text is not None:
                read += 1
                exact += r.text == truth
                cer.append(edit_distance(r.text, truth))
            pairs.append((truth, r.text, d.n_chars))
    ocr = {
        "detected_plates_ge20": n,
        "read": round(read / max(n, 1), 4),
        "exact": round(exact / max(n, 1), 4),
        "mean_edit_distance_of_reads": round(float(np.mean(cer)), 3) if cer else None,
    }
    rng = np.random.default_rng(0)
    by_eps = []
    for eps in EPSILONS:
        dists, unchanged = [], missed * 5
        for truth, text, n_chars in pairs:
            for _ in range(5):
                new = randomized_response(text, eps, rng) if text else random_text(n_chars, rng)
                dist = edit_distance(truth, new)
                dists.append(dist)
                unchanged += dist == 0
        total = (len(pairs) + missed) * 5
        by_eps.append(
            {
                "epsilon": eps,
                "mean_edit_distance": round(float(np.mean(dists)), 3) if dists else None,
                "share_ge3": round(float(np.mean(np.array(dists) >= 3)), 4) if dists else None,
                "unchanged": unchanged,
                "releases": total,
            }
        )
        log(f"  eps={eps}: {by_eps[-1]}")
    return ocr, by_eps


def redraw(data, images, log) -> dict:
    """Run the plates stage itself: what it did to each plate (actions, the share of each
    plate's pixels it changed) and the CPU time of its three steps, one process."""
    from veilchain.anonymizer.plates import build_plate_anonymizer

    stage = build_plate_anonymizer(1.0)
    cpu = {"detect": 0.0, "ocr": 0.0, "redraw": 0.0}
    actions: dict[str, int] = {}
    changed, n_plates = [], 0
    for k, im in enumerate(images):
        img = _image(data, im["file"])
        out = img.copy()
        t = time.process_time()
        plates = stage.detector.detect(img)
        cpu["detect"] += time.process_time() - t
        t = time.process_time()
        readings = stage.reader.read_all(img, plates)
        cpu["ocr"] += time.process_time() - t
        t = time.process_time()
        for i, (p, r) in enumerate(zip(plates, readings, strict=True)):
            rep = stage._replace(out, img, p, r, np.random.default_rng([k, i]), i)
            actions[rep.action] = actions.get(rep.action, 0) + 1
            changed.append(rep.changed_fraction)
        cpu["redraw"] += time.process_time() - t
        n_plates += len(plates)
    n = max(len(images), 1)
    res = {
        "images": len(images),
        "detections": n_plates,
        "actions": actions,
        "changed_fraction_min": round(min(changed), 4) if changed else None,
        "changed_fraction_mean": round(float(np.mean(changed)), 4) if changed else None,
        "cpu_ms_per_image": {k: round(1000 * v / n, 1) for k, v in cpu.items()},
        "cpu_ms_per_plate": {
            k: round(1000 * cpu[k] / max(n_plates, 1), 1) for k in ("ocr", "redraw")
        },
        "ocr_engine": stage.reader.describe()["engine"],
    }
    log(f"  redraw: {res}")
    return res


def second_look(data, images, log) -> dict:
    """The whole stage, second look included, as the pipeline runs it: how many true plates
    it still publishes unchanged (fewer than half of the plate's visible pixels rewritten)
    or partly (fewer than 90 %), the mean share redrawn, what the sweep redrew, and what
    that cost in false positives and CPU time."""
    from veilchain.anonymizer.plates import build_plate_anonymizer

    stage = build_plate_anonymizer(1.0)
    big = small = big_kept = small_kept = first_fp = sweep_fp = sweep_hits = big_part = 0
    big_shares: list[float] = []
    found = uncovered = 0
    cpu = sweep_s = 0.0
    for k, im in enumerate(images):
        img = _image(data, im["file"])
        out, timing, sweep = img.copy(), {}, {}
        t = time.process_time()
        reports = stage.anonymize(
            out, img, lambda i, k=k: np.random.default_rng([k, i]), timing, sweep=sweep
        )
        cpu += time.process_time() - t
        sweep_s += timing.get("plates_second_look", 0.0)
        found += sweep["found"]
        uncovered += sweep["uncovered"]
        changed = np.abs(out.astype(np.int16) - img.astype(np.int16)).max(2) > 0
        for p in im["plates"]:
            inside = np.zeros(changed.shape, np.uint8)
            cv2.fillConvexPoly(inside, np.round(np.asarray(p["quad"])).astype(np.int32), 1)
            share = float(changed[inside > 0].mean()) if inside.any() else 1.0
            kept = share < 0.5
            if p["height_px"] >= 20:
                big, big_kept = big + 1, big_kept + kept
                big_part += share < 0.9
                big_shares.append(share)
            else:
                small, small_kept = small + 1, small_kept + kept
        for by in ("detection", "second_look"):
            mine = [r for r in reports if r.found_by == by]
            m = _match([r.box for r in mine], im)
            if by == "detection":
                first_fp += len(mine) - len(m)
            else:
                sweep_fp += len(mine) - len(m)
                sweep_hits += len(m)
    n = max(len(images), 1)
    res = {
        "images": len(images),
        "plates_ge20": big,
        "unchanged_ge20": big_kept,
        "partly_redrawn_ge20": big_part,
        "mean_share_redrawn_ge20": round(float(np.mean(big_shares)), 4) if big_shares else None,
        "plates_lt20": small,
        "unchanged_lt20": small_kept,
        "sweep_found": found,
        "sweep_redrawn": uncovered,
        "sweep_redrawn_true_plates": sweep_hits,
        "false_positives_per_image_first_pass": round(first_fp / n, 3),
        "false_positives_per_image_added_by_sweep": round(sweep_fp / n, 3),
        "cpu_ms_per_image_stage": round(1000 * cpu / n, 1),
        "wall_ms_per_image_sweep": round(1000 * sweep_s / n, 1),
    }
    log(f"  second look: {res}")
    return res


# -- speed --------------------------------------------------------------------------------
_W = None


def _init(kind: str) -> None:
    global _W
    from veilchain.anonymizer import build_anonymizer
    from veilchain.anonymizer.batch import one_thread
    from veilchain.anonymizer.plates import build_plate_anonymizer

    one_thread()  # as the pipeline's worker processes do
    if kind == "plates_stage":
        _W = build_plate_anonymizer(1.0)
    else:
        ids = "faces,plates" if kind == "faces+plates" else "faces"
        _W = build_anonymizer("pixelate", identity_check=False, identifiers=ids, secret=b"b" * 32)


def _work(path: str) -> float:
    """Anonymize one image; returns the CPU seconds this process spent on it."""
    img = np.ascontiguousarray(cv2.imread(path)[..., ::-1])
    t = time.process_time()
    if hasattr(_W, "detector") and hasattr(_W, "reader"):
        out = img.copy()
        _W.anonymize(out, img, lambda i: np.random.default_rng(i), {})
    else:
        _W.anonymize(img)
    return time.process_time() - t


def speed(paths: list[str], workers: int, log) -> list[dict]:
    rows = []
    for kind in ("faces", "faces+plates", "plates_stage"):
        with ProcessPoolExecutor(workers, initializer=_init, initargs=(kind,)) as pool:
            list(pool.map(_work, paths[:workers]))  # warm-up: models loaded
            t0 = time.perf_counter()
            cpu = list(pool.map(_work, paths))
            dt = time.perf_counter() - t0
        cpu_ms = 1000 * float(np.mean(cpu))
        rows.append(
            {
                "pipeline": kind,
                "images": len(paths),
                "workers": workers,
                "images_per_s": round(len(paths) / dt, 2),
                "cpu_ms_per_image": round(cpu_ms, 1),
                # what `workers` uncontended cores would do: an image's CPU time does not
                # depend on what else the machine runs (its wall time does)
                "images_per_s_cpu_bound": round(workers * 1000 / cpu_ms, 2),
            }
        )
        log(f"  {rows[-1]}")
    base, base_cpu = rows[0]["images_per_s"], rows[0]["cpu_ms_per_image"]
    for r in rows:
        r["ratio_vs_faces_only"] = round(r["images_per_s"] / base, 3)
        r["cpu_ratio_vs_faces_only"] = round(r["cpu_ms_per_image"] / base_cpu, 3)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--speed-images", type=int, default=40)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-baselines", action="store_true")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args(argv)
    if not (args.data / "ground_truth.json").exists():
        sys.exit(f"no benchmark set in {args.data}: run python scripts/build_plate_set.py")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    committed = HERE / "data" / "plates" / "ground_truth.json"
    if committed.exists() and args.data == DATA:
        built = json.loads((args.data / "ground_truth.json").read_text())
        if built != json.loads(committed.read_text()):
            log("warning: the generated set differs from the committed ground truth")
    images = _load(args.data, args.limit)
    log(f"{len(images)} images, {sum(len(i['plates']) for i in images)} plates")
    rows, ours = detection(args.data, images, not args.skip_baselines, log)
    for r in rows:
        log(f"  {r}")
    ocr, by_eps = ocr_and_dp(args.data, images, ours, log)
    log(f"  ocr: {ocr}")
    result = {
        "images": len(images),
        "detection": rows,
        "ocr": ocr,
        "edit_distance_by_epsilon": by_eps,
        "load": os.getloadavg()[0],
        "cpus": os.cpu_count(),
    }
    result["second_look"] = second_look(args.data, images, log)
    if not args.skip_speed:
        result["redraw"] = redraw(args.data, images[: args.speed_images], log)
        paths = [str(args.data / i["file"]) for i in images[: args.speed_images]]
        result["speed"] = speed(paths, args.workers, log)
    result["load_after"] = os.getloadavg()[0]
    print(json.dumps(result, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
