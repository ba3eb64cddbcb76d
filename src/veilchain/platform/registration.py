"""Registration: images -> anonymized, encrypted, pinned -> manifest -> one transaction.

State is saved after every image (``registrations.py``), so a killed run resumes; the
transaction is sent only when every image is pinned, and a resumed run looks on chain for
its own transaction before sending one, so it is sent once.

Each anonymized PNG is signed with Content Credentials (``provenance``) before it is
encrypted, so the record's ``anonymized_sha256`` (and so its Merkle leaf) is the hash of the
signed file; the manifest publishes the signer's CA certificate.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import tempfile
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from veilchain.anonymizer.batch import AnonymizedFile, anonymize_files
from veilchain.anonymizer.sources import iter_sources
from veilchain.chain.client import ChainClient
from veilchain.chain.merkle import PackedMerkleTree
from veilchain.errors import (
    AnonymizationError,
    ContentNotFoundError,
    InputError,
    RegistrationStateError,
)
from veilchain.platform.audit import AuditLog
from veilchain.platform.executors import LOCAL, RAY, ExecutorChoice, process_on_ray
from veilchain.platform.keys import KeyManager
from veilchain.platform.limits import check_epsilon, check_seed
from veilchain.platform.manifest import Manifest
from veilchain.platform.provenance import Anchor, CredentialsSigner
from veilchain.platform.registrations import (
    ABORTED,
    DONE,
    PENDING,
    PROCESSING,
    REENCRYPT_PREFIX,
    REGISTERED,
    SUBMITTING,
    DatasetSpec,
    RegistrationImageRow,
    RegistrationResult,
    RegistrationRow,
    count_images,
    done_image_ids,
    face_counts,
    has_reencrypted_images,
    image_row,
    image_rows,
    iter_image_rows,
    iter_records,
    registered_row,
    registration_row,
)
from veilchain.platform.statements import DatasetStatements
from veilchain.platform.storage import IpfsStorage
from veilchain.platform.submission import Submitter
from veilchain.platform.upload_links import UploadLinks, upload_locator

Progress = Callable[[int, int, str], None]  # (done, total, stage)
T = TypeVar("T")


def no_progress(done: int, total: int, stage: str) -> None:
    pass


class Registrar:
    """Runs registrations for this instance's institution account."""

    def __init__(
        self,
        *,
        chain: ChainClient,
        accounts: Any,
        storage: IpfsStorage,
        keys: KeyManager,
        audit: AuditLog,
        session_factory: sessionmaker[Session],
        anonymizer_factory: Callable[..., Any],
        seed: int = 0,
        workers: int = 1,
        credentials: Callable[[], CredentialsSigner | None] = lambda: None,
        executor: ExecutorChoice | None = None,
        upload_links: UploadLinks | None = None,
    ) -> None:
        self.chain = chain
        self.accounts = accounts  # role -> LocalAccount, decrypted from the keystore on use
        # the institution's C2PA signer, built on first use; None: images are not signed
        self.credentials = credentials
        self.storage = storage
        self.keys = keys
        self.audit = audit
        self.session_factory = session_factory
        self.anonymizer_factory = anonymizer_factory
        self.seed = seed
        self.workers = max(1, workers)
        self.executor = executor or ExecutorChoice(kind=LOCAL)
        self.upload_links = upload_links  # signed links to API uploads, for Ray workers
        self.last_ray_stats: Any = None  # the Ray pool's failure statistics of the last run
        self._uids: dict[tuple[int, int], str] = {}
        self.submitter = Submitter(
            chain=chain, accounts=accounts, session_factory=session_factory, audit=audit
        )

    def _read(self, query: Callable[..., T], *args: Any) -> T:
        """``query(session, *args)`` in a session of its own."""
        with self.session_factory() as s:
            return query(s, *args)

    def _signer(self) -> ChainClient:
        return self.chain.with_account(self.accounts["institution"])

    def register(
        self,
        inputs: Iterable[str | Path],
        spec: DatasetSpec,
        *,
        allow_recognizable: bool = False,
        progress: Progress = no_progress,
        job_id: str | None = None,
    ) -> RegistrationResult:
        """Register image files, folders of them, or URIs (``anonymizer/sources.py``) as the
        new data set ``spec``. ``job_id``: the API job this registration runs for (the CLI's
        own have none)."""
        uid = self._start(spec, iter_sources(inputs), job_id=job_id)  # inputs read lazily
        try:
            return self._run(uid, allow_recognizable=allow_recognizable, progress=progress)
        except (AnonymizationError, InputError):
            # An input that cannot be published (unreadable, a face left recognizable) fails
            # the same way on every resume: give the registration up now (keys deleted,
            # pins removed). A crash or a node that is down leaves it to resume.
            self.abort(uid)
            raise

    def add_reencrypted_version(
        self, dataset_id: int, *, progress: Progress = no_progress
    ) -> RegistrationResult:
        """True revocation: re-encrypt every image of the latest version under fresh data keys,
        pin the new ciphertexts and register them as a new version of the same data set."""
        prev = self._read(registered_row, dataset_id, None)
        params = json.loads(prev.params_json)
        statements = DatasetStatements(prev.description, prev.licence, prev.consent)
        uid = self._start(
            DatasetSpec(prev.name, prev.method, params.get("epsilon"), prev.seed, statements),
            [
                f"{REENCRYPT_PREFIX}{prev.uid}/{r.image_id}"
                for r in self._read(image_rows, prev.uid)
            ],
            dataset_id=dataset_id,
            previous_manifest_cid=prev.manifest_cid,
            params=params,
            model_hash=prev.model_hash,
        )
        return self._run(uid, allow_recognizable=True, progress=progress)

    def pending_registrations(self, *, local_only: bool = False) -> list[RegistrationRow]:
        """Interrupted registrations; ``local_only``: the CLI's own, not an API job's (those
        the API server resumes or shreds itself)."""
        q = select(RegistrationRow).where(RegistrationRow.status.in_([PROCESSING, SUBMITTING]))
        if local_only:
            q = q.where(RegistrationRow.job_id.is_(None))
        with self.session_factory() as s:
            return list(s.scalars(q))

    def registration_of_job(self, job_id: str) -> RegistrationRow | None:
        """The registration an API job started, if it got that far."""
        with self.session_factory() as s:
            return s.scalars(
                select(RegistrationRow).where(RegistrationRow.job_id == job_id)
            ).first()

    def resume(
        self,
        uid: str | None = None,
        *,
        allow_recognizable: bool = False,
        progress: Progress = no_progress,
        local_only: bool = False,
    ) -> list[RegistrationResult]:
        """Finish interrupted registrations (all of them, the CLI's own, or ``uid``)."""
        pending = [
            r
            for r in self.pending_registrations(local_only=local_only)
            if uid is None or r.uid == uid
        ]
        if not pending:
            raise RegistrationStateError(
                f"no interrupted registration {uid}" if uid else "no interrupted registration"
            )
        return [
            self._run(r.uid, allow_recognizable=allow_recognizable, progress=progress)
            for r in pending
        ]

    def registration_result(self, uid: str) -> RegistrationResult:
        """The result of a registration that already reached the chain (for a job resumed
        after its registration was recorded but before the job was)."""
        with self.session_factory() as s:
            reg = s.get(RegistrationRow, uid)
        if reg is None or reg.status != REGISTERED:
            raise RegistrationStateError(f"registration {uid} is not registered")
        return self._result(reg)

    def abort(self, uid: str) -> None:
        """Give up an unsubmitted registration: delete its data keys and unpin what it pinned."""
        with self.session_factory() as s:
            reg = s.get(RegistrationRow, uid)
            if reg is None or reg.status not in (PROCESSING, SUBMITTING):
                raise RegistrationStateError(f"registration {uid} is not in progress")
            if reg.status == SUBMITTING and self.submitter.find_submitted(reg) is not None:
                raise RegistrationStateError(
                    f"registration {uid} already reached the chain; run resume to record it"
                )
            cids = [r.cid for r in self._read(image_rows, uid) if r.cid]
        for cid in cids:
            with contextlib.suppress(ContentNotFoundError):  # already unpinned
                self.storage.unpin(cid)
        self.keys.delete_keys(uid)
        with self.session_factory() as s, s.begin():
            registration_row(s, uid).status = ABORTED

    def _start(
        self,
        spec: DatasetSpec,
        sources: Iterable[str],
        *,
        dataset_id: int | None = None,
        previous_manifest_cid: str | None = None,
        params: dict | None = None,
        model_hash: str | None = None,
        job_id: str | None = None,
    ) -> str:
        name, method, epsilon, seed = spec.name, spec.method, spec.epsilon, spec.seed
        if not name or len(name) > 200:
            raise InputError("a data set needs a name of 1 to 200 characters (--name)")
        check_epsilon(epsilon)  # bounds before any work (OutOfRangeError)
        ahead = iter(sources)
        first = next(ahead, None)
        if first is None:
            raise InputError("no images to register: the input holds no image files")
        sources = itertools.chain([first], ahead)
        check_seed(seed)
        seed = self.seed if seed is None else seed
        if params is None or model_hash is None:
            anonymizer = self.anonymizer_factory(method, epsilon=epsilon, seed=seed)
            # the detector (name, model sha256, thresholds, second look) goes on chain too
            detection = anonymizer.describe_detection()
            params = {**anonymizer.privacy_params(), "seed": seed, "detector": detection}
            model_hash = anonymizer.model_hash()
        uid = uuid.uuid4().hex
        with self.session_factory() as s, s.begin():
            s.add(RegistrationRow(
                uid=uid, name=name, method=method, params_json=json.dumps(params, sort_keys=True),
                model_hash=_hex32(model_hash), seed=seed, status=PROCESSING,
                created_at=_now_iso(), dataset_id=dataset_id,
                previous_manifest_cid=previous_manifest_cid, job_id=job_id,
                **spec.statements.to_dict(),
            ))  # fmt: skip
            s.flush()
            numbered = enumerate(sources)
            while chunk := list(itertools.islice(numbered, 1000)):  # lazily, in chunks
                s.add_all(
                    RegistrationImageRow(
                        uid=uid, image_id=f"{i:06d}", idx=i, source=src, status=PENDING
                    )
                    for i, src in chunk
                )
                s.flush()
                s.expunge_all()
        return uid

    def _run(self, uid: str, *, allow_recognizable: bool, progress: Progress):
        with self.session_factory() as s:
            reg = registration_row(s, uid)
        if reg.status == PROCESSING:
            self._process_images(reg, allow_recognizable, progress)
            reg = self._pin_manifest(uid)
        if reg.status == SUBMITTING:
            reg = self.submitter.submit(reg)
        return self._result(reg)

    def _process_images(self, reg: RegistrationRow, allow_recognizable: bool, progress) -> None:
        """Streaming, like the Ray executor: pending rows are read a page at a time."""
        if self.executor.kind == RAY and not self._read(has_reencrypted_images, reg.uid):
            return self._process_images_on_ray(reg, allow_recognizable, progress)
        total, done = self._read(count_images, reg.uid), self._read(count_images, reg.uid, DONE)
        self._drop_stale_keys(reg.uid)
        progress(done, total, "anonymize+encrypt+pin")
        signer = self.credentials()
        for row, out in self._anonymized(reg, total - done, allow_recognizable):
            png = out.png
            if signer is not None and not row.source.startswith(REENCRYPT_PREFIX):
                png = self._signed(signer, reg, row.image_id, png)
            ciphertext = self.keys.encrypt(png, dataset=reg.uid, image=row.image_id)
            cid = self.storage.add(ciphertext)
            with self.session_factory() as s, s.begin():
                r = image_row(s, (reg.uid, row.image_id))
                r.cid = cid
                r.ciphertext_sha256 = hashlib.sha256(ciphertext).hexdigest()
                r.anonymized_sha256 = hashlib.sha256(png).hexdigest()
                r.size, r.width, r.height = len(ciphertext), out.width, out.height
                r.report_json = json.dumps(out.report, sort_keys=True)
                r.status = DONE
            done += 1
            progress(done, total, "anonymize+encrypt+pin")

    def _signed(
        self, signer: CredentialsSigner, reg: RegistrationRow, image_id: str, png: bytes
    ) -> bytes:
        """``png`` with the institution's Content Credentials. (A re-encrypted version keeps
        its images byte for byte: their credentials point to the version they were first
        registered in, which its manifest's ``previous_manifest_cid`` chain leads to.)"""
        params = json.loads(reg.params_json)
        anchor = Anchor(
            chain_id=int(self.chain.backend.chain_id),
            contract=self.chain.address,
            registration=reg.uid,
            image_index=int(image_id),  # image ids are the zero-padded index
            image_id=image_id,
            dataset_id=reg.dataset_id,
        )
        definition = signer.definition(
            method=reg.method, epsilon=params.get("epsilon"), model_hash=reg.model_hash,
            anchor=anchor, features=params.get("features"),
        )  # fmt: skip
        return signer.sign_png(png, definition)

    # --- the Ray executor (platform/executors.py) ------------------------------------
    def _process_images_on_ray(
        self, reg: RegistrationRow, allow_recognizable: bool, progress: Progress
    ) -> None:
        """As ``_process_images``, streaming: pending rows are read a page at a time and
        each batch is recorded as it arrives from the cluster."""
        total, done = self._read(count_images, reg.uid), self._read(count_images, reg.uid, DONE)
        self._drop_stale_keys(reg.uid)
        progress(done, total, "anonymize+encrypt+pin")

        def on_batch(n: int) -> None:
            nonlocal done
            done += n
            progress(done, total, "anonymize+encrypt+pin")

        signer = self.credentials()
        self.last_ray_stats = process_on_ray(
            choice=self.executor, reg=reg, anonymizer_factory=self.anonymizer_factory,
            keys=self.keys, storage=self.storage, session_factory=self.session_factory,
            allow_recognizable=allow_recognizable, on_batch=on_batch,
            sign=None if signer is None else partial(self._signed, signer, reg),
            locate=upload_locator(reg.job_id, self.executor, self.upload_links),
        )  # fmt: skip

    def _drop_stale_keys(self, uid: str) -> None:
        """A crash may have left a key (and a pinned ciphertext) for an unfinished image:
        drop the key; the image is encrypted again under a fresh one."""
        stale = self.keys.images_with_keys(uid)
        if stale:
            stale -= self._read(done_image_ids, uid, stale)
            if stale:
                self.keys.delete_keys(uid, sorted(stale), actor="resume")

    def _anonymized(
        self, reg: RegistrationRow, pending: int, allow_recognizable: bool
    ) -> Iterator[tuple[RegistrationImageRow, AnonymizedFile]]:
        """Each pending row with its anonymized output, in order, read lazily (a
        re-encrypted version, whose rows all are, reuses the previous version's output)."""
        rows = iter_image_rows(self.session_factory, reg.uid, pending_only=True)
        if self._read(has_reencrypted_images, reg.uid):
            yield from ((row, self._decrypt_previous(row.source)) for row in rows)
            return
        params = json.loads(reg.params_json)
        build = partial(
            self.anonymizer_factory, reg.method, epsilon=params.get("epsilon"), seed=reg.seed
        )
        ahead, rows = itertools.tee(rows)  # buffers only what the workers are ahead by
        anonymized: Generator[AnonymizedFile, None, None] = anonymize_files(
            build, (r.source for r in ahead), workers=min(self.workers, pending),
            allow_recognizable=allow_recognizable, reader=self.executor.reader(),
        )  # fmt: skip
        try:
            yield from zip(rows, anonymized, strict=True)
        finally:
            anonymized.close()  # stops the worker processes

    def _decrypt_previous(self, source: str) -> AnonymizedFile:
        prev_uid, image_id = source[len(REENCRYPT_PREFIX) :].split("/", 1)
        with self.session_factory() as s:
            prev = image_row(s, (prev_uid, image_id))
        assert prev.cid and prev.report_json and prev.width and prev.height  # it was done
        plain = self.keys.decrypt(self.storage.cat(prev.cid), dataset=prev_uid, image=image_id)
        return AnonymizedFile(plain, json.loads(prev.report_json), prev.width, prev.height)

    def _pin_manifest(self, uid: str) -> RegistrationRow:
        with self.session_factory() as s:
            reg = registration_row(s, uid)
        leaves = bytearray()  # 32 bytes per image: the only per-image state held
        for record in iter_records(self.session_factory, uid):
            leaves += record.leaf()
        tree = PackedMerkleTree(leaves)
        del leaves
        contract_address = self.chain.address
        signer = self.credentials()
        manifest = Manifest(
            dataset_uid=uid,
            name=reg.name,
            institution=self.accounts["institution"].address,
            chain_id=int(self.chain.backend.chain_id),
            contract=contract_address,
            method=reg.method,
            model_hash=reg.model_hash,
            params=json.loads(reg.params_json),
            merkle_root="0x" + tree.root.hex(),
            records=[],
            proofs=[],
            previous_manifest_cid=reg.previous_manifest_cid,
            created_at=reg.created_at,
            credentials=None if signer is None else signer.identity.public(),
            statements=DatasetStatements(reg.description, reg.licence, reg.consent),
        )
        with tempfile.TemporaryDirectory(prefix="veilchain-manifest-") as tmp:
            path = Path(tmp) / "manifest.json"
            with path.open("wb") as fh:  # streamed: the manifest is never in memory whole
                manifest.write_streaming(
                    fh,
                    len(tree),
                    (
                        (r, ["0x" + p.hex() for p in tree.proof(r.index)])
                        for r in iter_records(self.session_factory, uid)
                    ),
                )
            manifest_cid = self.storage.add_file(path)
        inst = self._signer()
        with self.session_factory() as s, s.begin():
            reg = registration_row(s, uid)
            reg.manifest_cid = manifest_cid
            reg.merkle_root = "0x" + tree.root.hex()
            reg.chain_count_before = inst.dataset_count()
            if reg.dataset_id is not None:
                reg.versions_before = inst.get_dataset(reg.dataset_id).version_count
            reg.status = SUBMITTING
        return reg

    def _result(self, reg: RegistrationRow) -> RegistrationResult:
        assert reg.dataset_id and reg.version and reg.manifest_cid and reg.merkle_root
        records, faces, failed, without = face_counts(self.session_factory, reg.uid)
        tx_hash, gas_used = self.submitter.tx_cost(reg)
        return RegistrationResult(
            uid=reg.uid,
            dataset_id=reg.dataset_id,
            version=reg.version,
            records=records,
            manifest_cid=reg.manifest_cid,
            merkle_root=reg.merkle_root,
            tx_hash=tx_hash,
            gas_used=gas_used,
            method=reg.method,
            model_hash=reg.model_hash,
            params=json.loads(reg.params_json),
            faces=faces,
            faces_failed=failed,
            images_without_faces=without,
        )

    def uid_of(self, dataset_id: int, version: int) -> str:
        """The local uid (key set name) of a registered version; a registered version never
        changes, so the answer is remembered."""
        key = (dataset_id, version)
        if key not in self._uids:
            self._uids[key] = self._read(registered_row, dataset_id, version).uid
        return self._uids[key]


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hex32(h: str) -> str:
    h = h[2:] if h.startswith("0x") else h
    if len(h) != 64:
        raise InputError(f"model hash must be 32 bytes of hex, got {len(h) // 2}")
    return "0x" + h.lower()
