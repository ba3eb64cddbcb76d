"""Feature-selective faces on held-out faces: how much identity each subset removes.

    python bench/features.py --data data/corpus_dcgan --limit 200 --json

For the full CIAGAN generator and every non-empty subset of eyes, nose, mouth, runs
``training.evaluate_holdout`` (the pipeline's own path on the aligned crops of the corpus's
held-out faces, first attempt and identity-checked with retries): re-identification rank-1
against the held-out originals, detection retention, landmark displacement / IOD, crop
SSIM, attempts and check failures. The corpus comes from ``scripts/build_corpus.py``; its
held-out faces are unseen by training.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

SUBSETS = [c for n in (1, 2, 3) for c in itertools.combinations(("eyes", "nose", "mouth"), n)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="a corpus dir (corpus.npz)")
    p.add_argument("--limit", type=int, default=200, help="held-out faces to use")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()

    import torch

    from veilchain.anonymizer.ciagan import build_ciagan_generator
    from veilchain.anonymizer.corpus import load_corpus
    from veilchain.anonymizer.features import FeatureSelective
    from veilchain.anonymizer.holdout import evaluate_holdout

    torch.set_num_threads(1)
    corpus = load_corpus(a.data)
    gen = build_ciagan_generator()
    rows = []
    for subset in [None, *SUBSETS]:
        g = gen if subset is None else FeatureSelective(gen, subset)
        t0 = time.perf_counter()
        r = evaluate_holdout(g, corpus, limit=a.limit, workers=a.workers)
        label = "ciagan (whole face)" if subset is None else "ciagan:" + "+".join(subset)
        rows.append({"method": label, "seconds": round(time.perf_counter() - t0, 1), **r})
        print(f"{label}: {json.dumps(r)}", file=sys.stderr, flush=True)
    out = {"data": str(a.data), "limit": a.limit, "model_hash": gen.model_hash(), "rows": rows}
    print(json.dumps(out, indent=1 if not a.json else None))


if __name__ == "__main__":
    main()
