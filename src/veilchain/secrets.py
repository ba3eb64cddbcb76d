"""Per-installation secrets kept in the data directory (never published, never shared).

:func:`secret_file` returns the bytes of a secret file, creating it with fresh random bytes
and owner-only permissions (0600) on first use, so no two data directories share a secret.
"""

from __future__ import annotations

import os
from pathlib import Path

from veilchain.errors import ConfigError

#: Keys the anonymizer's per-face random streams (see ``Anonymizer(secret=...)``).
ANONYMIZER_SECRET_FILE = "anonymizer.secret"


def secret_file(path: Path, nbytes: int = 32) -> bytes:
    """The secret stored at ``path``; created (0600, ``nbytes`` random bytes) if absent."""
    path = Path(path)
    try:
        return _read(path, nbytes)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return _read(path, nbytes)
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(nbytes))
        f.flush()
        os.fsync(f.fileno())
    return _read(path, nbytes)


def _read(path: Path, nbytes: int) -> bytes:
    data = path.read_bytes()
    if len(data) != nbytes:
        raise ConfigError(
            f"{path} holds {len(data)} bytes, expected {nbytes}; restore it from a backup"
        )
    return data
