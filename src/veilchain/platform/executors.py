"""Where a registration's images are anonymized and encrypted: the executor choice.

``local`` (the default): worker processes on this machine (``anonymizer/batch.py``), the
driver encrypts with ``KeyManager.encrypt``. ``ray``: actors on a Ray cluster
(``anonymizer/ray_batch.py``) anonymize *and* encrypt, and seal each data key to this run's
transport key (``platform/keys/transport.py``); this driver opens the keys, has the key
service wrap and store them, pins the ciphertexts and records each image as its batch
arrives. docs/scale.md.

Content Credentials are signed here, on the driver, so the institution's signing key never
goes to the cluster: with ``sign`` set, each image is decrypted in memory, signed and
encrypted again under the same data key (a fresh nonce) before it is pinned.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from veilchain.anonymizer.sources import FETCH_TIMEOUT_S, SourceReader
from veilchain.platform.keys import KeyManager, generate_keypair
from veilchain.platform.keys.envelope import decrypt_with_data_key, encrypt_with_data_key
from veilchain.platform.keys.transport import EncryptedImage, WorkerEncryptor, open_data_key
from veilchain.platform.registrations import (
    DONE,
    RegistrationImageRow,
    RegistrationRow,
    iter_image_rows,
)
from veilchain.platform.storage import IpfsStorage

if TYPE_CHECKING:
    from veilchain.anonymizer.ray_batch import RayPoolStats

LOCAL, RAY = "local", "ray"


@dataclass(frozen=True)
class ExecutorChoice:
    """``kind`` local or ray; for ray, the cluster ``address`` (None: a local instance on
    127.0.0.1), the number of ``actors`` (0: one per cluster CPU), images per ``batch``."""

    kind: str = LOCAL
    address: str | None = None
    actors: int = 0
    batch: int = 8
    local_cpus: int | None = None  # a local instance's CPUs (None: one per core)
    fetch_timeout_s: float = FETCH_TIMEOUT_S  # either executor: a URI source's deadline
    # Ray: the API's own URL as the workers reach it; API uploads are then read through
    # signed links to it (platform/upload_links.py). None: workers read the upload's paths
    upload_url: str | None = None

    def reader(self) -> SourceReader:
        """How workers read image sources (paths, or URIs they fetch themselves)."""
        return SourceReader(timeout_s=self.fetch_timeout_s)


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
    sign: Callable[[str, bytes], bytes] | None = None,
    locate: Callable[[str], str] | None = None,
) -> RayPoolStats:
    """Anonymize, encrypt (on the workers), store keys, pin and record every pending image
    of ``reg``; ``on_batch(n)`` after each batch of ``n`` is recorded. ``sign(image_id,
    png)``: the image's Content Credentials (None: unsigned). ``locate(source)``: what the
    workers read instead of a row's source (None: the source). Returns the pool's failure
    statistics."""
    from veilchain.anonymizer.ray_batch import RayPool

    params = json.loads(reg.params_json)
    build = partial(anonymizer_factory, reg.method, epsilon=params.get("epsilon"), seed=reg.seed)
    private_key, public_key = generate_keypair()  # this run's transport key, never stored
    encryptor = WorkerEncryptor(dataset=reg.uid, transport_public_key=public_key)
    pending = iter_image_rows(session_factory, reg.uid, pending_only=True)
    items = ((row.image_id, row.source) for row in pending)
    with RayPool(build, encryptor, address=choice.address, actors=choice.actors,
                 batch=choice.batch, local_cpus=choice.local_cpus,
                 reader=choice.reader(), locate=locate) as pool:  # fmt: skip
        for results in pool.run(items, allow_recognizable=allow_recognizable):
            _record_batch(reg.uid, results, private_key, keys, storage, session_factory, sign)
            on_batch(len(results))
        return pool.stats


def _signed(
    uid: str, item: EncryptedImage, data_key: bytes, sign: Callable[[str, bytes], bytes]
) -> EncryptedImage:
    """``item`` with its image signed: decrypted in memory, signed, encrypted again under the
    same data key with a fresh nonce; its ``anonymized_sha256`` is the signed file's."""
    png = decrypt_with_data_key(item.ciphertext, data_key, dataset=uid, image=item.image_id)
    signed = sign(item.image_id, png)
    ciphertext = encrypt_with_data_key(signed, data_key, dataset=uid, image=item.image_id)
    return replace(
        item, ciphertext=ciphertext, anonymized_sha256=hashlib.sha256(signed).hexdigest()
    )


def _record_batch(
    uid: str,
    results: list[EncryptedImage],
    private_key: bytes,
    keys: KeyManager,
    storage: IpfsStorage,
    session_factory: sessionmaker[Session],
    sign: Callable[[str, bytes], bytes] | None = None,
) -> None:
    """Key first, then pin, then the row: a crash in between leaves a key (and maybe a pinned
    ciphertext) for an unfinished image, which resume deletes and redoes, as locally."""
    data_keys = [(r.image_id, open_data_key(r, private_key)) for r in results]
    if sign is not None:
        pairs = zip(results, data_keys, strict=True)
        results = [_signed(uid, r, key, sign) for r, (_, key) in pairs]
    keys.store_data_keys(data_keys, dataset=uid)
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
