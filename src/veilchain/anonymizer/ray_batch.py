"""Anonymize on a Ray cluster: actors that load the anonymizer once each, fed batches.

``RayPool`` starts (or joins) Ray, creates one actor per CPU it is given, and
``run(items)`` streams batches of ``(key, source)`` references to them (a path on storage
the workers share, or a URI the actor fetches itself: ``sources.py``), a bounded number in
flight, yielding each batch's results as it completes (not in input order). Each result is
``finish(anonymized_file, key)``: the caller's picklable post-processing, which runs on the
worker (the platform encrypts there, so no anonymized image crosses the network in clear).
``locate(source)``, if given, is what the workers get instead of a source, computed each time
its batch is sent (the platform signs short-lived links to an API upload with it).

Failure: a batch whose actor (or node) dies is sent again to a live actor, and the dead
actor is replaced; a batch's results reach the caller once, whole, or not at all. Nothing
here knows about keys, storage or the chain.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from veilchain.anonymizer.sources import SourceReader
from veilchain.errors import ConfigError

__all__ = ["RayPool", "RayPoolStats", "import_ray", "is_loopback"]

DEFAULT_BATCH = 8
_IN_FLIGHT_PER_ACTOR = 2
# How long the actors may take to start (each loads the models in its constructor; on a
# loaded 2-core machine two nodes' actors took over 120 s).
_ACTOR_WAIT_S = 300.0

Item = tuple[str, str]  # (key, image source: a path or a URI)


def import_ray() -> Any:
    """The ``ray`` module, or a one-line ConfigError naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("Ray is not installed: pip install 'veilchain[ray]'") from exc
    return ray


def is_loopback(address: str | None) -> bool:
    """Whether a Ray ``address`` (None: a local instance) is on this machine's loopback."""
    if address is None:
        return True
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class RayPoolStats:
    batches: int = 0
    resubmitted: int = 0  # batches sent again after their actor or node died
    actors_replaced: int = 0
    lost_s: float = 0.0  # wall time between a failed batch's submission and its failure
    nodes: int = 0  # Ray nodes the actors started on


class _Anonymizer:
    """The actor body: one anonymizer, built once, run over batches."""

    def __init__(
        self, build: Callable[[], Any], finish: Callable[[Any, str], Any], reader: SourceReader
    ) -> None:
        from veilchain.anonymizer.batch import one_thread

        one_thread()
        self.anonymizer = build()
        self.finish = finish
        self.reader = reader

    def run(self, batch: list[Item], allow_recognizable: bool) -> list[Any]:
        from veilchain.anonymizer.batch import anonymize_file

        return [
            self.finish(
                anonymize_file(self.anonymizer, source, allow_recognizable, self.reader), key
            )
            for key, source in batch
        ]

    def node(self) -> str:
        import ray

        return str(ray.get_runtime_context().get_node_id())


