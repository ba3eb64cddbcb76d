"""One APIRouter per resource; ``api_router`` includes them all."""

from fastapi import APIRouter

from veilchain.platform.api.routes import auth, jobs, system

api_router = APIRouter()
for _module in (auth, jobs, system):
    api_router.include_router(_module.router)
