"""Anonymize many files, in worker processes when asked: the registration's batch engine.

``AnonymizerFactory`` is picklable, so each worker builds its own anonymizer once (the model
loads once per process). ``anonymize_files`` reads its sources (paths or URIs,
``sources.py``) lazily, keeps a bounded number in flight, yields one :class:`AnonymizedFile`
per source, in input order, and stops the workers when the caller stops reading.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Generator, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from veilchain.anonymizer.sources import SourceReader, label
from veilchain.errors import IdentityCheckError

__all__ = ["AnonymizedFile", "AnonymizerFactory", "anonymize_file", "anonymize_files"]

_IN_FLIGHT_PER_WORKER = 2


@dataclass(frozen=True)
class AnonymizerFactory:
    """Builds an anonymizer for (method, epsilon, seed) from fixed ``build_anonymizer``
    keywords (the settings' and the installation's secret)."""

    options: dict = field(default_factory=dict)

    def __call__(self, method: str, *, epsilon: float | None = None, seed: int = 0) -> Any:
        from veilchain.anonymizer import build_anonymizer

        return build_anonymizer(method, epsilon=epsilon, seed=seed, **self.options)


@dataclass(frozen=True)
class AnonymizedFile:
    png: bytes
    report: dict
    width: int
    height: int


def anonymize_file(
    anonymizer: Any,
    source: str | Path,
    allow_recognizable: bool,
    reader: SourceReader = SourceReader(),
) -> AnonymizedFile:
    """One source (a path or a URI, read here) -> PNG bytes and its private report. A face
    that stays recognizable after every retry fails the file unless ``allow_recognizable``."""
    from veilchain.anonymizer.image_io import encode_image, load_image

    data = reader.read(source)
    image = load_image(data, name=str(source)) if isinstance(data, bytes) else load_image(data)
    result = anonymizer.anonymize(image)
    if result.failed and not allow_recognizable:
        raise IdentityCheckError(
            f"{label(source)}: {len(result.failed)} face(s) stayed recognizable after every"
            " retry; use another method or --allow-recognizable to publish it with that report"
        )
    report = {
        **{k: v for k, v in result.report.items() if k != "timing_s"},
        "faces": [f.to_dict() for f in result.faces],
    }
    png = encode_image(result.image, "png")
    return AnonymizedFile(png, report, int(image.shape[1]), int(image.shape[0]))


def anonymize_files(
    build: Any,
    sources: Iterable[str | Path],
    *,
    workers: int = 1,
    allow_recognizable: bool = False,
    reader: SourceReader = SourceReader(),
) -> Generator[AnonymizedFile, None, None]:
    """Anonymize ``sources`` in order with anonymizers from ``build()`` (a picklable
    callable), in ``workers`` processes when more than one is asked for. ``sources`` is read
    lazily, at most two per worker ahead of the caller: memory does not grow with their
    number."""
    ahead = iter(sources)
    head = list(itertools.islice(ahead, 2))
    source = itertools.chain(head, ahead)
    if not head:
        return
    if workers <= 1 or len(head) == 1:
        anonymizer = build()
        for s in source:
            yield anonymize_file(anonymizer, s, allow_recognizable, reader)
        return
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_Worker.start,
        initargs=(build,),
    )
    run = partial(_Worker.run, allow_recognizable=allow_recognizable, reader=reader)
    pending: deque[Future[AnonymizedFile]] = deque()
    try:
        for s in source:
            pending.append(pool.submit(run, s))
            if len(pending) >= workers * _IN_FLIGHT_PER_WORKER:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(cancel_futures=True)


def one_thread() -> None:
    """One torch thread and one OpenCV thread in this worker process (the workers use every
    core, and threads within each only contend), set before the models load: their
    onnxruntime sessions take torch's thread count when they open."""
    import cv2

    cv2.setNumThreads(1)
    try:
        import torch
    except ImportError:  # pragma: no cover - a declared dependency
        return
    torch.set_num_threads(1)


class _Worker:
    """The anonymizer one worker process holds (built once by the pool's initializer)."""

    anonymizer: Any = None

    @classmethod
    def start(cls, build: Any) -> None:
        parent = os.getppid()

        def exit_with_parent() -> None:  # a SIGKILLed registration must not leave workers
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=exit_with_parent, daemon=True).start()
        one_thread()
        cls.anonymizer = build()

    @classmethod
    def run(cls, source: str, *, allow_recognizable: bool, reader: SourceReader) -> AnonymizedFile:
        return anonymize_file(cls.anonymizer, source, allow_recognizable, reader)
