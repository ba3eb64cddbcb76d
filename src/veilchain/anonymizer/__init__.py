"""veilchain.anonymizer: detect faces, replace their identity, measure what a recognizer sees.

Generators (CIAGAN, DP latent) load lazily through :func:`build_anonymizer`, so importing this
package needs no weights and no torch.
"""

from veilchain.anonymizer.faces import FaceDetection, FaceEmbedder, HogDetector, align_face
from veilchain.anonymizer.image_io import load_image, save_image
from veilchain.anonymizer.pipeline import (
    METHODS,
    AnonymizationResult,
    Anonymizer,
    FaceGenerator,
    FaceReport,
    RegionMethod,
    anonymize_paths,
    build_anonymizer,
)

__all__ = [
    "METHODS",
    "AnonymizationResult",
    "Anonymizer",
    "FaceDetection",
    "HogDetector",
    "FaceEmbedder",
    "FaceGenerator",
    "FaceReport",
    "RegionMethod",
    "align_face",
    "anonymize_paths",
    "build_anonymizer",
    "load_image",
    "save_image",
]
