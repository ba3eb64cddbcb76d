"""Limits before work: an ASGI middleware in front of every route.

Before the application reads a byte of a request body:
- a body larger than its route's limit is refused with 413 on its ``Content-Length``, and a
  body without one (chunked) is counted as it streams and cut off at the limit;
- a request that carries a body to a route needing a signed-in caller (every one but
  ``POST /auth/login``) must present a bearer JWT or API key that verifies, else 401; an
  upload (``POST /datasets``) also needs the institution role, else 403.

So an anonymous upload costs the server a header parse, not a spooled file: multipart
bodies are otherwise spooled to disk by the framework before any dependency runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from veilchain.errors import AccessDeniedError, AuthenticationError, VeilchainError
from veilchain.platform.api.problems import problem_response

__all__ = ["JSON_BODY_LIMIT", "BodyGuard"]

JSON_BODY_LIMIT = 64 * 1024  # a SIWE message, a grant, a key request: a few hundred bytes
MULTIPART_OVERHEAD = 1024 * 1024


@dataclass(frozen=True)
class _Rule:
    method: str
    path: re.Pattern
    limit: int
    auth: bool = True
    role: str | None = None


def _rules(upload_limit: int) -> list[_Rule]:
    return [
        _Rule("POST", re.compile(r"^/auth/login/?$"), JSON_BODY_LIMIT, auth=False),
        _Rule("POST", re.compile(r"^/datasets/?$"), upload_limit, role="institution"),
    ]


class _TooLarge(HTTPException):
    """Raised from ``receive`` past the limit; an HTTPException so that the framework's body
    parsing (which turns other errors into 400) passes it through to the problem handler."""

    def __init__(self, limit: int):
        super().__init__(413, _too_large(limit), headers={"Connection": "close"})


class BodyGuard:
    """``BodyGuard(app, ctx=..., upload_limit=...)``: see the module docstring."""

    def __init__(self, app, *, ctx, upload_limit: int):
        self.app = app
        self.ctx = ctx
        self.rules = _rules(upload_limit + MULTIPART_OVERHEAD)

    def _rule(self, method: str, path: str) -> _Rule:
        for rule in self.rules:
            if rule.method == method and rule.path.match(path):
                return rule
        return _Rule(method, re.compile(""), JSON_BODY_LIMIT)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method = scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        length = headers.get("content-length")
        has_body = (length not in (None, "0")) or "transfer-encoding" in headers
        rule = self._rule(method, scope["path"])
        if has_body and rule.auth:
            try:
                await self._authenticate(headers, rule.role)
            except VeilchainError as exc:
                status = 403 if isinstance(exc, AccessDeniedError) else 401
                extra = [(b"WWW-Authenticate", b"Bearer")] if status == 401 else []
                return await _problem(send, status, str(exc), type(exc).__name__, extra)
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return await _problem(send, 400, "Content-Length is not a number", "InputError")
            if declared > rule.limit:
                return await _problem(send, 413, _too_large(rule.limit), "PayloadTooLarge")
        if not has_body:
            return await self.app(scope, receive, send)
        return await self._counted(scope, receive, send, rule.limit)

    async def _authenticate(self, headers: dict, role: str | None) -> None:
        from veilchain.platform import auth

        ctx = self.ctx
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer ") and bearer[7:].strip():
            address = ctx.tokens(bearer[7:].strip())
        elif headers.get("x-api-key"):
            address = await run_in_threadpool(_api_key_address, ctx, headers["x-api-key"])
        else:
            raise AuthenticationError("sign in first: send a bearer token or an X-API-Key")
        if role is not None:
            principal = auth.Principal(address=address, via="guard", resolve=ctx.roles)
            if not await run_in_threadpool(principal.has, role):
                raise AccessDeniedError(f"{address} lacks the {role} role this route needs")

    async def _counted(self, scope, receive, send, limit: int):
        seen = 0
        started = False

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _problem(send, 413, _too_large(limit), "PayloadTooLarge")


def _api_key_address(ctx, token: str) -> str:
    from veilchain.platform import auth

    with ctx.session_factory() as session:
        return auth.verify_api_key(session=session, token=token)


def _too_large(limit: int) -> str:
    size = f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit >> 10} KiB"
    return f"request body is larger than {size}, the limit of this route; send less"


async def _problem(send, status: int, detail: str, code: str, extra=()) -> None:
    headers = {k.decode(): v.decode() for k, v in extra}
    headers["Connection"] = "close"  # the unread body is not drained
    response = problem_response(status, detail, code, headers=headers)
    await response({"type": "http"}, _no_receive, send)


async def _no_receive():  # pragma: no cover - a plain response never reads
    return {"type": "http.disconnect"}
