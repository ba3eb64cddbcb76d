"""Request and response schemas, one family per entity (``*Create``, ``*Public``, ``*sPublic``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
EXAMPLE_ADDRESS = "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"


# --- auth -------------------------------------------------------------------
class NoncePublic(BaseModel):
    nonce: str = Field(examples=["3f9c1a7be2d04c55a1f0e6b2c4d8a913"])
    domain: str = Field(examples=["localhost"])
    uri: str = Field(examples=["http://localhost:8000"])
    chain_id: int = Field(examples=[1337])
    expires_at: datetime


class LoginIn(BaseModel):
    message: str = Field(
        max_length=4000,
        description="An EIP-4361 message carrying the nonce, domain, uri and chain id.",
        examples=[
            "localhost wants you to sign in with your Ethereum account:\n"
            f"{EXAMPLE_ADDRESS}\n\nSign in to Veilchain\n\nURI: http://localhost:8000\n"
            "Version: 1\nChain ID: 1337\nNonce: 3f9c1a7be2d04c55a1f0e6b2c4d8a913\n"
            "Issued At: 2026-11-21T22:00:00Z"
        ],
    )
    signature: str = Field(max_length=200, examples=["0x" + "ab" * 65])


class TokenPublic(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(examples=[900])
    address: str = Field(examples=[EXAMPLE_ADDRESS])
    roles: list[str] = Field(examples=[["auditor"]])


class MePublic(BaseModel):
    address: str = Field(examples=[EXAMPLE_ADDRESS])
    roles: list[str] = Field(examples=[["institution"]])
    via: Literal["jwt", "api_key"]


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["ingest-server-1"])


class ApiKeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["9c1a7be2d04c55a1"])
    name: str
    address: str
    created_at: datetime
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKeyPublic):
    api_key: str = Field(description="Shown once; send it as X-API-Key. Only a hash is stored.")


class ApiKeysPublic(BaseModel):
    data: list[ApiKeyPublic]
    count: int


# --- jobs -------------------------------------------------------------------
class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["5b0f3c1e9a7d4e2f8c6b1a0d3e5f7a9b"])
    kind: str = Field(examples=["register"])
    owner: str = Field(examples=[EXAMPLE_ADDRESS])
    status: Literal["queued", "running", "succeeded", "failed"]
    stage: str = Field(examples=["encrypting"])
    progress_done: int
    progress_total: int
    result: dict[str, Any] | None = None
    error: str | None = Field(default=None, examples=[None])
    attempts: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int
