"""dlib's 128-d face embedding (the re-identification model of the identity checks) and the
distance between embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from veilchain.anonymizer.dlib_io import dlib_detections, model_path, require_rgb8
from veilchain.errors import ModelLoadError

#: How the ResNet runs: onnxruntime, PyTorch (both with dlib's weights) or dlib itself.
BACKENDS = ("onnx", "torch", "dlib")


class FaceEmbedder:
    """dlib's 128-d ResNet face descriptor (the re-identification model used for checks).

    Faces are given by their 68 landmarks; dlib cuts its 150x150 chip (padding 0.25). Same-person
    threshold: Euclidean distance < 0.6. The model loads on first use and stays on the instance.

    ``backend="onnx"`` (default) runs dlib's network, with dlib's weights read from the same
    model file, through onnxruntime (exported from ``backend="torch"``, the same network in
    PyTorch; see :mod:`veilchain.anonymizer.dlib_resnet`): the same embeddings to
    ~1e-6, 4-5x (PyTorch) and 8-10x (onnxruntime) the speed of the BLAS-less ``dlib-bin``
    build on one thread. ``backend="dlib"`` calls ``compute_face_descriptor``;
    ``num_jitters > 0`` (dlib's random augmentation) always does. The onnxruntime session
    takes as many threads as torch has when it opens (one in batch workers).
    """

    def __init__(
        self, *, num_jitters: int = 0, model_path: str | None = None, backend: str = "onnx"
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(
                f"unknown embedder backend {backend!r}; use one of {', '.join(BACKENDS)}"
            )
        self.num_jitters = num_jitters
        self.model_path = model_path
        self.backend = "dlib" if num_jitters > 0 else backend
        # dlib's face_recognition_model_v1, a DlibResNet or its onnxruntime session
        self._model: Any = None
        if self.backend != "dlib":
            # imported now, not at the first embedding, so that process set-up code that
            # pins torch's threads when torch is loaded (platform.service's workers) sees it
            import torch  # noqa: F401

    def _net(self):
        if self._model is None:
            path = self.model_path or model_path("embedding")
            if self.backend == "onnx":
                import torch

                from veilchain.anonymizer.dlib_resnet import load_dlib_resnet_onnx

                self._model = load_dlib_resnet_onnx(path, torch.get_num_threads())
                return self._model
            if self.backend == "torch":
                from veilchain.anonymizer.dlib_resnet import load_dlib_resnet

                self._model = load_dlib_resnet(path)
                return self._model
            import dlib

            try:
                self._model = dlib.face_recognition_model_v1(path)
            except RuntimeError as exc:
                raise ModelLoadError(f"cannot load the dlib face embedding model: {exc}") from exc
        return self._model

    def _chips(self, image: np.ndarray, lms: list[np.ndarray]) -> list[np.ndarray]:
        import dlib

        from veilchain.anonymizer.dlib_resnet import CHIP_PADDING, CHIP_SIZE

        return dlib.get_face_chips(
            require_rgb8(image), dlib_detections(lms), CHIP_SIZE, CHIP_PADDING
        )

    def embed(self, image: np.ndarray, landmarks: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Embeddings (N, 128) float32 of the faces given by N landmark arrays in ``image``."""
        lms = _landmark_list(landmarks)
        if not lms:
            return np.zeros((0, 128), np.float32)
        if self.backend != "dlib":
            from veilchain.anonymizer.dlib_resnet import embed_chips

            return embed_chips(self._net(), self._chips(image, lms))
        vecs = self._net().compute_face_descriptor(
            require_rgb8(image), dlib_detections(lms), self.num_jitters
        )
        return np.asarray([np.asarray(v) for v in vecs], dtype=np.float32)

    def embed_batch(
        self, images: Sequence[np.ndarray], landmarks: Sequence[Sequence[np.ndarray]]
    ) -> list[np.ndarray]:
        """One (N_i, 128) array per image; one batched call into the network."""
        if self.backend != "dlib":
            from veilchain.anonymizer.dlib_resnet import embed_chips

            chips, counts = [], []
            for img, lms in zip(images, landmarks, strict=True):
                lms = _landmark_list(lms)
                counts.append(len(lms))
                if lms:
                    chips.extend(self._chips(img, lms))
            flat = embed_chips(self._net(), chips)
            bounds = np.cumsum([0, *counts])
            return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

        imgs, batches, counts = [], [], []
        for img, lms in zip(images, landmarks, strict=True):
            lms = _landmark_list(lms)
            counts.append(len(lms))
            if lms:
                imgs.append(require_rgb8(img))
                batches.append(dlib_detections(lms))
        vecs = (
            iter(self._net().compute_face_descriptor(imgs, batches, self.num_jitters))
            if imgs
            else iter(())
        )
        out = []
        for n in counts:
            if n == 0:
                out.append(np.zeros((0, 128), np.float32))
            else:
                out.append(np.asarray([np.asarray(v) for v in next(vecs)], dtype=np.float32))
        return out


def _landmark_list(landmarks: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    if isinstance(landmarks, np.ndarray) and landmarks.ndim == 2:
        return [landmarks]
    return [np.asarray(lm, np.float32).reshape(68, 2) for lm in landmarks]


def face_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between embeddings: (N, 128) x (M, 128) -> (N, M)."""
    a = np.atleast_2d(np.asarray(a, np.float64))
    b = np.atleast_2d(np.asarray(b, np.float64))
    return np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), 0.0))
