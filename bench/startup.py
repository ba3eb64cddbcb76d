"""Start-up cost of the onnxruntime networks in a fresh process, cold and from the cache.

    python bench/startup.py --json [--warm 2]

Each round runs in a new Python process (as a one-image ``veilchain anonymize`` does) and
times opening dlib's embedding network (``FaceEmbedder()._net()``) and CIAGAN's generator
session (``ciagan.generator_session``). The first round starts from an empty cache folder
(``VEILCHAIN_CACHE_DIR``, a temporary one), so it exports both graphs to ONNX; the next
``--warm`` rounds read them from the cache (anonymizer/onnx_runtime.py). Prints seconds per
round and the machine's load average beside each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

_ROUND = """
import json, time
t0 = time.perf_counter()
from veilchain.anonymizer.embedding import FaceEmbedder
from veilchain.anonymizer.methods import build_method
from veilchain.anonymizer.ciagan import generator_session
t1 = time.perf_counter()
FaceEmbedder()._net()
t2 = time.perf_counter()
g = build_method("ciagan")
t3 = time.perf_counter()
generator_session(g.net, 1)
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "embedder_s": t2 - t1, "generator_session_s": t4 - t3}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print JSON only (the default too)")
    ap.add_argument("--warm", type=int, default=2, help="rounds with the cache filled")
    args = ap.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory(prefix="veilchain-cache-") as cache:
        env = {**os.environ, "VEILCHAIN_CACHE_DIR": cache}
        for i in range(1 + args.warm):
            out = subprocess.run([sys.executable, "-c", _ROUND], env=env, check=True,
                                 capture_output=True, text=True)  # fmt: skip
            times = json.loads(out.stdout.strip().splitlines()[-1])
            rounds.append({"cache": "cold" if i == 0 else "warm",
                           **{k: round(v, 3) for k, v in times.items()},
                           "load_1min": round(os.getloadavg()[0], 2)})  # fmt: skip
    print(json.dumps({"rounds": rounds}, indent=2))


if __name__ == "__main__":
    main()
