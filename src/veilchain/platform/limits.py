"""Bounds on what callers may ask for, checked before any work or transaction.

A grant's lifetime, and (with the anonymizer's parameters) the numbers a caller can pass,
are bounded here so that an absurd value is refused with a one-line error instead of failing
deep inside as an internal error, or being recorded on chain in a form nobody can read back.
"""

from __future__ import annotations

import math
import time

from veilchain.anonymizer.methods import MAX_EPSILON, MIN_EPSILON  # the registry's bounds
from veilchain.errors import InputError, OutOfRangeError

__all__ = [
    "MAX_EPSILON",
    "MAX_GRANT_S",
    "MAX_SEED",
    "MIN_EPSILON",
    "check_epsilon",
    "check_grant_expiry",
    "check_seed",
    "grant_expiry_from_ttl",
    "now_s",
]


# The seed is stored as a 32-bit signed integer (PostgreSQL INTEGER).
MAX_SEED = 2**31 - 1
# The longest grant one transaction may create (the API's ttl_s bound): 10 years.
MAX_GRANT_S = 10 * 365 * 24 * 3600


def now_s(chain_now: int | None = None) -> int:
    """The later of this host's clock and the chain's head timestamp: a lifetime counted
    from here is never shortened by an idle chain whose head block is old, and never starts
    in the chain's past where a dev chain's clock was moved ahead."""
    wall = int(time.time())
    return wall if chain_now is None else max(wall, int(chain_now))


def grant_expiry_from_ttl(ttl_s: int, *, chain_now: int | None = None) -> int:
    """``expires_at`` for a grant lasting ``ttl_s`` seconds from now."""
    if not 60 <= int(ttl_s) <= MAX_GRANT_S:
        raise OutOfRangeError(f"grant lifetime must be between 60 s and {MAX_GRANT_S} s (10 years)")
    return now_s(chain_now) + int(ttl_s)


def check_grant_expiry(expires_at: int, *, chain_now: int | None = None) -> int:
    """``expires_at`` if it is in the future and at most 10 years ahead, else InputError."""
    now = now_s(chain_now)
    if int(expires_at) <= now:
        raise OutOfRangeError(
            f"grant expiry {int(expires_at)} is not in the future; pick a later time"
        )
    if int(expires_at) > now + MAX_GRANT_S:
        raise OutOfRangeError("grant expiry is more than 10 years ahead; grant for less and renew")
    return int(expires_at)


def check_epsilon(epsilon) -> float | None:
    """``epsilon`` as a float if it is a number in [0.001, 10^6], None if None. Not a
    positive finite number: InputError; positive but out of bounds: OutOfRangeError."""
    if epsilon is None:
        return None
    if (
        isinstance(epsilon, bool)
        or not isinstance(epsilon, int | float)
        or not 0 < float(epsilon) < math.inf
    ):
        raise InputError(f"epsilon must be a positive number, got {epsilon!r}")
    if not MIN_EPSILON <= float(epsilon) <= MAX_EPSILON:
        raise OutOfRangeError(
            f"epsilon must be between {MIN_EPSILON} and {MAX_EPSILON:.0f}, got {epsilon!r}"
        )
    return float(epsilon)


def check_seed(seed) -> int | None:
    """``seed`` if it is an integer in [0, 2^31 - 1], None if None."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    if seed > MAX_SEED:
        raise OutOfRangeError(f"seed must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    return seed
