"""The thin seam between the HTTP layer and ``VeilchainService``.

Everything the API needs from the service goes through these few functions, so a change in
the service's shape is one edit here. No chain, key or storage logic lives here.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import sessionmaker

from veilchain.config import Settings
from veilchain.platform.db import make_engine, make_session_factory


def build_service(settings: Settings):
    from veilchain.platform.service import build_service as _build

    return _build(settings)


def session_factory(service, settings: Settings) -> sessionmaker:
    sf = getattr(service, "session_factory", None)
    return sf if sf is not None else make_session_factory(make_engine(settings.db_url))


def roles_of(service) -> Callable[[str], set[str]]:
    return service.chain.roles_of


def chain_id(service) -> int:
    return int(service.chain.chain_id)


def job_handlers(ctx) -> dict:
    return {}
