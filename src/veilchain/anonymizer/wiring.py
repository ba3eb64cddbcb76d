"""Wiring an :class:`~veilchain.anonymizer.pipeline.Anonymizer` from names and numbers: the
detector, the method, the identity check, the gallery and the plates stage."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from veilchain.anonymizer.detectors import DEFAULT_SWEEP_THRESHOLD, build_detector
from veilchain.anonymizer.embedding import FaceEmbedder
from veilchain.anonymizer.files import gallery_embeddings
from veilchain.anonymizer.methods import build_fallback, build_method
from veilchain.anonymizer.pipeline import DEFAULT_IDENTITY_THRESHOLD, Anonymizer
from veilchain.anonymizer.plates.stage import DEFAULT_PLATE_EPSILON, build_plate_anonymizer
from veilchain.errors import InputError

#: What an anonymizer covers, and the default of :func:`build_anonymizer`.
IDENTIFIERS = ("faces", "plates")
DEFAULT_IDENTIFIERS = ("faces",)


def build_anonymizer(
    method: str,
    *,
    epsilon: float | None = None,
    seed: int = 0,
    weights_dir: Path | None = None,
    identity_check: bool = True,
    identity_threshold: float = DEFAULT_IDENTITY_THRESHOLD,
    identity_retries: int | None = None,
    strict: bool = False,
    detector_name: str = "centerface",
    detector_threshold: float | None = None,
    upsample: int | None = None,
    second_look: bool = True,
    sweep_threshold: float | None = None,
    secret: bytes | None = None,
    detector=None,
    embedder: FaceEmbedder | None = None,
    gallery: Sequence[str | Path] = (),
    features: Sequence[str] = (),
    identifiers: Sequence[str] | str = DEFAULT_IDENTIFIERS,
    plate_epsilon: float | None = None,
) -> Anonymizer:
    """Wire a detector, the method and (unless ``identity_check=False``) a dlib embedder.

    ``detector_name``: "centerface" (default) or "hog" (``upsample`` is HOG's).
    ``second_look``: sweep each output for faces detection missed (on by default), and
    cover candidates down to ``sweep_threshold`` (None: :data:`DEFAULT_SWEEP_THRESHOLD`).
    ``secret``: keys the per-face random streams (None: fresh entropy, so two anonymizers
    differ; pass the installation's secret for reproducible output).
    ``gallery``: photos (files or folders) of known people; every output face must also be
    at least ``identity_threshold`` from each face in them (see :func:`gallery_embeddings`).
    ``features``: regenerate only these features of each face (anonymizer/features.py).
    ``identifiers``: "faces", "plates" or both (a list or a comma string); ``plate_epsilon``
    is the plates' text budget (None: :data:`DEFAULT_PLATE_EPSILON`)."""
    wanted = parse_identifiers(identifiers)
    m = build_method(
        method, epsilon=epsilon, seed=seed, weights_dir=weights_dir, features=tuple(features)
    )
    detector = detector or build_detector(
        detector_name, threshold=detector_threshold, upsample=upsample
    )
    embedder = (embedder or FaceEmbedder()) if identity_check else None
    if gallery and embedder is None:
        raise InputError("--gallery needs the identity check")
    anonymizer = Anonymizer(
        detector,
        m,
        embedder=embedder,
        identity_threshold=identity_threshold,
        identity_retries=identity_retries,
        seed=seed,
        strict=strict,
        fallback=build_fallback(method, epsilon),
        second_look=second_look,
        sweep_threshold=DEFAULT_SWEEP_THRESHOLD if sweep_threshold is None else sweep_threshold,
        secret=secret,
        plates=(
            build_plate_anonymizer(
                DEFAULT_PLATE_EPSILON if plate_epsilon is None else plate_epsilon
            )
            if "plates" in wanted
            else None
        ),
        faces="faces" in wanted,
    )
    if gallery:
        assert embedder is not None
        anonymizer.gallery = gallery_embeddings(gallery, anonymizer, embedder)
    return anonymizer


def parse_identifiers(identifiers: Sequence[str] | str) -> tuple[str, ...]:
    """("faces", "plates") from a list or a comma string; unknown names are an InputError."""
    if isinstance(identifiers, str):
        identifiers = identifiers.split(",")
    names = tuple(dict.fromkeys(n.strip().lower() for n in identifiers if n.strip()))
    unknown = [n for n in names if n not in IDENTIFIERS]
    if unknown or not names:
        raise InputError(
            f"unknown identifier(s) {', '.join(unknown) or '(none)'}: choose from "
            f"{', '.join(IDENTIFIERS)} (e.g. --identifiers faces,plates)"
        )
    return names
