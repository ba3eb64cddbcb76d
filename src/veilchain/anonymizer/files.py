"""Files and folders: collect inputs, anonymize them into an output folder, embed a gallery.

One input collector (:func:`collect_inputs`) serves ``veilchain anonymize`` and the gallery;
images keep their stem and pixel size and are written without metadata, videos keep their
container.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from veilchain.anonymizer.embedding import FaceEmbedder
from veilchain.errors import AnonymizationError, InputError


def gallery_embeddings(
    inputs: Iterable[str | Path], anonymizer: Any, embedder: FaceEmbedder
) -> np.ndarray:
    """dlib embeddings (N, 128) of every face in these photos (files or folders; videos are
    skipped) whose landmarks can be trusted. An unreadable photo or a gallery without a face
    is a one-line error."""
    from veilchain.anonymizer.image_io import load_image
    from veilchain.anonymizer.video import is_video_path

    found = []
    for path, _ in collect_inputs(inputs):
        if is_video_path(path):
            continue
        img = load_image(path)
        lms = [d.landmarks for d in anonymizer.detect(img) if d.fallback is None]
        if lms:
            found.append(embedder.embed(img, lms))
    if not found:
        raise InputError("no face found in the gallery photos")
    return np.concatenate(found).astype(np.float32)


# --- files and folders ------------------------------------------------------
@dataclass
class FileResult:
    """Outcome for one input file (an image or a video)."""

    input: str
    output: str | None
    kind: str  # "image" | "video"
    n_faces: int = 0
    n_failed: int = 0
    error: str | None = None
    error_kind: str | None = None  # the error's class name, e.g. ImageDecodeError
    report: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect_inputs(inputs: Iterable[str | Path], *, videos: bool = True) -> list[tuple[Path, Path]]:
    """Expand files and folders into (file, relative output stem) pairs, sorted per folder.

    Folders contribute their images (and videos unless ``videos=False``), hidden files left
    out; a file named explicitly is always taken (its decoder decides). The one collector
    for ``anonymize``, ``register`` and the gallery."""
    from veilchain.anonymizer.image_io import is_image_path
    from veilchain.anonymizer.video import is_video_path

    found: list[tuple[Path, Path]] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                wanted = is_image_path(f) or (videos and is_video_path(f))
                if wanted and not f.name.startswith("."):
                    found.append((f, f.relative_to(p).with_suffix("")))
        elif p.is_file():
            found.append((p, Path(p.stem)))
        else:
            raise InputError(f"{p}: no such file or folder")
    return found


def iter_input_images(inputs: Iterable[str | Path]) -> Iterator[Path]:
    """The image files ``collect_inputs(inputs, videos=False)`` finds, in the same order,
    read lazily: one directory listing in memory at a time (for data sets of millions)."""
    from veilchain.anonymizer.image_io import is_image_path

    def walk(d: Path) -> Iterator[Path]:
        with os.scandir(d) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                yield from walk(Path(e.path))
            elif e.is_file() and is_image_path(Path(e.name)) and not e.name.startswith("."):
                yield Path(e.path)

    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            yield from walk(p)
        elif p.is_file():
            yield p
        else:
            raise InputError(f"{p}: no such file or folder")


def anonymize_paths(
    inputs: Iterable[str | Path],
    outdir: str | Path,
    *,
    method: str = "pixelate",
    epsilon: float | None = None,
    seed: int = 0,
    fmt: str | None = None,
    weights_dir: Path | None = None,
    strict: bool = False,
    anonymizer: Any = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[FileResult]:
    """Anonymize image files, folders and videos into ``outdir``; one :class:`FileResult` each.

    Images keep their stem and pixel size and are written as PNG (or ``fmt``) with no
    metadata; videos keep their container (.mp4 or .avi), frame count and size. A file that
    cannot be read is reported with its one-line error and the others still run.
    ``progress(path, done, total)`` is called after each file.
    """
    from veilchain.anonymizer.image_io import load_image, save_image
    from veilchain.anonymizer.video import anonymize_video, is_video_path
    from veilchain.errors import VeilchainError

    files = collect_inputs(inputs)
    outdir = Path(outdir)
    from veilchain.anonymizer.wiring import build_anonymizer

    anon = anonymizer or build_anonymizer(
        method,
        epsilon=epsilon,
        seed=seed,
        weights_dir=weights_dir,
        strict=strict,
    )
    ext = "." + (fmt or "png").lower().lstrip(".")
    results: list[FileResult] = []
    for n, (path, rel) in enumerate(files, start=1):
        is_video = is_video_path(path)
        target = outdir / (rel.as_posix() + (path.suffix.lower() if is_video else ext))
        res = FileResult(str(path), str(target), "video" if is_video else "image")
        try:
            if target.resolve() == path.resolve():
                raise InputError(f"{path}: output would overwrite the input; choose another -o")
            if is_video:
                vr = anonymize_video(path, target, anon)
                res.n_faces, res.n_failed, res.report = vr.n_faces, vr.n_failed, vr.to_dict()
            else:
                img = load_image(path)  # an explicit file with an odd suffix: the decoder decides
                r = anon.anonymize(img)
                save_image(r.image, target)
                res.n_faces, res.n_failed, res.report = len(r.faces), len(r.failed), r.report
        except VeilchainError as exc:
            if strict or not isinstance(exc, AnonymizationError | InputError):
                raise
            res.output, res.error, res.error_kind = None, str(exc), type(exc).__name__
        results.append(res)
        if progress is not None:
            progress(str(path), n, len(files))
    return results
