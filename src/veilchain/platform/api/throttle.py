"""Refused key requests are rate-limited per account.

Every refused key release (no live grant) is an audit entry and a chain read; a signed-in
account could write ~200 audit rows a second that way. After ``refusal_rate_per_minute``
refusals in a minute an account gets 429 (with Retry-After) before any chain read or audit
row, until the window has room again. Releases that succeed are not counted.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException

from veilchain.errors import AccessDeniedError

__all__ = ["RefusalThrottle", "refusals_limited"]


class RefusalThrottle:
    def __init__(self, limit: int, window_s: float = 60.0):
        self.limit, self.window_s = limit, window_s
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait_s(self, key: str) -> float:
        """0 if ``key`` may ask now, else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            q = self._hits.get(key)
            if not q:
                return 0.0
            while q and now - q[0] >= self.window_s:
                q.popleft()
            if len(q) < self.limit:
                return 0.0
            return max(self.window_s - (now - q[0]), 0.001)

    def record(self, key: str) -> None:
        with self._lock:
            self._hits.setdefault(key, deque()).append(time.monotonic())
            if len(self._hits) > 10_000:
                for k in [k for k, v in self._hits.items() if not v]:
                    del self._hits[k]


@contextmanager
def refusals_limited(ctx, address: str) -> Iterator[None]:
    """429 if ``address`` was refused too often lately; count a refusal raised inside."""
    throttle = ctx.extra.get("refusals")
    if throttle is None:
        limit = ctx.settings.auth.refusal_rate_per_minute
        throttle = ctx.extra.setdefault("refusals", RefusalThrottle(limit))
    wait = throttle.wait_s(address)
    if wait:
        raise HTTPException(
            429,
            f"too many refused key requests; retry in {int(wait) + 1} s",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    try:
        yield
    except AccessDeniedError:
        throttle.record(address)
        raise
