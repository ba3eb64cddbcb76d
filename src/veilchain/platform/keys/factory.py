"""``build_key_manager``: the key service wired from settings values (database, master key
source, audit log)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from veilchain.errors import ConfigError, InputError
from veilchain.platform.audit import AuditLog
from veilchain.platform.db import make_engine, make_session_factory
from veilchain.platform.keys.keystore import KekSource, PassphraseSource, RawKeySource
from veilchain.platform.keys.manager import KeyManager

__all__ = ["build_key_manager"]


def build_key_manager(
    *,
    db_url: str | None = None,
    session_factory: sessionmaker[Session] | None = None,
    passphrase: str | None = None,
    master_key_hex: str | None = None,
    data_dir: str | Path | None = None,
    audit: AuditLog | None = None,
    scrypt_n: int | None = None,
) -> KeyManager:
    """Wire a KeyManager from settings values. ``master_key_hex`` wins over ``passphrase``;
    without ``db_url``/``session_factory`` the database is ``data_dir/veilchain.db``."""
    if session_factory is None:
        if db_url is None:
            if data_dir is None:
                raise InputError("build_key_manager needs db_url, session_factory or data_dir")
            db_url = f"sqlite:///{(Path(data_dir) / 'veilchain.db').resolve()}"
        engine = make_engine(db_url)
        from veilchain.platform.migrations import migrate

        migrate(engine)
        session_factory = make_session_factory(engine)
    if master_key_hex:
        source: KekSource = RawKeySource.from_hex(master_key_hex)
    elif passphrase:
        source = (
            PassphraseSource(passphrase, n=scrypt_n) if scrypt_n else PassphraseSource(passphrase)
        )
    else:
        raise ConfigError("set VEILCHAIN_KMS__PASSPHRASE or VEILCHAIN_KMS__MASTER_KEY_HEX")
    return KeyManager(session_factory, source, audit or AuditLog(session_factory))
