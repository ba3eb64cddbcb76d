"""Import every module that defines tables, so ``Base.metadata`` is complete."""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

# Modules that register tables on Base. Missing ones (not landed yet) are skipped.
TABLE_MODULES = (
    "veilchain.platform.auth",
    "veilchain.platform.jobs",
    "veilchain.platform.audit",
    "veilchain.platform.audit_entries",
    "veilchain.platform.keys",
    "veilchain.platform.keys.tables",
    "veilchain.platform.registrations",
)


def load_models() -> MetaData:
    from veilchain.platform.db import Base

    for name in TABLE_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return Base.metadata
