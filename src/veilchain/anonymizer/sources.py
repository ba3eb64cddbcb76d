"""Where an input image comes from: a file on storage the workers share, or a URI.

Registration inputs are *sources*: a path (files and folders, expanded lazily by
``files.iter_input_images``) or a URI, ``file://`` or ``http(s)://``, given one per line in a
URI list (:func:`iter_uri_list`, read lazily). A source is stored as text with its image's
row, and read where the image is anonymized (:class:`SourceReader`: the worker process or
the Ray actor), so an image's bytes never pass through the registering process.

Fetching has a deadline for the whole body and the image size cap. A URI that answers but
cannot give an image (4xx, over the cap) is an ``InputError``, like an unreadable file; one
that does not answer (timeout, refused, 5xx, 408, 429) is a ``SourceUnavailableError``,
which leaves the registration to ``--resume`` later, like a storage node that is down.
"""

from __future__ import annotations

import http.client
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

from veilchain.anonymizer.files import iter_input_images
from veilchain.anonymizer.image_io import MAX_IMAGE_BYTES
from veilchain.errors import InputError, SourceUnavailableError

__all__ = [
    "FETCH_TIMEOUT_S",
    "SCHEMES",
    "SourceReader",
    "is_uri",
    "iter_sources",
    "iter_uri_list",
]

SCHEMES = ("file", "http", "https")
FETCH_TIMEOUT_S = 30.0
_CHUNK = 1 << 16
_TRANSIENT_STATUS = {408, 429}
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(source: str | Path) -> bool:
    """Whether ``source`` is a URI (``scheme://...``) rather than a path."""
    return isinstance(source, str) and _URI.match(source) is not None


def check_uri(uri: str) -> str:
    """``uri`` if its scheme is supported and it names something, else a one-line InputError."""
    parts = urlsplit(uri)
    if parts.scheme.lower() not in SCHEMES:
        raise InputError(
            f"{uri}: unsupported URI scheme {parts.scheme!r}; use {', '.join(SCHEMES)}"
        )
    if parts.scheme.lower() != "file" and not parts.hostname:
        raise InputError(f"{uri}: no host in the URI")
    if not parts.path or parts.path.endswith("/"):
        raise InputError(f"{uri}: the URI names no file")
    return uri


def iter_uri_list(uri_list: str | Path) -> Iterator[str]:
    """The URIs of a list file (``-``: standard input), one per line, read lazily; blank
    lines and ``#`` comments are skipped. A bad line is a one-line InputError naming it."""
    if str(uri_list) == "-":
        yield from _uris(sys.stdin, "stdin")
        return
    path = Path(uri_list)
    if not path.is_file():
        raise InputError(f"{path}: no such URI list")
    with path.open(encoding="utf-8") as fh:
        yield from _uris(fh, str(path))


def _uris(lines: IO[str], name: str) -> Iterator[str]:
    for n, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if not is_uri(text):
            raise InputError(f"{name} line {n}: {text!r} is not a URI (file://, http(s)://)")
        try:
            yield check_uri(text)
        except InputError as exc:
            raise InputError(f"{name} line {n}: {exc}") from None


def iter_sources(inputs: Iterable[str | Path]) -> Iterator[str]:
    """Registration sources, lazily: each path (file or folder) expanded to its image files,
    resolved; each URI (a ``str`` with a scheme) checked and kept as it is."""
    for item in inputs:
        if is_uri(item):
            yield check_uri(str(item))
        else:
            yield from (str(f.resolve()) for f in iter_input_images([item]))


def label(source: str | Path) -> str:
    """How errors name a source: a URI whole, a file by its name."""
    return str(source) if is_uri(source) else Path(source).name


@dataclass(frozen=True)
class SourceReader:
    """Reads a source where it is anonymized: a path as it is, ``file://`` as its path,
    ``http(s)://`` fetched within ``timeout_s`` (the whole body) and ``max_bytes``."""

    timeout_s: float = FETCH_TIMEOUT_S
    max_bytes: int = MAX_IMAGE_BYTES

    def read(self, source: str | Path) -> bytes | Path:
        """The image file's path, or the fetched bytes."""
        if not is_uri(source):
            return Path(source)
        parts = urlsplit(str(source))
        if parts.scheme.lower() == "file":
            if parts.hostname not in (None, "", "localhost"):
                raise InputError(f"{source}: a file:// URI must name a local file")
            return Path(unquote(parts.path))
        return self.fetch(str(source))

    def fetch(self, uri: str) -> bytes:
        """GET ``uri``: its body, or a one-line error (see the module docstring)."""
        deadline = time.monotonic() + self.timeout_s
        request = urllib.request.Request(uri, headers={"User-Agent": "veilchain"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                declared = resp.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise self._too_large(uri)
                body = bytearray()
                while chunk := resp.read(_CHUNK):
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise self._too_large(uri)
                    if time.monotonic() > deadline:
                        raise TimeoutError
                return bytes(body)
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code in _TRANSIENT_STATUS:
                raise SourceUnavailableError(
                    f"{uri}: HTTP {exc.code} {exc.reason}; try again later with --resume"
                ) from None
            raise InputError(f"{uri}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if isinstance(reason, TimeoutError):
                why = f"no complete answer within {self.timeout_s:g} s"
            else:
                why = f"cannot fetch ({reason or type(reason).__name__})"
            raise SourceUnavailableError(f"{uri}: {why}; try again later with --resume") from None

    def _too_large(self, uri: str) -> InputError:
        return InputError(
            f"{uri}: larger than the {self.max_bytes >> 20} MiB image limit; downscale it first"
        )
