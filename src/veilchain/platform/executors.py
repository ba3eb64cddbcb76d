"""Where a registration's images are anonymized and encrypted: the executor choice.

``local`` (the default): worker processes on this machine (``anonymizer/batch.py``), the
driver encrypts with ``KeyManager.encrypt``. ``ray``: actors on a Ray cluster
(``anonymizer/ray_batch.py``) anonymize *and* encrypt, and seal each data key to this run's
transport key (``platform/keys/transport.py``); this driver opens the keys, has the key
service wrap and store them, pins the ciphertexts and records each image as its batch
arrives. docs/scale.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from veilchain.platform.keys import KeyManager, generate_keypair
from veilchain.platform.keys.transport import EncryptedImage, WorkerEncryptor, open_data_key
from veilchain.platform.registrations import DONE, RegistrationImageRow, RegistrationRow
from veilchain.platform.storage import IpfsStorage

if TYPE_CHECKING:
    from veilchain.anonymizer.ray_batch import RayPoolStats

LOCAL, RAY = "local", "ray"
_PAGE = 500


@dataclass(frozen=True)
class ExecutorChoice:
    """``kind`` local or ray; for ray, the cluster ``address`` (None: a local instance on
    127.0.0.1), the number of ``actors`` (0: one per cluster CPU), images per ``batch``."""

    kind: str = LOCAL
    address: str | None = None
    actors: int = 0
    batch: int = 8
    local_cpus: int | None = None  # a local instance's CPUs (None: one per core)


def pending_rows(
    session_factory: sessionmaker[Session], uid: str
) -> Iterator[RegistrationImageRow]:
    """The registration's unfinished image rows in order, read a page at a time."""
    last = -1
    while True:
        with session_factory() as s:
            page = list(
                s.scalars(
                    select(RegistrationImageRow)
                    .where(
                        RegistrationImageRow.uid == uid,
                        RegistrationImageRow.status != DONE,
                        RegistrationImageRow.idx > last,
                    )
                    .order_by(RegistrationImageRow.idx)
                    .limit(_PAGE)
                )
            )
        if not page:
            return
        yield from page
        last = page[-1].idx


def process_on_ray(
    *,
    choice: ExecutorChoice,
    reg: RegistrationRow,
    anonymizer_factory: Callable[..., Any],
    keys: KeyManager,
    storage: IpfsStorage,
    session_factory: sessionmaker[Session],
    allow_recognizable: bool,
    on_batch: Callable[[int], None],
) -> RayPoolStats:
    """Anonymize, encrypt (on the workers), store keys, pin and record every pending image
    of ``reg``; ``on_batch(n)`` after each batch of ``n`` is recorded. Returns the pool's
    failure statistics."""
    from veilchain.anonymizer.ray_batch import RayPool

    params = json.loads(reg.params_json)
    build = partial(anonymizer_factory, reg.method, epsilon=params.get("epsilon"), seed=reg.seed)
    private_key, public_key = generate_keypair()  # this run's transport key, never stored
    encryptor = WorkerEncryptor(dataset=reg.uid, transport_public_key=public_key)
    items = ((row.image_id, Path(row.source)) for row in pending_rows(session_factory, reg.uid))
    with RayPool(build, encryptor, address=choice.address, actors=choice.actors,
                 batch=choice.batch, local_cpus=choice.local_cpus) as pool:  # fmt: skip
        for results in pool.run(items, allow_recognizable=allow_recognizable):
            _record_batch(reg.uid, results, private_key, keys, storage, session_factory)
            on_batch(len(results))
        return pool.stats


def _record_batch(
    uid: str,
    results: list[EncryptedImage],
    private_key: bytes,
    keys: KeyManager,
    storage: IpfsStorage,
    session_factory: sessionmaker[Session],
) -> None:
    """Key first, then pin, then the row: a crash in between leaves a key (and maybe a pinned
    ciphertext) for an unfinished image, which resume deletes and redoes, as locally."""
    keys.store_data_keys([(r.image_id, open_data_key(r, private_key)) for r in results],
                         dataset=uid)  # fmt: skip
    cids = [storage.add(r.ciphertext) for r in results]
    with session_factory() as s, s.begin():
        for r, cid in zip(results, cids, strict=True):
            row = s.get(RegistrationImageRow, (uid, r.image_id))
            assert row is not None and row.status != DONE, "a batch recorded twice"
            row.cid = cid
            row.ciphertext_sha256 = hashlib.sha256(r.ciphertext).hexdigest()
            row.anonymized_sha256 = r.anonymized_sha256
            row.size, row.width, row.height = len(r.ciphertext), r.width, r.height
            row.report_json = json.dumps(r.report, sort_keys=True)
            row.status = DONE
