"""veilchain.anonymizer: detect faces, replace their identity, measure what a recognizer sees.

Generators (CIAGAN, DP latent) load lazily through :func:`build_anonymizer`, so importing this
package needs no weights and no torch.
"""

from veilchain.anonymizer.alignment import align_face
from veilchain.anonymizer.embedding import FaceEmbedder
from veilchain.anonymizer.faces import FaceDetection, HogDetector
from veilchain.anonymizer.files import anonymize_paths, collect_inputs
from veilchain.anonymizer.image_io import load_image, save_image
from veilchain.anonymizer.methods import (
    METHODS,
    FaceGenerator,
    RegionMethod,
    build_method,
    validate_method,
)
from veilchain.anonymizer.pipeline import Anonymizer
from veilchain.anonymizer.report import AnonymizationResult, FaceReport
from veilchain.anonymizer.wiring import build_anonymizer

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
    "build_method",
    "collect_inputs",
    "validate_method",
    "load_image",
    "save_image",
]