class RayPool:
    """Actors on a Ray cluster (``address``) or on a local instance started on 127.0.0.1."""

    def __init__(
        self,
        build: Callable[[], Any],
        finish: Callable[[Any, str], Any],
        *,
        address: str | None = None,
        actors: int = 0,
        batch: int = DEFAULT_BATCH,
        local_cpus: int | None = None,
        reader: SourceReader = SourceReader(),
        locate: Callable[[str], str] | None = None,
    ) -> None:
        if is_loopback(address):
            # Ray otherwise rewrites 127.0.0.1 to the machine's interface address; must be
            # set before ray is imported.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        ray = import_ray()
        self._ray = ray
        self._owns_ray = False
        if not ray.is_initialized():
            self._init(address, local_cpus)
            self._owns_ray = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self._n_actors = max(1, actors or cpus)
        self._batch = max(1, batch)
        self._cls = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_Anonymizer)
        self._build, self._finish, self._reader = build, finish, reader
        # how the workers reach a source, computed at each send (so a signed link is fresh)
        self._locate = locate
        self._actors = [self._new_actor() for _ in range(self._n_actors)]
        self.stats = RayPoolStats()

    def _init(self, address: str | None, local_cpus: int | None) -> None:
        ray = self._ray
        kwargs: dict[str, Any] = dict(
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            _node_ip_address="127.0.0.1" if is_loopback(address) else None,
        )
        if address is None:
            kwargs.update(num_cpus=local_cpus or os.cpu_count() or 1,
                          object_store_memory=128 * 2**20)  # fmt: skip
        else:
            kwargs.pop("include_dashboard")
        try:
            ray.init(address=address, **{k: v for k, v in kwargs.items() if v is not None})
        except (ConnectionError, ValueError, RuntimeError, TimeoutError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(
                f"cannot reach the Ray cluster at {address}: {first} (check --ray-address)"
            ) from exc

    @property
    def _lost_errors(self) -> tuple[type[BaseException], ...]:
        e = self._ray.exceptions
        return (e.RayActorError, e.ObjectLostError, e.WorkerCrashedError, e.NodeDiedError)

    def _new_actor(self) -> Any:
        return self._cls.options(scheduling_strategy="SPREAD").remote(
            self._build, self._finish, self._reader
        )

    def run(self, items: Iterable[Item], *, allow_recognizable: bool) -> Iterator[list[Any]]:
        """Yield the results of each batch as it completes; ``items`` is read lazily."""
        ray = self._ray
        lost_errors = self._lost_errors
        self.stats.nodes = len(self.nodes())  # also waits until every actor is up
        source = iter(items)
        in_flight: dict[Any, tuple[list[Item], Any, float]] = {}
        retry: list[list[Item]] = []
        free = list(self._actors) * _IN_FLIGHT_PER_ACTOR  # one slot per allowed batch

        def next_batch() -> list[Item]:
            if retry:
                return retry.pop()
            batch = []
            for item in source:
                batch.append(item)
                if len(batch) == self._batch:
                    break
            return batch

        while True:
            while free:
                batch = next_batch()
                if not batch:
                    break
                actor = free.pop()
                ref = actor.run.remote(self._located(batch), allow_recognizable)
                in_flight[ref] = (batch, actor, time.monotonic())
            if not in_flight:
                return
            (ref,), _ = ray.wait(list(in_flight), num_returns=1)
            batch, actor, started = in_flight.pop(ref)
            try:
                results = ray.get(ref)
            except lost_errors as exc:
                retry.append(batch)
                self.stats.resubmitted += 1
                self.stats.lost_s += time.monotonic() - started
                if actor in self._actors:  # its other batches fail too, and come back here
                    self._actors.remove(actor)
                    free = [a for a in free if a is not actor]
                if not self._actors:  # none left: start fresh ones where Ray finds room
                    self._actors = [self._new_actor() for _ in range(self._n_actors)]
                    self._wait_ready(exc)
                    self.stats.actors_replaced += len(self._actors)
                    free = list(self._actors) * _IN_FLIGHT_PER_ACTOR
                continue
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if isinstance(exc.cause, Exception) else exc
                raise cause from None  # the anonymizer's own error (IdentityCheckError, ...)
            self.stats.batches += 1
            if actor in self._actors:
                free.append(actor)
            yield results

    def _located(self, batch: list[Item]) -> list[Item]:
        if self._locate is None:
            return batch
        return [(key, self._locate(source)) for key, source in batch]

    def _wait_ready(self, why: BaseException) -> None:
        ray = self._ray
        refs = [a.node.remote() for a in self._actors]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=_ACTOR_WAIT_S)
        if len(ready) < len(refs):
            raise ConfigError(
                f"every Ray worker of this registration died ({type(why).__name__}) and no new"
                f" one started within {_ACTOR_WAIT_S:.0f} s; check the cluster, then --resume"
            )

    def nodes(self) -> set[str]:
        """The Ray node ids the actors live on (waits until every actor is up)."""
        refs = [a.node.remote() for a in self._actors]
        try:
            return set(self._ray.get(refs, timeout=_ACTOR_WAIT_S))
        except self._ray.exceptions.GetTimeoutError:
            raise ConfigError(
                f"not every Ray worker started within {_ACTOR_WAIT_S:.0f} s (each loads the"
                " models first); check the cluster's load, then --resume"
            ) from None

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []
        if self._owns_ray:
            self._ray.shutdown()

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
