"""Train the learned plate detector (src/veilchain/anonymizer/plates/learned.py) from a seed.

    OMP_NUM_THREADS=1 nice -n 5 python scripts/train_plate_net.py \
        --out src/veilchain/anonymizer/plates/weights/platenet.pt --work /tmp/platenet

Scenes come from scripts/build_plate_set.py, generated in memory with their own seeds
(default 1001 for street scenes, 1002 for close-ups; the benchmark's seeds are refused).
Every sample is a crop of a scene at a random scale, then degraded the way a camera degrades
a plate: motion blur (0-21 px, any angle), defocus, noise, brightness and contrast, JPEG. The
target is the plates' quads, filled, as the share of each 8x8 cell they cover. One thread,
fixed step count: the same seed gives the same weights. A checkpoint is written every
``--save-every`` steps into ``--work`` and training resumes from it when restarted.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_plate_set as scenes  # noqa: E402 - the scene builder sits beside this script

from veilchain.anonymizer.plates.learned import CELL, INPUT_SCALE, build_net  # noqa: E402

#: Seeds of the benchmark's tuning and held-out sets: never trained on.
BENCHMARK_SEEDS = {5, 23, 99, 777, 4242, 31337, 31338, 4040}
CROP = 512  # full-resolution px per side of a sample (the net sees half of it)


def build_pool(seed: int, n: int, closeups: bool) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """``n`` scenes (RGB) with their plate masks (uint8, 1 on plates)."""
    if seed in BENCHMARK_SEEDS:
        raise SystemExit(f"seed {seed} is a benchmark set's; pick another")
    rng = np.random.default_rng(seed)
    bgs = [cv2.imread(str(p))[..., ::-1] for p in sorted(scenes.BG_DIR.glob("*.jpg"))]
    pool = []
    for i in range(n):
        img, plates = scenes.make_scene(i, rng, bgs, closeups)
        mask = np.zeros(img.shape[:2], np.uint8)
        for p in plates:
            cv2.fillConvexPoly(mask, np.round(np.asarray(p["quad"])).astype(np.int32), 1)
        pool.append((np.ascontiguousarray(img), mask, closeups))
    return pool


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    n = max(3, int(math.ceil(length)) | 1)
    k = np.zeros((n, n), np.float32)
    c = (n - 1) / 2
    dx, dy = math.cos(angle) * length / 2, -math.sin(angle) * length / 2
    cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
    return k / k.sum()


def degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A camera's faults on an RGB crop at the net's scale (``INPUT_SCALE`` of full
    resolution; blur lengths are drawn in full-resolution px), each drawn at random."""
    out = img.astype(np.float32)
    if rng.random() < 0.6:
        length = rng.uniform(2, 21) * INPUT_SCALE
        out = cv2.filter2D(out, -1, _motion_kernel(length, rng.uniform(0, math.pi)))
    if rng.random() < 0.25:
        r = rng.uniform(1, 4) * INPUT_SCALE
        d = int(2 * math.ceil(r) + 1)
        disk = np.zeros((d, d), np.float32)
        cv2.circle(disk, (d // 2, d // 2), max(1, round(r)), 1.0, -1)
        out = cv2.filter2D(out, -1, disk / disk.sum())
    gain, bias = rng.uniform(0.6, 1.3), rng.uniform(-40, 40)
    noise = rng.standard_normal(out.shape, dtype=np.float32) * rng.uniform(0, 8)
    out = np.clip(out * gain + bias + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 95))])
        out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return out


def _cut(a: np.ndarray, x0: int, y0: int, c: int) -> np.ndarray:
    """``a[y0:y0+c, x0:x0+c]``, reflected where the square leaves the image."""
    H, W = a.shape[:2]
    part = a[max(y0, 0) : min(y0 + c, H), max(x0, 0) : min(x0 + c, W)]
    top, left = max(-y0, 0), max(-x0, 0)
    bottom, right = c - top - part.shape[0], c - left - part.shape[1]
    return cv2.copyMakeBorder(part, top, bottom, left, right, cv2.BORDER_REFLECT)


