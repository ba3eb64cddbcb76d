"""Request dependencies as ``Annotated`` aliases, and the per-app context they read.

``SessionDep`` (a DB session), ``ServiceDep`` (the VeilchainService), ``CurrentUser`` (a
:class:`Principal` from a bearer JWT or an ``X-API-Key``, roles read from the contract when
a check needs them) and
``require(*roles)`` keep route signatures short.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from veilchain.config import Settings
from veilchain.errors import AccessDeniedError, AuthenticationError
from veilchain.platform import auth
from veilchain.platform.service import VeilchainService


@dataclass
class ApiContext:
    """Everything the routes share, built once by ``create_app``."""

    settings: Settings
    service: VeilchainService
    session_factory: sessionmaker[Session]
    roles: auth.RoleResolver
    tokens: auth.TokenVerifier
    jwt_secret: str
    chain_id: int
    login_limiter: auth.RateLimiter
    nonce_limiter: auth.RateLimiter
    extra: dict = field(default_factory=dict)


async def get_ctx(request: Request) -> ApiContext:
    return request.app.state.ctx


CtxDep = Annotated[ApiContext, Depends(get_ctx)]


def get_session(ctx: CtxDep) -> Iterator[Session]:
    with ctx.session_factory() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def get_service(ctx: CtxDep) -> VeilchainService:
    return ctx.service


ServiceDep = Annotated[VeilchainService, Depends(get_service)]

_bearer = HTTPBearer(auto_error=False, description="JWT from POST /auth/login")
_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="API key from POST /auth/api-keys"
)


async def get_principal(
    ctx: CtxDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
    api_key: Annotated[str | None, Security(_api_key)] = None,
) -> auth.Principal | None:
    """The caller, or None when no credentials were sent.

    A JWT is checked on the event loop (CPU only, cached per token: no thread hop); an API
    key needs the database, so that lookup runs in the thread pool. Roles are not read here:
    the Principal reads them from the contract when a check first asks (``require``)."""
    if bearer is not None:
        address, via = ctx.tokens(bearer.credentials), "jwt"
    elif api_key:
        address, via = await run_in_threadpool(_api_key_address, ctx, api_key), "api_key"
    else:
        return None
    return auth.Principal(address=address, via=via, resolve=ctx.roles)


def _api_key_address(ctx: ApiContext, token: str) -> str:
    with ctx.session_factory() as session:
        return auth.verify_api_key(session=session, token=token)


OptionalUser = Annotated[auth.Principal | None, Depends(get_principal)]


async def get_current_user(user: OptionalUser) -> auth.Principal:  # no I/O: no thread hop
    if user is None:
        raise AuthenticationError("sign in first: send a bearer token or an X-API-Key")
    return user


CurrentUser = Annotated[auth.Principal, Depends(get_current_user)]


def require(*roles: str):
    """A dependency that lets only callers holding one of ``roles`` (read on chain) through."""

    def _check(user: CurrentUser) -> auth.Principal:  # sync: reading roles may call the chain
        if not user.has(*roles):
            raise AccessDeniedError(
                f"{user.address} lacks the role {' or '.join(roles)} on the contract"
            )
        return user

    return _check


InstitutionUser = Annotated[auth.Principal, Depends(require("institution"))]
AuditorUser = Annotated[auth.Principal, Depends(require("auditor"))]


def client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def rate_limited(limiter_name: str):
    """A dependency that answers 429 with Retry-After once a client exceeds the limit."""

    def _check(request: Request, ctx: CtxDep) -> None:
        wait = getattr(ctx, limiter_name).hit(client_key(request))
        if wait:
            raise HTTPException(
                429,
                f"too many requests; retry in {int(wait) + 1} s",
                headers={"Retry-After": str(int(wait) + 1)},
            )

    return _check


# --- path parameters ------------------------------------------------------------
DatasetId = Annotated[int, Path(ge=0, le=2**31, description="On-chain data set id.")]
VersionNo = Annotated[int, Path(ge=1, le=2**31, description="Version, from 1.")]
ImageIndex = Annotated[int, Path(ge=0, le=2**31, description="Record index in the manifest.")]
Address = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$", description="An Ethereum address.")]
