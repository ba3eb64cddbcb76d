"""Sign-In with Ethereum, the caller's identity and API keys."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Response

from veilchain.platform import auth
from veilchain.platform.api.deps import (
    CtxDep,
    CurrentUser,
    InstitutionUser,
    SessionDep,
    rate_limited,
)
from veilchain.platform.api.problems import problem_responses
from veilchain.platform.api.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeysPublic,
    LoginIn,
    MePublic,
    NoncePublic,
    TokenPublic,
)

router = APIRouter(prefix="/auth", tags=["auth"])


@router.get(
    "/nonce",
    response_model=NoncePublic,
    dependencies=[Depends(rate_limited("nonce_limiter"))],
    responses=problem_responses(429),
)
def get_nonce(ctx: CtxDep, session: SessionDep) -> NoncePublic:
    """A single-use nonce (5-minute life) and the domain, uri and chain id to sign."""
    row = auth.issue_nonce(session=session, ttl_s=ctx.settings.auth.nonce_ttl_s)
    return NoncePublic(
        nonce=row.nonce,
        domain=ctx.settings.auth.domain,
        uri=ctx.settings.auth.uri,
        chain_id=ctx.chain_id,
        expires_at=row.expires_at,
    )


@router.post(
    "/login",
    response_model=TokenPublic,
    dependencies=[Depends(rate_limited("login_limiter"))],
    responses=problem_responses(401, 422, 429),
)
def login(body: LoginIn, ctx: CtxDep, session: SessionDep) -> TokenPublic:
    """Exchange a signed EIP-4361 message for a short-lived JWT; the nonce is consumed."""
    a = ctx.settings.auth
    token = auth.login(
        session=session,
        message=body.message,
        signature=body.signature,
        domain=a.domain,
        chain_id=ctx.chain_id,
        jwt_secret=ctx.jwt_secret,
        token_ttl_s=a.token_ttl_s,
        uri=a.uri,
        max_age_s=a.nonce_ttl_s,
    )
    address = ctx.tokens(token)  # verified once here; later requests hit its cache
    return TokenPublic(
        access_token=token,
        expires_in=a.token_ttl_s,
        address=address,
        roles=sorted(ctx.roles(address)),
    )


@router.get("/me", response_model=MePublic, responses=problem_responses(401))
def me(user: CurrentUser) -> MePublic:
    """The signed-in address and its roles as the contract reports them."""
    return MePublic(address=user.address, roles=sorted(user.roles), via=user.via)


@router.post(
    "/api-keys",
    response_model=ApiKeyCreated,
    status_code=201,
    responses=problem_responses(401, 403, 422),
)
def create_api_key(body: ApiKeyCreate, user: InstitutionUser, session: SessionDep) -> ApiKeyCreated:
    """Create an API key for an institution's machines; the key is shown only here."""
    row, token = auth.create_api_key(session=session, address=user.address, name=body.name)
    return ApiKeyCreated(**ApiKeyPublic.model_validate(row).model_dump(), api_key=token)


@router.get("/api-keys", response_model=ApiKeysPublic, responses=problem_responses(401))
def list_api_keys(user: CurrentUser, session: SessionDep) -> ApiKeysPublic:
    """The caller's API keys (never the keys themselves)."""
    rows = auth.list_api_keys(session=session, address=user.address)
    return ApiKeysPublic(data=[ApiKeyPublic.model_validate(r) for r in rows], count=len(rows))


@router.delete("/api-keys/{key_id}", status_code=204, responses=problem_responses(401, 404))
def revoke_api_key(key_id: str, user: CurrentUser, session: SessionDep) -> Response:
    """Revoke one of the caller's API keys."""
    if not auth.revoke_api_key(session=session, address=user.address, key_id=key_id):
        raise HTTPException(404, f"no live API key {key_id!r} for {user.address}")
    return Response(status_code=204)
