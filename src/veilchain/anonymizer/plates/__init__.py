"""Licence plates: detect (:mod:`.detect`), read (:mod:`.ocr`), perturb the text under
epsilon-DP (:mod:`.dp`), draw a new plate in place (:mod:`.render`); :mod:`.stage` runs them
as the pipeline's ``plates`` stage. See docs/anonymizer.md, "Licence plates"."""

from veilchain.anonymizer.plates.detect import PlateDetection, PlateDetector
from veilchain.anonymizer.plates.dp import PLATE_ALPHABET, edit_distance, randomized_response
from veilchain.anonymizer.plates.ocr import OcrResult, PlateReader
from veilchain.anonymizer.plates.stage import (
    DEFAULT_PLATE_EPSILON,
    PlateAnonymizer,
    PlateReport,
    build_plate_anonymizer,
)

__all__ = [
    "DEFAULT_PLATE_EPSILON",
    "PLATE_ALPHABET",
    "OcrResult",
    "PlateAnonymizer",
    "PlateDetection",
    "PlateDetector",
    "PlateReader",
    "PlateReport",
    "build_plate_anonymizer",
    "edit_distance",
    "randomized_response",
]
