"""Reading and writing images: always RGB ``uint8`` in, never any metadata out.

:func:`load_image` accepts a path or the encoded bytes and returns an (H, W, 3) RGB ``uint8``
array: EXIF orientation applied, grey and palette expanded, alpha composited over white, 16-bit
and float samples scaled to 8 bits. Corrupt, truncated, non-image and oversized
(decompression-bomb) input raises :class:`~veilchain.errors.ImageDecodeError` with one line
naming the file. :func:`save_image` / :func:`encode_image` build a fresh image from the pixels
only, so no EXIF, GPS, ICC profile, XMP or text chunk of the input can survive.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from veilchain.errors import ImageDecodeError, InputError

#: Refuse images with more pixels than this (about 10,000 x 10,000) before decoding them.
DEFAULT_MAX_PIXELS = 100_000_000
#: The largest encoded image accepted (an upload's file, a fetched URI's body).
MAX_IMAGE_BYTES = 50 * 1024 * 1024
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm"}
_FORMATS = {
    "jpg": "JPEG",
    "jpeg": "JPEG",
    "png": "PNG",
    "bmp": "BMP",
    "tif": "TIFF",
    "tiff": "TIFF",
    "webp": "WEBP",
    "ppm": "PPM",
}


def _to_rgb8(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img).astype(np.float64)
        if mode != "I" or arr.max(initial=0) > 255:
            arr = arr / 257.0
        grey = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img).astype(np.float64)
        arr = np.nan_to_num(arr)
        if arr.max(initial=0) <= 1.0:
            arr = arr * 255.0
        grey = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def load_image(
    source: str | os.PathLike | bytes,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode an image file or bytes to an (H, W, 3) RGB uint8 array (see module docstring)."""
    if isinstance(source, bytes | bytearray | memoryview):
        label = name or "<bytes>"
        stream: io.BytesIO | str = io.BytesIO(bytes(source))
    else:
        label = name or str(source)
        if not Path(source).is_file():
            raise InputError(f"{label}: no such file")
        stream = str(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageDecodeError(
                        f"{label}: {w}x{h} is {w * h:,} pixels, over the {max_pixels:,} limit "
                        "(possible decompression bomb); downscale it first"
                    )
                if w == 0 or h == 0:
                    raise ImageDecodeError(f"{label}: empty image")
                img.load()
                return _to_rgb8(ImageOps.exif_transpose(img) or img)
    except ImageDecodeError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(f"{label}: not an image file (format not recognized)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(
            f"{label}: too many pixels (possible decompression bomb); downscale it first"
        ) from exc
    except (OSError, SyntaxError, ValueError, TypeError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageDecodeError(f"{label}: corrupt or unsupported image ({reason})") from exc


def _check_array(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError(f"expected an RGB uint8 array (H, W, 3), got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr)


def _format_for(path: str | os.PathLike | None, fmt: str | None) -> str:
    key = (fmt or (Path(path).suffix.lstrip(".") if path else "") or "png").lower()
    if key not in _FORMATS:
        raise InputError(f"unsupported output format {key!r}; use one of {sorted(_FORMATS)}")
    return _FORMATS[key]


def encode_image(arr: np.ndarray, fmt: str = "png", *, quality: int = 95) -> bytes:
    """Encode pixels only (no metadata of any kind) as ``fmt`` bytes."""
    pil_fmt = _format_for(None, fmt)
    img = Image.fromarray(_check_array(arr), "RGB")  # a fresh image: empty info, no EXIF/ICC
    buf = io.BytesIO()
    kwargs: dict = {}
    if pil_fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = quality
    if pil_fmt == "PNG":
        kwargs["optimize"] = False
    img.save(buf, pil_fmt, **kwargs)
    return buf.getvalue()


def save_image(
    arr: np.ndarray, path: str | os.PathLike, fmt: str | None = None, *, quality: int = 95
) -> Path:
    """Write ``arr`` to ``path`` atomically with no metadata; format from ``fmt`` or suffix."""
    path = Path(path)
    data = encode_image(arr, _format_for(path, fmt).lower(), quality=quality)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES
