"""RFC 9457 problem details: the one place that maps a Veilchain error to an HTTP status.

Every response with status >= 400 is ``application/problem+json`` with ``type``, ``title``,
``status``, ``detail`` and ``code`` (the error class name). Server-side failures (5xx from a
bug) never echo the exception text, which could carry data the client must not see.
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from veilchain import errors as E

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://veilchain.dev/problems/"

# Checked in order: leaves before their bases, InputError before the areas it is mixed into.
STATUS_MAP: list[tuple[type[E.VeilchainError], int]] = [
    (E.OutOfRangeError, 422),
    (E.InvalidTextError, 422),
    (E.InputError, 400),
    (E.ConfigError, 500),
    (E.ImageDecodeError, 422),
    (E.FaceDetectionError, 422),
    (E.PrivacyBudgetError, 422),
    (E.IdentityCheckError, 422),
    (E.ModelLoadError, 503),
    (E.AnonymizationError, 422),
    (E.ChainUnavailableError, 503),
    (E.ContractNotDeployedError, 503),
    (E.ContractRevertedError, 409),
    (E.TransactionFailedError, 502),
    (E.ChainError, 502),
    (E.StorageUnavailableError, 503),
    (E.ContentNotFoundError, 404),
    (E.CidMismatchError, 502),
    (E.StorageError, 502),
    (E.DataKeyNotFoundError, 404),
    (E.DecryptionError, 502),
    (E.KeyVersionError, 409),
    (E.KeystoreError, 500),
    (E.KeyManagementError, 500),
    (E.AuthenticationError, 401),
    (E.AccessDeniedError, 403),
    (E.AuthError, 401),
    (E.AuditChainBrokenError, 409),
    (E.AuditError, 500),
    (E.DatasetNotFoundError, 404),
    (E.ImageNotFoundError, 404),
    (E.GrantNotFoundError, 404),
    (E.JobNotFoundError, 404),
    (E.RegistrationStateError, 409),
    (E.ServiceError, 409),
    (E.VeilchainError, 500),
]
# Contract errors that mean "you may not" rather than "not in this state".
_FORBIDDEN_REVERTS = re.compile(
    r"^(Not[A-Z]\w*|Unauthorized\w*|AccessDenied\w*|OwnerNotInstitution)$"
)
_REVERT_STATUS = {
    "UnknownDataset": 404,
    "UnknownVersion": 404,
    "NoGrant": 404,
    "ExpiryInPast": 400,
    "ZeroAddress": 400,
    "EmptyDataset": 400,
    "ZeroMerkleRoot": 400,
    "RecordCountTooLarge": 400,
}

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = Field(examples=[PROBLEM_BASE + "access-denied"])
    title: str = Field(examples=["Forbidden"])
    status: int = Field(examples=[403])
    detail: str = Field(examples=["no live grant for 0xAb…12 on data set 3; ask the owner"])
    code: str = Field(examples=["AccessDeniedError"])
    instance: str | None = Field(default=None, examples=["/datasets/3/versions/1/images/0/key"])


def _slug(name: str) -> str:
    name = name.removesuffix("Error") or name
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def status_for(exc: E.VeilchainError) -> int:
    """The HTTP status of a Veilchain error (the mapping documented in docs/api.md)."""
    if isinstance(exc, E.ContractRevertedError):
        if exc.name in _REVERT_STATUS:
            return _REVERT_STATUS[exc.name]
        if _FORBIDDEN_REVERTS.match(exc.name or ""):
            return 403
    return next(code for cls, code in STATUS_MAP if isinstance(exc, cls))


def problem_response(
    status: int,
    detail: str,
    code: str,
    instance: str | None = None,
    headers=None,
    slug: str | None = None,
) -> JSONResponse:
    body = Problem(
        type=PROBLEM_BASE + (slug or _slug(code)),
        title=_TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        code=code,
        instance=instance,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Register the one handler for Veilchain errors plus HTTP, validation and crash handlers."""

    @app.exception_handler(E.VeilchainError)
    async def _veilchain_error(request: Request, exc: E.VeilchainError) -> JSONResponse:
        status = status_for(exc)
        name = type(exc).__name__
        if status >= 500:
            log.warning("%s %s -> %d %s: %s", request.method, request.url.path, status, name, exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        detail = str(exc).splitlines()[0] if str(exc) else name
        if isinstance(exc, E.ContractRevertedError) and exc.reason:
            detail = f"{exc.reason} (contract error {exc.name})"
        if status == 500:  # a server fault: its text may name secrets, paths or SQL
            detail = "server-side error; see the server log"
        return problem_response(status, detail, name, request.url.path, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        title = _TITLES.get(exc.status_code, "error")
        return problem_response(
            exc.status_code, detail, "HTTPError", request.url.path,
            getattr(exc, "headers", None), slug=title.lower().replace(" ", "-"),
        )  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        detail = f"invalid input at {where}: {first.get('msg', 'invalid value')}"
        return problem_response(422, detail, "ValidationError", request.url.path)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path,
            exc_info=exc,
        )  # fmt: skip
        return problem_response(
            500, "internal error; see the server log", "InternalError", request.url.path
        )


def problem_responses(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI ``responses=`` entries for the given error statuses."""
    return {
        s: {
            "model": Problem,
            "description": _TITLES.get(s, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }
