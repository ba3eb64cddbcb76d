"""Registration on Ray beside the local process pool, measured side by side in one run.

    PYTHONPATH=src python bench/scale.py --json          # only JSON on stdout; logs on stderr
    PYTHONPATH=src python bench/scale.py --images 12 --rss-sizes 1000,10000
    PYTHONPATH=src python bench/scale.py --json --parts rss   # only the driver's peak RSS

1. Throughput: the same photos (the package's samples, copied ``--images`` times in all,
   method blur with the identity check) registered with the local pool (``--cpus`` worker
   processes) and with the Ray executor on a local two-node cluster (``--cpus`` nodes of one
   CPU each, 127.0.0.1 only), rounds alternating; images/s of ``register`` (service start
   excluded), median over rounds.
2. Driver peak RSS: a fresh driver process registers N small synthetic images (64x64 noise,
   no face) on the Ray cluster, and another with the local pool (``--cpus`` worker
   processes, not counted: they are other processes), for each N in ``--rss-sizes``;
   that process's own peak RSS (``VmHWM``; see ``_peak_rss_mib``).
3. Worker-kill: a Ray registration of the photos during which the worker node is SIGKILLed
   after the first recorded batch; completeness (ids 0..n-1 once each, keys = records,
   verify ok) and the time lost (the failed batches' time in flight, and the wall time
   beside an undisturbed run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback addresses stay

from veilchain.config import Settings  # noqa: E402
from veilchain.platform.demo import samples_dir  # noqa: E402
from veilchain.platform.executors import ExecutorChoice  # noqa: E402
from veilchain.platform.wiring import build_service  # noqa: E402

NODE = dict(num_cpus=1, node_ip_address="127.0.0.1", object_store_memory=80 * 2**20)


def _service(data_dir: Path, choice: ExecutorChoice, workers: int):
    svc = build_service(Settings(data_dir=data_dir, env="test"))
    svc.registrar.executor = choice
    svc.registrar.workers = workers
    return svc


def _photos(dest: Path, n: int) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    srcs = sorted(p for p in samples_dir().iterdir() if p.suffix in (".jpg", ".png"))[:3]
    for i in range(n):
        shutil.copy(srcs[i % len(srcs)], dest / f"{i:05d}{srcs[i % len(srcs)].suffix}")
    return dest


def _synthetic(dest: Path, n: int) -> Path:
    import cv2
    import numpy as np

    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(dest / f"{i:06d}.png"), rng.integers(0, 255, (64, 64, 3), np.uint8))
    return dest


def _register(svc, inputs: Path, progress=None) -> tuple[float, object]:
    t = time.perf_counter()
    kw = {"progress": progress} if progress else {}
    result = svc.register([inputs], name="bench", method="blur", allow_recognizable=True, **kw)
    return time.perf_counter() - t, result


def _complete(svc, result, n: int) -> bool:
    manifest = svc.manifest(result.dataset_id)
    ids = [r.image_id for r in manifest.records]
    return (
        ids == [f"{i:06d}" for i in range(n)]
        and svc.keys.images_with_keys(result.uid) == set(ids)
        and svc.verify(result.dataset_id).ok
    )


def _peak_rss_mib() -> float:
    """This process's own peak RSS: ``VmHWM``, the high-water mark of its address space.
    Not ``ru_maxrss``: Linux carries that across fork and exec, so a child started by a
    large parent reports at least the parent's peak (this bench's parent: ~700 MiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def rss_child(n: int, executor: str, workdir: Path) -> None:
    """One driver: register n synthetic images with ``executor`` (``local:CPUS`` or
    ``ray:ADDRESS``), print its peak RSS (MiB)."""
    inputs = _synthetic(workdir / "in", n)
    kind, arg = executor.split(":", 1)
    if kind == "ray":
        svc = _service(workdir / "data", ExecutorChoice(kind="ray", address=arg, batch=64), 1)
    else:
        svc = _service(workdir / "data", ExecutorChoice(kind="local"), int(arg))
    seconds, result = _register(svc, inputs)
    assert result.records == n
    print(json.dumps({"executor": kind, "images": n, "peak_rss_mib": round(_peak_rss_mib(), 1),
                      "seconds": round(seconds, 1)}))  # fmt: skip


