"""Read a plate's text with Tesseract, restricted to the plate alphabet.

The text row is rectified (perspective-warped to an upright strip 48 px tall) and turned dark
on light. Two ways to run Tesseract, the same model (Debian ``tesseract-ocr-eng``'s
``eng.traineddata``) and the same rules:

- ``tesserocr`` (the default where its wheel installs): one engine kept in the process, the
  whitelist set to the alphabet, one line per plate (``PSM.SINGLE_LINE``), confidence = the
  mean of the characters' own confidences. About 5 ms a plate.
- ``pytesseract`` (the ``tesseract`` binary): one run per image, every plate a line of one
  stacked page. Tesseract 5.3 reports confidence 0 for any word its whitelist joined, so this
  reads unrestricted and keeps the alphabet's characters afterwards, refusing lines with many
  foreign ones. About 100-150 ms an image (process start and model load).

A reading counts when its confidence reaches ``min_confidence`` and its length is plausible
for the row (within 2 of the characters the detector counted); anything else is "unreadable",
and the plate then gets random text (see :mod:`veilchain.anonymizer.plates.stage`).
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from veilchain.anonymizer.plates.detect import PlateDetection
from veilchain.anonymizer.plates.dp import PLATE_ALPHABET
from veilchain.errors import AnonymizationError

#: Mean character confidence a reading needs (tesserocr: correct reads on the benchmark
#: score >= 68 in 95 % of cases; lines of symbols outside the alphabet 57-59).
DEFAULT_MIN_CONFIDENCE = 60.0
_STRIP_H = 48
_PAD = 16
#: Printed between groups on plates; read but not part of the text.
_SEPARATORS = " -.|_:'\u2018\u2019"
#: Where Debian (and most distributions) keep Tesseract's models.
_TESSDATA_DIRS = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
)


@dataclass(frozen=True)
class OcrResult:
    """``text`` is None when the plate was not read; ``reason`` then says why."""

    text: str | None
    confidence: float
    reason: str | None = None


def rectify(image: np.ndarray, quad: np.ndarray, height: int = _STRIP_H) -> np.ndarray:
    """The region inside ``quad`` (TL, TR, BR, BL) warped to an upright strip."""
    q = np.asarray(quad, np.float32)
    w = float(np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2
    h = float(np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    out_w = max(8, int(round(height * w / max(h, 1.0))))
    dst = np.array([[0, 0], [out_w - 1, 0], [out_w - 1, height - 1], [0, height - 1]], np.float32)
    m = cv2.getPerspectiveTransform(q, dst)
    return cv2.warpPerspective(
        image, m, (out_w, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )


def _tessdata() -> str | None:
    env = os.environ.get("TESSDATA_PREFIX")
    for d in ([env] if env else []) + list(_TESSDATA_DIRS):
        if d and (Path(d) / "eng.traineddata").exists():
            return d
    return None


class PlateReader:
    """Tesseract restricted to ``alphabet``; raises on construction when it is missing."""

    def __init__(
        self,
        alphabet: str = PLATE_ALPHABET,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        engine: str = "auto",
    ) -> None:
        """``engine``: "tesserocr", "pytesseract" or "auto" (the first that works)."""
        self.alphabet = alphabet
        self.min_confidence = float(min_confidence)
        self._api: Any = None  # tesserocr's PyTessBaseAPI, when that engine is used
        self._tess: Any = None  # the pytesseract module, otherwise
        self._lock = threading.Lock()  # one engine per reader: one line at a time
        problems = []
        if engine in ("auto", "tesserocr"):
            try:
                self._open_tesserocr()
            except AnonymizationError as exc:
                problems.append(str(exc))
        if self._api is None and engine in ("auto", "pytesseract"):
            try:
                self._open_pytesseract()
            except AnonymizationError as exc:
                problems.append(str(exc))
        if self._api is None and self._tess is None:
            raise AnonymizationError("; ".join(problems) or f"unknown OCR engine {engine!r}")

    def _open_tesserocr(self) -> None:
        try:
            import tesserocr
        except ImportError as exc:
            raise AnonymizationError("tesserocr is not installed (pip install tesserocr)") from exc
        path = _tessdata()
        if path is None:
            raise AnonymizationError(
                "no eng.traineddata for Tesseract: apt-get install tesseract-ocr"
            )
        self._api = tesserocr.PyTessBaseAPI(
            path=path, lang="eng", psm=tesserocr.PSM.SINGLE_LINE, oem=tesserocr.OEM.LSTM_ONLY
        )
        self._api.SetVariable("tessedit_char_whitelist", self.alphabet)
        self._ril = tesserocr.RIL.SYMBOL
        self._iterate = tesserocr.iterate_level
        self.engine = "tesserocr " + tesserocr.tesseract_version().split()[1]

    def _open_pytesseract(self) -> None:
        try:
            import pytesseract
        except ImportError as exc:
            raise AnonymizationError(
                "plate OCR needs pytesseract: pip install pytesseract (and apt-get install "
                "tesseract-ocr)"
            ) from exc
        if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
            raise AnonymizationError(
                "plate OCR needs the tesseract binary: apt-get install tesseract-ocr"
            )
        self._tess = pytesseract
        self.engine = f"pytesseract, tesseract {pytesseract.get_tesseract_version()}"

    def describe(self) -> dict:
        return {
            "engine": self.engine,
            "alphabet": self.alphabet,
            "min_confidence": self.min_confidence,
        }

    def _strip(self, image: np.ndarray, plate: PlateDetection) -> np.ndarray:
        strip = rectify(image, plate.row_quad)
        gray = cv2.cvtColor(strip, cv2.COLOR_RGB2GRAY) if strip.ndim == 3 else strip
        if not plate.dark_text:
            gray = 255 - gray
        gray = cv2.normalize(gray, None, 0, 255, cv2.NORM_MINMAX)  # type: ignore[call-overload]  # cv2 stubs: dst=None is valid
        ground = int(np.percentile(gray, 90))  # pad with the plate's own ground, not streaks
        return cv2.copyMakeBorder(gray, _PAD, _PAD, _PAD, _PAD, cv2.BORDER_CONSTANT, value=ground)

    def read_all(self, image: np.ndarray, plates: list[PlateDetection]) -> list[OcrResult]:
        """Read every plate of an image in one Tesseract run (its start-up dominates the
        cost of one plate): the strips are stacked into one page, one line each."""
        if not plates:
            return []
        strips = [self._strip(image, p) for p in plates]
        if self._api is not None:
            with self._lock:
                return [self._read_line(s, p) for s, p in zip(strips, plates, strict=True)]
        width = max(s.shape[1] for s in strips)
        page = np.vstack(
            [
                cv2.copyMakeBorder(s, 0, 0, 0, width - s.shape[1], cv2.BORDER_CONSTANT, value=255)
                for s in strips
            ]
        )
        # Tesseract 5.3 reports confidence 0 for any word its whitelist joined, so the
        # page is read unrestricted and each line kept to the alphabet afterwards
        try:
            data = self._tess.image_to_data(
                page, config="--psm 6 --oem 1", output_type=self._tess.Output.DICT
            )
        except self._tess.TesseractError as exc:  # a broken install: fail closed, say why
            reason = f"tesseract failed: {str(exc).strip()[:80]}"
            return [OcrResult(None, 0.0, reason) for _ in plates]
        lines: list[list[tuple[str, float]]] = [[] for _ in plates]
        step = strips[0].shape[0]
        for text, conf, top, h in zip(
            data["text"], data["conf"], data["top"], data["height"], strict=True
        ):
            if text.strip() and float(conf) >= 0:
                i = min(len(plates) - 1, int((top + h / 2) // step))
                lines[i].append((text.strip(), float(conf)))
        return [self._judge(words, p) for words, p in zip(lines, plates, strict=True)]

    def _read_line(self, strip: np.ndarray, plate: PlateDetection) -> OcrResult:
        from PIL import Image

        self._api.SetImage(Image.fromarray(strip))
        if not self._api.Recognize():
            return OcrResult(None, 0.0, "tesseract could not recognize the line")
        chars = []
        for r in self._iterate(self._api.GetIterator(), self._ril):
            try:
                c = r.GetUTF8Text(self._ril)
            except RuntimeError:  # an empty symbol (tesserocr raises instead of "")
                continue
            if c and c.strip():
                chars.append((c.strip(), float(r.Confidence(self._ril))))
        return self._judge(chars, plate)

    def _judge(self, words: list[tuple[str, float]], plate: PlateDetection) -> OcrResult:
        raw = "".join(w for w, _ in words).upper()
        text = "".join(c for c in raw if c in self.alphabet)
        if not text:
            return OcrResult(None, 0.0, "no characters read")
        foreign = [c for c in raw if c not in self.alphabet and c not in _SEPARATORS]
        if len(foreign) > max(1, len(text) // 3):
            return OcrResult(None, 0.0, "characters outside the plate alphabet")
        conf = float(np.mean([c for _, c in words]))
        if conf < self.min_confidence:
            return OcrResult(
                None, conf, f"low OCR confidence ({conf:.0f} < {self.min_confidence:.0f})"
            )
        if abs(len(text) - plate.n_chars) > 2 or len(text) < 3:
            return OcrResult(
                None, conf, f"read {len(text)} characters where the row has {plate.n_chars}"
            )
        return OcrResult(text, conf)