def sample(pool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One training pair: the net's input (3, 256, 256) and its target (64, 64), both float."""
    img, mask, closeup = pool[int(rng.integers(len(pool)))]
    lo, hi = (0.25, 0.5) if closeup else (0.6, 1.5)
    s = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    c = min(int(round(CROP / s)), 700)
    H, W = mask.shape
    ys, xs = np.nonzero(mask[::8, ::8])
    if len(ys) and rng.random() < 0.6:  # around a plate, else anywhere
        k = int(rng.integers(len(ys)))
        cx, cy = xs[k] * 8 + rng.uniform(-c / 3, c / 3), ys[k] * 8 + rng.uniform(-c / 3, c / 3)
    else:
        cx, cy = rng.uniform(0, W), rng.uniform(0, H)
    x0, y0 = int(cx - c / 2), int(cy - c / 2)
    size = int(CROP * INPUT_SCALE)
    x = cv2.resize(_cut(img, x0, y0, c), (size, size), interpolation=cv2.INTER_AREA)
    y = cv2.resize(
        _cut(mask, x0, y0, c).astype(np.float32), (CROP // CELL, CROP // CELL),
        interpolation=cv2.INTER_AREA,
    )  # fmt: skip
    if rng.random() < 0.5:
        x, y = x[:, ::-1], y[:, ::-1]
    x = degrade(np.ascontiguousarray(x), rng)
    return x.transpose(2, 0, 1).astype(np.float32) / 255.0, np.ascontiguousarray(y)


def train(args) -> dict:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    pool = build_pool(args.scene_seed, args.scenes, False)
    pool += build_pool(args.closeup_seed, args.closeups, True)
    print(json.dumps({"pool": len(pool), "build_s": round(time.time() - t0, 1)}), flush=True)
    net = build_net(args.width)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=args.steps, pct_start=0.1)
    ckpt = args.work / "checkpoint.pt"
    step, losses = 0, []
    if ckpt.exists():  # resume: the same state as if never stopped
        st = torch.load(ckpt, weights_only=False)
        net.load_state_dict(st["net"])
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        rng.bit_generator.state = st["rng"]
        torch.set_rng_state(st["torch_rng"])
        step = st["step"]
    pos_weight = torch.tensor(args.pos_weight)
    net.train()
    t0 = time.time()
    while step < args.steps:
        batch = [sample(pool, rng) for _ in range(args.batch)]
        x = torch.from_numpy(np.stack([b[0] for b in batch]))
        y = torch.from_numpy(np.stack([b[1] for b in batch]))[:, None]
        logits = net(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, y, pos_weight=pos_weight
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        losses.append(loss.item())
        if step % args.save_every == 0 or step == args.steps:
            args.work.mkdir(parents=True, exist_ok=True)
            state = {
                "net": net.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "step": step,
            }
            torch.save(state, args.work / "checkpoint.part")
            (args.work / "checkpoint.part").replace(ckpt)
            rate = len(losses) / (time.time() - t0)
            print(
                json.dumps(
                    {"step": step, "loss": round(float(np.mean(losses[-args.save_every :])), 4),
                     "steps_per_s": round(rate, 2)}
                ),
                flush=True,
            )  # fmt: skip
    net.eval()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"width": args.width, "state_dict": net.state_dict()}, args.out)
    return {"out": str(args.out), "steps": step, "seed": args.seed}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True, help="checkpoint folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scene-seed", type=int, default=1001)
    ap.add_argument("--closeup-seed", type=int, default=1002)
    ap.add_argument("--scenes", type=int, default=240)
    ap.add_argument("--closeups", type=int, default=40)
    ap.add_argument("--steps", type=int, default=3600)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--pos-weight", type=float, default=3.0)
    ap.add_argument("--save-every", type=int, default=100)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(json.dumps(train(args)))


if __name__ == "__main__":
    main()