def _worker_kill(cluster, on_ray, photos: Path, tmp: Path, args) -> dict:
    """A Ray registration whose worker node is SIGKILLed after the first recorded batch."""
    calm_s, _ = _register(on_ray, photos)
    killer = _service(tmp / "kill", on_ray.registrar.executor, args.cpus)
    worker = next(iter(cluster.worker_nodes))
    killed: list[int] = []

    def progress(done: int, total: int, stage: str) -> None:
        if done >= 1 and not killed:
            cluster.remove_node(worker, allow_graceful=False)
            killed.append(done)

    kill_s, result = _register(killer, photos, progress)
    stats = killer.registrar.last_ray_stats
    return {
        "images": args.images, "killed_after": killed[0] if killed else None,
        "complete_exactly_once": _complete(killer, result, args.images),
        "batches_resubmitted": stats.resubmitted,
        "in_flight_time_lost_s": round(stats.lost_s, 2),
        "wall_s": round(kill_s, 2), "undisturbed_wall_s": round(calm_s, 2),
        "wall_time_lost_s": round(kill_s - calm_s, 2),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--rss-sizes", default="1000,10000")
    ap.add_argument("--parts", default="throughput,kill,rss", help="which measurements")
    ap.add_argument("--rss-child", nargs=3, metavar=("N", "EXECUTOR", "DIR"))
    args = ap.parse_args()
    if args.rss_child:
        rss_child(int(args.rss_child[0]), args.rss_child[1], Path(args.rss_child[2]))
        return
    parts = set(args.parts.split(","))
    # stdout carries the JSON only: everything else written to fd 1 (Ray's and its node
    # processes' log lines included) goes to stderr
    result_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import ray
    from ray.cluster_utils import Cluster

    out: dict = {"load_before": os.getloadavg()[0], "cpus": os.cpu_count()}
    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    for _ in range(args.cpus - 1):
        cluster.add_node(**NODE)
    cluster.wait_for_nodes()
    tmp = Path(tempfile.mkdtemp(prefix="veilchain-scale-"))
    try:
        photos = _photos(tmp / "photos", args.images)
        ray_choice = ExecutorChoice(kind="ray", address=cluster.address, batch=2)
        on_ray = _service(tmp / "ray", ray_choice, args.cpus)
        if "throughput" in parts:
            local = _service(tmp / "local", ExecutorChoice(kind="local"), args.cpus)
            rates: dict[str, list[float]] = {"local": [], "ray": []}
            for _ in range(args.rounds):
                for name, svc in (("local", local), ("ray", on_ray)):
                    seconds, result = _register(svc, photos)
                    assert _complete(svc, result, args.images)
                    rates[name].append(args.images / seconds)
            lr, rr = statistics.median(rates["local"]), statistics.median(rates["ray"])
            out["throughput"] = {
                "images": args.images, "method": "blur", "rounds": args.rounds,
                "local_pool_images_s": round(lr, 2), "ray_images_s": round(rr, 2),
                "ray_vs_local": round(rr / lr, 3), "target": 0.9,
                "per_round": {k: [round(v, 2) for v in vs] for k, vs in rates.items()},
            }  # fmt: skip
            print(json.dumps({"throughput": out["throughput"]}), file=sys.stderr, flush=True)
        if "kill" in parts:  # worker-kill run beside an undisturbed one
            out["worker_kill"] = _worker_kill(cluster, on_ray, photos, tmp, args)
            print(json.dumps({"worker_kill": out["worker_kill"]}), file=sys.stderr, flush=True)
        if "rss" in parts:
            sizes = [int(x) for x in args.rss_sizes.split(",") if x]
            out["rss"] = []
            for executor in (f"ray:{cluster.address}", f"local:{args.cpus}"):
                for n in sizes:
                    proc = subprocess.run(
                        [sys.executable, __file__, "--rss-child", str(n), executor,
                         str(tmp / f"rss-{executor.split(':')[0]}{n}")],
                        stdout=subprocess.PIPE, text=True, check=True, env={**os.environ},
                    )  # fmt: skip
                    out["rss"].append(json.loads(proc.stdout.strip().splitlines()[-1]))
                    print(json.dumps({"rss": out["rss"][-1]}), file=sys.stderr, flush=True)
            if len(sizes) >= 2:
                out["rss_growth"] = {}
                for kind in ("ray", "local"):
                    peaks = [r["peak_rss_mib"] for r in out["rss"] if r["executor"] == kind]
                    out["rss_growth"][kind] = round(peaks[-1] / peaks[0] - 1, 3)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    out["load_after"] = os.getloadavg()[0]
    text = json.dumps(out, indent=2)
    print(text, file=sys.stderr)
    if args.json:
        print(json.dumps(out), file=result_out, flush=True)


if __name__ == "__main__":
    main()
