"""Answers of contract reads memoized for the latest block only.

Contract state changes only in a new block, so a view call pinned to block ``n`` can be
answered from memory for as long as the chain's head is ``n``: the cache never serves an
answer the chain has since changed (a revoked grant or role is refused from the next block
on). Concurrent misses for one key and block make a single read; the others wait for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

V = TypeVar("V")
DEFAULT_MAX_KEYS = 10_000


class BlockCache(Generic[V]):
    """``get(key, read)``: ``read(block)`` at the current head block, memoized per key."""

    def __init__(self, block_number: Callable[[], int], max_keys: int = DEFAULT_MAX_KEYS):
        self._block_number = block_number
        self._max_keys = max_keys
        self._cache: dict[Hashable, tuple[int, V]] = {}
        self._flights: dict[tuple[Hashable, int], Future[V]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, read: Callable[[int], V]) -> V:
        block = self._block_number()
        flight_key = (key, block)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == block:
                return hit[1]
            waiting = self._flights.get(flight_key)
            if waiting is None:  # this caller leads the flight; later ones wait on it
                flight: Future[V] = Future()
                self._flights[flight_key] = flight
        if waiting is not None:
            return waiting.result()
        try:
            value = read(block)
        except BaseException as exc:  # not cached: the next caller reads again
            with self._lock:
                del self._flights[flight_key]
            flight.set_exception(exc)
            raise
        with self._lock:
            if len(self._cache) >= self._max_keys:
                self._cache.clear()
            cached = self._cache.get(key)
            if cached is None or cached[0] <= block:
                self._cache[key] = (block, value)
            del self._flights[flight_key]
        flight.set_result(value)
        return value
