"""One APIRouter per resource; ``api_router`` includes them all."""

from fastapi import APIRouter

from veilchain.platform.api.routes import (
    audit,
    auth,
    datasets,
    grants,
    images,
    jobs,
    keys,
    methods,
    system,
    uploads,
    verification,
)

api_router = APIRouter()
_MODULES = (
    auth,
    datasets,
    images,
    verification,
    grants,
    keys,
    jobs,
    audit,
    system,
    methods,
    uploads,
)
for _module in _MODULES:
    api_router.include_router(_module.router)
api_router.include_router(grants.reencryptions)
