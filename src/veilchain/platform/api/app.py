"""``create_app(settings)``: the FastAPI application, its context, worker and dashboard."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from veilchain.config import Settings, get_settings
from veilchain.platform import auth
from veilchain.platform.api.deps import ApiContext
from veilchain.platform.api.guard import BodyGuard
from veilchain.platform.api.headers import SecurityHeaders
from veilchain.platform.api.pages import mount_pages
from veilchain.platform.api.problems import (
    PROBLEM_MEDIA_TYPE,
    install_problem_handlers,
    problem_responses,
)
from veilchain.platform.api.routes import api_router
from veilchain.platform.local_secrets import required_secret, resolve_local_secrets
from veilchain.platform.service import VeilchainService
from veilchain.platform.uploads import MAX_UPLOAD_BYTES
from veilchain.platform.wiring import build_service

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
DESCRIPTION = """\
Veilchain publishes anonymized face data sets with proof. Institutions upload images
(anonymized, encrypted per image, pinned to IPFS, Merkle root recorded on Ethereum); auditors
verify any version from the chain and record a verdict; grantees fetch the data keys (sealed to
their X25519 key) or the decrypted images an on-chain grant allows.

**Auth**: `GET /auth/nonce`, sign an EIP-4361 message, `POST /auth/login` -> bearer JWT.
Machines may use `X-API-Key`. Roles come from the `VeilRegistry` contract.
Errors are RFC 9457 problem details (`application/problem+json`).
"""


def build_context(settings: Settings, service: VeilchainService | None = None) -> ApiContext:
    """Build the service (unless given) and the shared per-app objects."""
    settings = resolve_local_secrets(settings)  # unset secrets: generated per data dir
    jwt_secret = required_secret(settings.auth.jwt_secret, "VEILCHAIN_AUTH__JWT_SECRET")
    if service is None:
        service = build_service(settings)  # migrates the database
    return ApiContext(
        settings=settings,
        service=service,
        session_factory=service.session_factory,
        roles=auth.RoleResolver(service.chain.roles_of, service.chain.block_number),
        tokens=auth.TokenVerifier(secret=jwt_secret, issuer=settings.auth.domain),
        jwt_secret=jwt_secret,
        chain_id=service.chain_id,
        login_limiter=auth.RateLimiter(settings.auth.login_rate_per_minute),
        nonce_limiter=auth.RateLimiter(settings.auth.login_rate_per_minute * 2),
    )


def _problem_422_in_openapi(app: FastAPI) -> None:
    """Validation errors are problem details too: say so in the schema, not HTTPValidationError."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        entry = problem_responses(422)[422]
        ref = {"schema": {"$ref": "#/components/schemas/Problem"}}
        for ops in schema.get("paths", {}).values():
            for op in ops.values():
                if "422" in op.get("responses", {}):
                    op["responses"]["422"] = {
                        "description": entry["description"],
                        "content": {PROBLEM_MEDIA_TYPE: ref, "application/json": ref},
                    }
        app.openapi_schema = schema
        return schema

    # FastAPI documents replacing app.openapi to customise the schema; mypy sees a method.
    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: Settings | None = None,
    *,
    service: VeilchainService | None = None,
    worker: bool = True,
) -> FastAPI:
    """The Veilchain HTTP API. ``worker=False`` leaves queued jobs for another process."""
    settings = settings or get_settings()
    ctx = build_context(settings, service)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if worker:
            resumed = ctx.service.jobs.worker.start()
            if resumed:
                log.info("resumed jobs: %s", ", ".join(resumed))
        yield
        if worker:
            ctx.service.jobs.worker.stop()

    app = FastAPI(
        title="Veilchain API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from local files by mount_pages
        redoc_url=None,
        openapi_tags=[
            {"name": "auth", "description": "Sign-In with Ethereum, JWTs, API keys."},
            {"name": "datasets", "description": "Upload, list and inspect data sets."},
            {"name": "jobs", "description": "Long work: progress, result, failure."},
            {"name": "images", "description": "Image records, Merkle proofs, privacy reports."},
            {"name": "verification", "description": "Auditor verification and attestation."},
            {"name": "grants", "description": "On-chain access grants."},
            {"name": "keys", "description": "Key release and decrypted content for grantees."},
            {"name": "audit", "description": "The hash-chained audit log and its anchors."},
            {"name": "system", "description": "Health."},
        ],
    )
    app.state.ctx = ctx
    app.add_middleware(BodyGuard, ctx=ctx, upload_limit=MAX_UPLOAD_BYTES)
    app.add_middleware(SecurityHeaders)  # outermost: on the guard's refusals too
    install_problem_handlers(app)
    app.include_router(api_router)
    mount_pages(app, WEB_DIR)

    _problem_422_in_openapi(app)

    @app.get("/", include_in_schema=False)
    def _root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    return app
