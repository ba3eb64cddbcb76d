"""The anonymization methods an upload may choose, read from the method registry."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from veilchain.anonymizer.methods import DEFAULT_EPSILON, MAX_EPSILON, MIN_EPSILON, REGISTRY

router = APIRouter(prefix="/methods", tags=["datasets"])


class MethodPublic(BaseModel):
    name: str = Field(examples=["dppix"])
    kind: str = Field(examples=["region"], description="generator or region")
    takes_epsilon: bool
    fallback: str = Field(examples=["dppix"])
    formal_privacy: str | None = Field(default=None, examples=["epsilon-DP per face region"])
    summary: str


class MethodsPublic(BaseModel):
    data: list[MethodPublic]
    count: int
    default_epsilon: float = Field(examples=[DEFAULT_EPSILON])
    min_epsilon: float = Field(examples=[MIN_EPSILON])
    max_epsilon: float = Field(examples=[MAX_EPSILON])


@router.get("", response_model=MethodsPublic)
def list_methods() -> MethodsPublic:
    """Every method ``POST /datasets`` accepts, with whether it takes a budget (epsilon)."""
    rows = [
        MethodPublic(
            name=m.name,
            kind=m.kind,
            takes_epsilon=m.takes_epsilon,
            fallback=m.fallback,
            formal_privacy=m.formal_privacy,
            summary=m.summary,
        )  # fmt: skip
        for m in REGISTRY
    ]
    return MethodsPublic(
        data=rows,
        count=len(rows),
        default_epsilon=DEFAULT_EPSILON,
        min_epsilon=MIN_EPSILON,
        max_epsilon=MAX_EPSILON,
    )
