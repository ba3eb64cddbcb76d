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
    verification,
)

api_router = APIRouter()
for _module in (auth, datasets, images, verification, grants, keys, jobs, audit, system, methods):
    api_router.include_router(_module.router)
api_router.include_router(grants.reencryptions)
