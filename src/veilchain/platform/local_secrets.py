"""Per-installation secrets: what an unset secret becomes outside prod.

No secret is shared between installations. A JWT secret, KMS passphrase or keystore
passphrase that is not configured is generated at random on first use and kept in
``<data dir>/secrets/`` (directory 0700, files 0600, created exclusively so that two processes
starting at once agree on one value). Prod never gets here for these: ``config.Settings``
refuses prod without them.

A data directory created before this existed (its keystore or database present, no secrets
file) keeps the old public default passphrase so that it still opens; a warning says so.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veilchain.errors import ConfigError

if TYPE_CHECKING:
    from veilchain.config import Settings

__all__ = [
    "anonymizer_secret",
    "ensure_private",
    "read_or_create_secret",
    "required_secret",
    "resolve_local_secrets",
]

log = logging.getLogger(__name__)
SECRETS_DIR = "secrets"
_LEGACY_PASSPHRASE = "veilchain-dev"


def ensure_private(path: Path) -> None:
    """chmod 0600 (a file) / 0700 (a directory) where it is not already; errors ignored on
    filesystems without modes."""
    try:
        mode = 0o700 if path.is_dir() else 0o600
        if path.exists() and (path.stat().st_mode & 0o777) != mode:
            path.chmod(mode)
    except OSError:
        pass


def read_or_create_secret(path: Path, nbytes: int = 32) -> str:
    """The secret in ``path`` (hex), created with ``nbytes`` random bytes, mode 0600, if absent."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    ensure_private(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text().strip()
        if value:
            ensure_private(path)
            return value
        # an empty file: a process died between create and write; take it over
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC, 0o600)
    try:
        value = secrets.token_hex(nbytes)
        os.write(fd, value.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return path.read_text().strip()


def anonymizer_secret(data_dir: Path) -> bytes:
    """The key of the anonymizer's per-face random streams (``Anonymizer(secret=...)``): never
    published, so nobody can recompute a face's stream from a photo."""
    return read_or_create_secret(Path(data_dir) / SECRETS_DIR / "anonymizer_secret").encode()


def _legacy(data_dir: Path, what: str, marker: Path, name: str) -> str | None:
    if (data_dir / SECRETS_DIR / name).exists() or not marker.exists():
        return None
    if marker.is_dir() and not any(marker.iterdir()):
        return None
    log.warning(
        "%s in %s was created with the old public default %s; set it explicitly and re-encrypt",
        what, data_dir, name,
    )  # fmt: skip
    return _LEGACY_PASSPHRASE


def required_secret(value: str | None, variable: str) -> str:
    """``value`` once :func:`resolve_local_secrets` has run; a ConfigError naming ``variable``
    if it is still unset (a caller skipped the resolution)."""
    if value is None:
        raise ConfigError(
            f"{variable} is unset: set it, or build the settings through resolve_local_secrets"
        )
    return value


def resolve_local_secrets(settings: Settings) -> Settings:
    """``settings`` with every unset secret filled from (or generated in) the data directory."""
    data_dir = Path(settings.data_dir)
    sdir = data_dir / SECRETS_DIR
    auth, kms, chain = settings.auth, settings.kms, settings.chain
    updates: dict[str, Any] = {}
    if auth.jwt_secret is None:
        updates["auth"] = auth.model_copy(
            update={"jwt_secret": read_or_create_secret(sdir / "jwt_secret")}
        )
    if kms.passphrase is None and not kms.master_key_hex:
        db_file = data_dir / "veilchain.db"
        value = None if settings.db.url else _legacy(data_dir, "the KMS", db_file, "kms_passphrase")
        updates["kms"] = kms.model_copy(
            update={"passphrase": value or read_or_create_secret(sdir / "kms_passphrase")}
        )
    if chain.keystore_passphrase is None:
        keystore = data_dir / "keystore"
        value = _legacy(data_dir, "the keystore", keystore, "keystore_passphrase")
        updates["chain"] = chain.model_copy(
            update={
                "keystore_passphrase": value or read_or_create_secret(sdir / "keystore_passphrase")
            }
        )
    return settings.model_copy(update=updates) if updates else settings
