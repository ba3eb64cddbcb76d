"""The Veilchain workflow: register, verify, grant, release and fetch. No HTTP in here.

register:  anonymize -> encrypt (a data key per image) -> pin ciphertext -> manifest pinned
           -> one ``registerDataset`` transaction. State is saved after every image, so a
           killed run resumes; the transaction is sent only when every image is pinned.
verify:    chain root + manifest CID -> fetch every CID, recompute CIDs, hashes, leaves and
           the root -> a report naming every failing image. Needs no key.
release:   a grantee's signed request -> live on-chain grant? -> audit -> the data key
           sealed to the grantee's X25519 key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import to_checksum_address
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from veilchain.anonymizer.files import collect_inputs
from veilchain.chain.merkle import build_merkle_tree
from veilchain.errors import (
    AccessDeniedError,
    AuthenticationError,
    ContentNotFoundError,
    DatasetNotFoundError,
    IdentityCheckError,
    InputError,
    RegistrationStateError,
    StorageError,
    VeilchainError,
)
from veilchain.platform.access import live_grant_until
from veilchain.platform.audit import AuditEvent, AuditLog, canonical_json
from veilchain.platform.keys import (
    KeyManager,
    decrypt_with_data_key,
    generate_keypair,
    open_sealed_key,
)
from veilchain.platform.limits import check_epsilon, check_grant_expiry, check_seed
from veilchain.platform.local_secrets import anonymizer_secret
from veilchain.platform.manifest import (
    ImageRecord,
    Manifest,
    chain_params_text,
    epsilon_milli_of,
)
from veilchain.platform.registrations import (
    ABORTED,
    DONE,
    PENDING,
    PROCESSING,
    REGISTERED,
    SUBMITTING,
    RegistrationImageRow,
    RegistrationRow,
    UsedNonceRow,
)
from veilchain.platform.storage import IpfsStorage
from veilchain.platform.verification import VerificationReport, verify_version

Progress = Callable[[int, int, str], None]  # (done, total, stage)
RELEASE_ACTION = "veilchain-key-release"
RELEASE_MAX_AGE_S = 300
_REENCRYPT_PREFIX = "veilchain:"
_X25519_INFO = b"veilchain x25519 v1"


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _no_progress(done: int, total: int, stage: str) -> None:
    pass


def x25519_keypair_for(account) -> tuple[bytes, bytes]:
    """The grantee's X25519 key pair, derived from their Ethereum key (one secret to keep)."""
    from nacl.public import PrivateKey

    seed = hashlib.sha256(_X25519_INFO + bytes(account.key)).digest()
    sk = PrivateKey(seed)
    return bytes(sk), bytes(sk.public_key)


# --- results -------------------------------------------------------------------------
@dataclass
class RegistrationResult:
    uid: str
    dataset_id: int
    version: int
    records: int
    manifest_cid: str
    merkle_root: str
    tx_hash: str
    gas_used: int | None
    method: str
    model_hash: str
    params: dict
    faces: int
    faces_failed: int
    images_without_faces: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ReleaseRequest:
    """What a grantee signs (EIP-191 personal message over ``message``) to get a data key."""

    message: str
    signature: str

    @classmethod
    def create(
        cls,
        account,
        *,
        chain_id: int,
        contract: str,
        dataset_id: int,
        version: int,
        image_id: str,
        recipient_public_key: bytes,
        issued_at: int | None = None,
        nonce: str | None = None,
    ) -> ReleaseRequest:
        body = {
            "action": RELEASE_ACTION,
            "chain_id": chain_id,
            "contract": contract,
            "dataset_id": dataset_id,
            "version": version,
            "image_id": image_id,
            "recipient": recipient_public_key.hex(),
            "issued_at": int(time.time()) if issued_at is None else issued_at,
            "nonce": nonce or secrets.token_hex(16),
        }
        message = canonical_json(body).decode()
        signed = Account.sign_message(encode_defunct(text=message), account.key)
        return cls(message=message, signature="0x" + bytes(signed.signature).hex())


@dataclass(frozen=True)
class DatasetSummary:
    dataset_id: int
    owner: str
    versions: int
    name: str | None
    latest: dict

    def to_dict(self) -> dict:
        return asdict(self)


# --- the service ---------------------------------------------------------------------
class VeilchainService:
    """The one workflow object; routes and CLI commands call its methods and nothing else.

    ``accounts`` maps role names ("admin", "institution", "auditor", "keyservice") to local
    accounts this process may sign with. ``anonymizer_factory(method, epsilon, seed)`` returns
    an anonymizer (see ``veilchain.anonymizer.build_anonymizer``).
    """

    def __init__(
        self,
        *,
        chain,
        accounts: dict[str, Any],
        storage: IpfsStorage,
        keys: KeyManager,
        audit: AuditLog,
        session_factory: sessionmaker[Session],
        anonymizer_factory: Callable[..., Any],
        seed: int = 0,
        keystore=None,
        workers: int = 1,
    ) -> None:
        self.chain = chain
        self.accounts = accounts
        self.storage = storage
        self.keys = keys
        self.audit = audit
        self.session_factory = session_factory
        self.anonymizer_factory = anonymizer_factory
        self.seed = seed
        self.workers = max(1, workers)
        self._manifests: dict[str, Manifest] = {}
        self._registered_uids: dict[tuple[int, int], str] = {}
        self.keystore = keystore  # local accounts (roles, grantees); None on a bare service
        self.chain_id = int(chain.backend.chain_id)

    def as_role(self, role: str):
        """The chain client signing as one of this process's accounts."""
        if role not in self.accounts:
            raise AccessDeniedError(f"this Veilchain instance holds no {role} account")
        return self.chain.with_account(self.accounts[role])

    # --- registration ----------------------------------------------------------------
    def register(
        self,
        inputs: Iterable[str | Path],
        *,
        name: str,
        method: str,
        epsilon: float | None = None,
        seed: int | None = None,
        allow_recognizable: bool = False,
        progress: Progress = _no_progress,
    ) -> RegistrationResult:
        """Register image files (or folders of them) as a new data set."""
        files = [f.resolve() for f, _ in collect_inputs(inputs, videos=False)]
        uid = self._start(name, method, epsilon, seed, [str(f) for f in files])
        return self._run(uid, allow_recognizable=allow_recognizable, progress=progress)

    def add_reencrypted_version(
        self, dataset_id: int, *, progress: Progress = _no_progress
    ) -> RegistrationResult:
        """True revocation: re-encrypt every image of the latest version under fresh data keys,
        pin the new ciphertexts and register them as a new version of the same data set."""
        prev = self._registration_for(dataset_id, None)
        rows = self._image_rows(prev.uid)
        params = json.loads(prev.params_json)
        uid = self._start(
            prev.name,
            prev.method,
            params.get("epsilon"),
            prev.seed,
            [f"{_REENCRYPT_PREFIX}{prev.uid}/{r.image_id}" for r in rows],
            dataset_id=dataset_id,
            previous_manifest_cid=prev.manifest_cid,
            params=params,
            model_hash=prev.model_hash,
        )
        return self._run(uid, allow_recognizable=True, progress=progress)

    def pending_registrations(self) -> list[RegistrationRow]:
        with self.session_factory() as s:
            return list(
                s.scalars(
                    select(RegistrationRow).where(
                        RegistrationRow.status.in_([PROCESSING, SUBMITTING])
                    )
                )
            )

    def resume(
        self,
        uid: str | None = None,
        *,
        allow_recognizable: bool = False,
        progress: Progress = _no_progress,
    ) -> list[RegistrationResult]:
        """Finish interrupted registrations (all of them, or ``uid``)."""
        pending = [r for r in self.pending_registrations() if uid is None or r.uid == uid]
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
            if reg.status == SUBMITTING and self._find_submitted(reg) is not None:
                raise RegistrationStateError(
                    f"registration {uid} already reached the chain; run resume to record it"
                )
            cids = [r.cid for r in self._image_rows(uid) if r.cid]
        for cid in cids:
            with contextlib.suppress(ContentNotFoundError):  # already unpinned
                self.storage.unpin(cid)
        self.keys.delete_keys(uid)
        with self.session_factory() as s, s.begin():
            s.get(RegistrationRow, uid).status = ABORTED

    def _start(
        self,
        name: str,
        method: str,
        epsilon: float | None,
        seed: int | None,
        sources: list[str],
        *,
        dataset_id: int | None = None,
        previous_manifest_cid: str | None = None,
        params: dict | None = None,
        model_hash: str | None = None,
    ) -> str:
        if not name or len(name) > 200:
            raise InputError("a data set needs a name of 1 to 200 characters (--name)")
        if not sources:
            raise InputError("no images to register: the input holds no image files")
        check_epsilon(epsilon)  # bounds before any work (OutOfRangeError)
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
            s.add(
                RegistrationRow(
                    uid=uid,
                    name=name,
                    method=method,
                    params_json=json.dumps(params, sort_keys=True),
                    model_hash=_hex32(model_hash),
                    seed=seed,
                    status=PROCESSING,
                    created_at=_now_iso(),
                    dataset_id=dataset_id,
                    previous_manifest_cid=previous_manifest_cid,
                )
            )
            s.flush()
            s.add_all(
                RegistrationImageRow(
                    uid=uid, image_id=f"{i:06d}", idx=i, source=src, status=PENDING
                )
                for i, src in enumerate(sources)
            )
        return uid

    def _run(self, uid: str, *, allow_recognizable: bool, progress: Progress):
        with self.session_factory() as s:
            reg = s.get(RegistrationRow, uid)
        if reg.status == PROCESSING:
            self._process_images(reg, allow_recognizable, progress)
            reg = self._pin_manifest(uid)
        if reg.status == SUBMITTING:
            reg = self._submit(reg)
        return self._result(reg)

    def _process_images(self, reg: RegistrationRow, allow_recognizable: bool, progress) -> None:
        rows = self._image_rows(reg.uid)
        pending = [r for r in rows if r.status != DONE]
        # A crash may have left a key (and a pinned ciphertext) for an unfinished image:
        # drop the key now; the image is encrypted again under a fresh one below.
        stale = self.keys.images_with_keys(reg.uid) & {r.image_id for r in pending}
        if stale:
            self.keys.delete_keys(reg.uid, sorted(stale), actor="resume")
        total, done = len(rows), len(rows) - len(pending)
        progress(done, total, "anonymize+encrypt+pin")
        for row, (png, report, width, height) in zip(
            pending, self._anonymized(reg, pending, allow_recognizable), strict=True
        ):
            ciphertext = self.keys.encrypt(png, dataset=reg.uid, image=row.image_id)
            cid = self.storage.add(ciphertext)
            with self.session_factory() as s, s.begin():
                r = s.get(RegistrationImageRow, (reg.uid, row.image_id))
                r.cid = cid
                r.ciphertext_sha256 = hashlib.sha256(ciphertext).hexdigest()
                r.anonymized_sha256 = hashlib.sha256(png).hexdigest()
                r.size, r.width, r.height = len(ciphertext), width, height
                r.report_json = json.dumps(report, sort_keys=True)
                r.status = DONE
            done += 1
            progress(done, total, "anonymize+encrypt+pin")

    def _anonymized(self, reg: RegistrationRow, rows, allow_recognizable: bool):
        """(png, report, width, height) per row, in order; files are anonymized in
        ``self.workers`` processes when more than one is asked for."""
        params = json.loads(reg.params_json)
        factory = partial(
            self.anonymizer_factory, reg.method, epsilon=params.get("epsilon"), seed=reg.seed
        )
        files = [Path(r.source) for r in rows if not r.source.startswith(_REENCRYPT_PREFIX)]
        if self.workers > 1 and len(files) > 1:
            ctx = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(
                min(self.workers, len(files)), mp_context=ctx,
                initializer=_init_worker, initargs=(factory,),
            )  # fmt: skip
            anonymized = pool.map(
                partial(_worker_anonymize, allow_recognizable=allow_recognizable), files
            )
        else:
            pool, anonymizer = None, factory() if files else None
            anonymized = (_anonymize_file(anonymizer, f, allow_recognizable) for f in files)
        try:
            for row in rows:
                if row.source.startswith(_REENCRYPT_PREFIX):
                    yield self._decrypt_previous(row.source)
                else:
                    yield next(anonymized)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)

    def _decrypt_previous(self, source: str) -> tuple[bytes, dict, int, int]:
        prev_uid, image_id = source[len(_REENCRYPT_PREFIX) :].split("/", 1)
        with self.session_factory() as s:
            prev = s.get(RegistrationImageRow, (prev_uid, image_id))
        plain = self.keys.decrypt(self.storage.cat(prev.cid), dataset=prev_uid, image=image_id)
        return plain, json.loads(prev.report_json), prev.width, prev.height

    def _pin_manifest(self, uid: str) -> RegistrationRow:
        with self.session_factory() as s:
            reg = s.get(RegistrationRow, uid)
        records = [_record_of(r) for r in self._image_rows(uid)]
        tree = build_merkle_tree([r.leaf() for r in records])
        contract_address = self.chain.address
        manifest = Manifest(
            dataset_uid=uid,
            name=reg.name,
            institution=self.accounts["institution"].address,
            chain_id=self.chain_id,
            contract=contract_address,
            method=reg.method,
            model_hash=reg.model_hash,
            params=json.loads(reg.params_json),
            merkle_root="0x" + tree.root.hex(),
            records=records,
            proofs=[["0x" + p.hex() for p in tree.proof(i)] for i in range(len(records))],
            previous_manifest_cid=reg.previous_manifest_cid,
            created_at=reg.created_at,
        )
        manifest_cid = self.storage.add(manifest.to_bytes())
        inst = self.as_role("institution")
        with self.session_factory() as s, s.begin():
            reg = s.get(RegistrationRow, uid)
            reg.manifest_cid = manifest_cid
            reg.merkle_root = "0x" + tree.root.hex()
            reg.chain_count_before = inst.dataset_count()
            if reg.dataset_id is not None:
                reg.versions_before = inst.get_dataset(reg.dataset_id).version_count
            reg.status = SUBMITTING
        return reg

    def _find_submitted(self, reg: RegistrationRow) -> tuple[int, int] | None:
        """The (dataset_id, version) this registration already created, if its tx landed."""
        root = bytes.fromhex(reg.merkle_root[2:])
        if reg.dataset_id is None:
            candidates = [
                (i, 1) for i in range(reg.chain_count_before + 1, self.chain.dataset_count() + 1)
            ]
        else:
            n = self.chain.get_dataset(reg.dataset_id).version_count
            candidates = [(reg.dataset_id, v) for v in range(reg.versions_before + 1, n + 1)]
        for ds, v in candidates:
            ver = self.chain.get_version(ds, v)
            if ver.merkle_root == root and ver.manifest_cid == reg.manifest_cid:
                return ds, v
        return None

    def _submit(self, reg: RegistrationRow) -> RegistrationRow:
        found = self._find_submitted(reg)
        tx_hash = reg.tx_hash
        if found is None and tx_hash:  # sent before a crash: pending or dropped, not mined
            ref = self.as_role("institution").version_of_tx(tx_hash)
            found = None if ref is None else (ref.dataset_id, ref.version)
        if found is None:
            params = json.loads(reg.params_json)
            fields = dict(
                merkle_root=bytes.fromhex(reg.merkle_root[2:]),
                record_count=len(self._image_rows(reg.uid)),
                manifest_cid=reg.manifest_cid,
                model_hash=bytes.fromhex(reg.model_hash[2:]),
                method=reg.method,
                params=chain_params_text(params),
                epsilon_milli=epsilon_milli_of(params),
            )
            inst = self.as_role("institution")
            fields["on_sent"] = partial(self._record_tx, reg.uid)  # before the wait to be mined
            if reg.dataset_id is None:
                ref = inst.register_dataset(**fields)
            else:
                ref = inst.add_version(reg.dataset_id, **fields)
            found, tx_hash = (ref.dataset_id, ref.version), ref.tx_hash
        with self.session_factory() as s, s.begin():
            row = s.get(RegistrationRow, reg.uid)
            row.dataset_id, row.version = found
            row.tx_hash = tx_hash if isinstance(tx_hash, str) or tx_hash is None else tx_hash.hex()
            row.status = REGISTERED
            self.audit.append(
                AuditEvent.REGISTER,
                actor=self.accounts["institution"].address,
                subject=f"dataset:{found[0]}/v{found[1]}",
                details={
                    "uid": row.uid,
                    "manifest_cid": row.manifest_cid,
                    "merkle_root": row.merkle_root,
                    "tx_hash": row.tx_hash,
                },
                session=s,
            )
        return row

    def _record_tx(self, uid: str, tx_hash: str) -> None:
        with self.session_factory() as s, s.begin():
            s.get(RegistrationRow, uid).tx_hash = tx_hash

    def _result(self, reg: RegistrationRow) -> RegistrationResult:
        rows = self._image_rows(reg.uid)
        reports = [json.loads(r.report_json) for r in rows]
        faces = [f for rep in reports for f in rep.get("faces", [])]
        tx_hash, gas_used = self._tx_cost(reg)
        return RegistrationResult(
            uid=reg.uid,
            dataset_id=reg.dataset_id,
            version=reg.version,
            records=len(rows),
            manifest_cid=reg.manifest_cid,
            merkle_root=reg.merkle_root,
            tx_hash=tx_hash,
            gas_used=gas_used,
            method=reg.method,
            model_hash=reg.model_hash,
            params=json.loads(reg.params_json),
            faces=len(faces),
            faces_failed=sum(1 for f in faces if f.get("passed") is False),
            images_without_faces=sum(1 for rep in reports if not rep.get("faces")),
        )

    def _tx_cost(self, reg: RegistrationRow) -> tuple[str, int]:
        """The registering transaction's hash and gas used, read back from its receipt."""
        tx_hash = reg.tx_hash or self.chain.get_version(reg.dataset_id, reg.version).tx_hash
        backend = self.chain.backend
        with backend.translating(f"reading the receipt of {tx_hash}"):
            receipt = backend.w3.eth.get_transaction_receipt(tx_hash)
        return tx_hash, int(receipt["gasUsed"])

    def _image_rows(self, uid: str) -> list[RegistrationImageRow]:
        with self.session_factory() as s:
            return list(
                s.scalars(
                    select(RegistrationImageRow)
                    .where(RegistrationImageRow.uid == uid)
                    .order_by(RegistrationImageRow.idx)
                )
            )

    def _registration_for(self, dataset_id: int, version: int | None) -> RegistrationRow:
        with self.session_factory() as s:
            q = select(RegistrationRow).where(
                RegistrationRow.dataset_id == dataset_id, RegistrationRow.status == REGISTERED
            )
            if version is not None:
                q = q.where(RegistrationRow.version == version)
            reg = s.scalars(q.order_by(RegistrationRow.version.desc())).first()
        if reg is None:
            raise DatasetNotFoundError(
                f"data set {dataset_id}"
                + (f" version {version}" if version else "")
                + " was not registered by this Veilchain instance"
            )
        return reg

    # --- reading (public, keyless) ----------------------------------------------------
    def _version(self, dataset_id: int, version: int | None):
        info = self.chain.get_dataset(dataset_id)
        version = info.version_count if version is None else version
        return version, self.chain.get_version(dataset_id, version)

    def manifest(self, dataset_id: int, version: int | None = None) -> Manifest:
        _, ver = self._version(dataset_id, version)
        return self._manifest_at(ver.manifest_cid)

    def _manifest_at(self, cid: str) -> Manifest:
        """A parsed manifest; cached by CID, since content under a CID never changes."""
        if cid not in self._manifests:
            if len(self._manifests) >= 32:
                self._manifests.pop(next(iter(self._manifests)))
            self._manifests[cid] = Manifest.from_bytes(self.storage.cat(cid))
        return self._manifests[cid]

    def list_datasets(self) -> list[DatasetSummary]:
        out = []
        for ds in range(1, self.chain.dataset_count() + 1):
            out.append(self.get_dataset(ds))
        return out

    def get_dataset(self, dataset_id: int) -> DatasetSummary:
        info = self.chain.get_dataset(dataset_id)
        ver = self.chain.get_version(dataset_id, info.version_count)
        latest = _version_dict(info.version_count, ver)
        try:
            name = self._manifest_at(ver.manifest_cid).name
        except VeilchainError:
            name = None
        return DatasetSummary(dataset_id, info.owner, info.version_count, name, latest)

    def image_record(self, dataset_id: int, index: int, version: int | None = None) -> dict:
        """One image's public record, Merkle proof and privacy report from the manifest."""
        version, ver = self._version(dataset_id, version)
        m = self._manifest_at(ver.manifest_cid)
        if not 0 <= index < len(m.records):
            raise InputError(
                f"data set {dataset_id} v{version} has images 0..{len(m.records) - 1}, not {index}"
            )
        rec = m.records[index]
        return {
            **rec.to_dict(),
            "dataset_id": dataset_id,
            "dataset_uid": m.dataset_uid,
            "version": version,
            "leaf": "0x" + rec.leaf().hex(),
            "proof": m.proofs[index],
            "merkle_root": "0x" + ver.merkle_root.hex(),
        }

    def verify(
        self,
        dataset_id: int,
        version: int | None = None,
        *,
        progress: Progress = _no_progress,
        institution: str | None = None,
    ) -> VerificationReport:
        """Check a data set version against the chain without any key; names every failure.
        ``institution``: the registrant the auditor trusts (None: not checked)."""
        version, ver = self._version(dataset_id, version)
        return verify_version(
            self.chain, self.storage, dataset_id, version, ver, progress, institution
        )

    def attest(self, report: VerificationReport) -> dict:
        """Auditor: pin the verification report and record the verdict on chain."""
        report_cid = self.storage.add(canonical_json(report.to_dict()))
        ref = self.as_role("auditor").attest(
            report.dataset_id, report.version, report.ok, report_cid
        )
        return {"report_cid": report_cid, "passed": report.ok, "tx_hash": _tx(ref)}

    # --- grants ------------------------------------------------------------------------
    def grant(self, dataset_id: int, grantee: str, *, expires_at: int) -> dict:
        check_grant_expiry(expires_at, chain_now=self.chain.block_timestamp())
        ref = self.as_role("institution").grant_access(dataset_id, grantee, expires_at)
        self.audit.append(
            AuditEvent.GRANT,
            actor=self.accounts["institution"].address,
            subject=f"dataset:{dataset_id}",
            details={"grantee": grantee, "expires_at": expires_at, "tx_hash": _tx(ref)},
        )
        return {"dataset_id": dataset_id, "grantee": grantee, "expires_at": expires_at,
                "tx_hash": _tx(ref)}  # fmt: skip

    def revoke(self, dataset_id: int, grantee: str) -> dict:
        ref = self.as_role("institution").revoke_access(dataset_id, grantee)
        self.audit.append(
            AuditEvent.REVOKE,
            actor=self.accounts["institution"].address,
            subject=f"dataset:{dataset_id}",
            details={"grantee": grantee, "tx_hash": _tx(ref)},
        )
        return {"dataset_id": dataset_id, "grantee": grantee, "tx_hash": _tx(ref)}

    # --- key release ---------------------------------------------------------------------
    def release_key(self, request: ReleaseRequest) -> bytes:
        """Check a grantee's signed request against the chain; return the sealed data key."""
        try:
            body = json.loads(request.message)
            address = Account.recover_message(
                encode_defunct(text=request.message), signature=request.signature
            )
        except Exception as exc:  # malformed JSON or signature bytes
            raise AuthenticationError("release request is not a signed JSON message") from exc
        need = {"action", "chain_id", "contract", "dataset_id", "version", "image_id",
                "recipient", "issued_at", "nonce"}  # fmt: skip
        if not isinstance(body, dict) or not need <= body.keys():
            raise AuthenticationError(f"release request must carry {', '.join(sorted(need))}")
        subject = f"dataset:{body['dataset_id']}/v{body['version']}/{body['image_id']}"

        def refuse(err: VeilchainError) -> VeilchainError:
            self.audit.append(
                AuditEvent.REFUSAL, actor=address, subject=subject, details={"reason": str(err)}
            )
            return err

        if body["action"] != RELEASE_ACTION:
            raise refuse(AuthenticationError(f"action must be {RELEASE_ACTION!r}"))
        if body["chain_id"] != self.chain_id or (
            str(body["contract"]).lower() != self.chain.address.lower()
        ):
            raise refuse(AuthenticationError("request is for another chain or contract"))
        now = int(time.time())
        if not (now - RELEASE_MAX_AGE_S <= int(body["issued_at"]) <= now + 60):
            raise refuse(AuthenticationError("release request expired; sign a fresh one"))
        try:
            recipient = bytes.fromhex(str(body["recipient"]))
            if len(recipient) != 32:
                raise ValueError
        except ValueError:
            raise refuse(
                InputError("recipient must be a 32-byte X25519 public key in hex")
            ) from None
        try:
            with self.session_factory() as s, s.begin():
                s.add(UsedNonceRow(nonce=str(body["nonce"])[:64], address=address,
                                   issued_at=int(body["issued_at"])))  # fmt: skip
        except IntegrityError:
            raise refuse(AuthenticationError("release request was already used (replay)")) from None
        return self.release_key_for(
            address, int(body["dataset_id"]), int(body["version"]), str(body["image_id"]),
            recipient,
        )  # fmt: skip

    def release_key_for(
        self, address: str, dataset_id: int, version: int, image_id: str, recipient: bytes
    ) -> bytes:
        """Release to an already-authenticated address (the API's signed-in user)."""
        subject = f"dataset:{dataset_id}/v{version}/{image_id}"
        if live_grant_until(self.chain, dataset_id, address) is None:  # chain AND host clock
            err = AccessDeniedError(
                f"{address} holds no live grant on data set {dataset_id} (none, expired or revoked)"
            )
            self.audit.append(AuditEvent.REFUSAL, actor=address, subject=subject,
                              details={"reason": str(err)})  # fmt: skip
            raise err
        uid = self._registered_uid(dataset_id, version)
        sealed = self.keys.release_sealed(
            dataset=uid, image=image_id, recipient_public_key=recipient
        )
        self.audit.append(
            AuditEvent.RELEASE,
            actor=address,
            subject=subject,
            details={"recipient": recipient.hex(), "uid": uid},
        )
        return sealed

    def _registered_uid(self, dataset_id: int, version: int) -> str:
        """The uid of a registered version. A registered version never changes (it is on
        chain), so its uid is remembered after the first lookup."""
        uid = self._registered_uids.get((dataset_id, version))
        if uid is None:
            uid = self._registration_for(dataset_id, version).uid
            self._registered_uids[(dataset_id, version)] = uid
        return uid

    def fetch(self, account, dataset_id: int, index: int, *, version: int | None = None) -> bytes:
        """Grantee side, end to end: sign a request, get the sealed key, fetch, decrypt, check."""
        rec = self.image_record(dataset_id, index, version)
        sk, pk = x25519_keypair_for(account)
        req = ReleaseRequest.create(
            account,
            chain_id=self.chain_id,
            contract=self.chain.address,
            dataset_id=dataset_id,
            version=rec["version"],
            image_id=rec["image_id"],
            recipient_public_key=pk,
        )
        return self._open(rec, self.release_key(req), sk)

    def fetch_for(
        self, address: str, dataset_id: int, index: int, *, version: int | None = None
    ) -> bytes:
        """Decrypt for an already-authenticated address (the API's signed-in grantee)."""
        rec = self.image_record(dataset_id, index, version)
        sk, pk = generate_keypair()
        sealed = self.release_key_for(address, dataset_id, rec["version"], rec["image_id"], pk)
        return self._open(rec, sealed, sk)

    def _open(self, rec: dict, sealed: bytes, private_key: bytes) -> bytes:
        """Open a sealed data key, decrypt the record's ciphertext, check it is the output."""
        plain = decrypt_with_data_key(
            self.storage.cat(rec["cid"]),
            open_sealed_key(sealed, private_key),
            dataset=rec["dataset_uid"],
            image=rec["image_id"],
        )
        if hashlib.sha256(plain).hexdigest() != rec["anonymized_sha256"]:
            raise StorageError(
                f"decrypted image {rec['image_id']} differs from the anonymized output on record"
            )
        return plain

    # --- key service -------------------------------------------------------------------
    def rotate_keys(self) -> dict:
        version = self.keys.rotate(actor="cli")
        rewrapped = self.keys.rewrap()
        return {"current_version": version, "rewrapped": rewrapped}

    def anchor_audit(self) -> dict:
        root, count = self.audit.root_for_anchor()
        ref = self.as_role("keyservice").anchor_audit(root, count)
        self.audit.record_anchor(_tx(ref), root, count, actor=self.accounts["keyservice"].address)
        return {"root": "0x" + root.hex(), "count": count, "tx_hash": _tx(ref)}


# --- helpers -----------------------------------------------------------------------------
_WORKER_ANONYMIZER = None


def _init_worker(factory) -> None:
    global _WORKER_ANONYMIZER
    parent = os.getppid()

    def exit_with_parent() -> None:  # a SIGKILLed registration must not leave workers behind
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    _WORKER_ANONYMIZER = factory()
    if "torch" in sys.modules:  # one thread per worker: the workers already use every core
        sys.modules["torch"].set_num_threads(1)


def _worker_anonymize(path: Path, *, allow_recognizable: bool):
    return _anonymize_file(_WORKER_ANONYMIZER, path, allow_recognizable)


def _anonymize_file(anonymizer, path: Path, allow_recognizable: bool):
    from veilchain.anonymizer.image_io import encode_image, load_image

    image = load_image(path)
    result = anonymizer.anonymize(image)
    if result.failed and not allow_recognizable:
        raise IdentityCheckError(
            f"{path.name}: {len(result.failed)} face(s) stayed recognizable after every retry;"
            " use another method or --allow-recognizable to publish it with that report"
        )
    report = {
        **{k: v for k, v in result.report.items() if k != "timing_s"},
        "faces": [f.to_dict() for f in result.faces],
    }
    png = encode_image(result.image, "png")
    return png, report, int(image.shape[1]), int(image.shape[0])


def _record_of(r: RegistrationImageRow) -> ImageRecord:
    return ImageRecord(
        index=r.idx,
        image_id=r.image_id,
        cid=r.cid,
        ciphertext_sha256=r.ciphertext_sha256,
        anonymized_sha256=r.anonymized_sha256,
        size=r.size,
        width=r.width,
        height=r.height,
        report=json.loads(r.report_json),
    )


def _version_dict(version: int, ver) -> dict:
    return {
        "version": version,
        "merkle_root": "0x" + bytes(ver.merkle_root).hex(),
        "record_count": ver.record_count,
        "manifest_cid": ver.manifest_cid,
        "model_hash": "0x" + bytes(ver.model_hash).hex(),
        "method": ver.method,
        "params": ver.params,
        "epsilon_milli": ver.epsilon_milli,
        "registered_at": ver.registered_at,
        "registrant": ver.registrant,
    }


def _hex32(h: str) -> str:
    h = h[2:] if h.startswith("0x") else h
    if len(h) != 64:
        raise InputError(f"model hash must be 32 bytes of hex, got {len(h) // 2}")
    return "0x" + h.lower()


def _tx(ref) -> str:
    h = getattr(ref, "tx_hash", ref)
    return h if isinstance(h, str) else "0x" + bytes(h).hex()


# --- wiring --------------------------------------------------------------------------------
ROLES = ("institution", "auditor", "keyservice")


class RoleAccounts(Mapping):
    """The local accounts of each role, decrypted from the keystore only when first used."""

    def __init__(self, keystore, admin) -> None:
        self._keystore = keystore
        self._loaded = {"admin": admin}

    def __getitem__(self, role: str):
        if role not in self._loaded:
            if role not in ROLES:
                raise KeyError(role)
            self._loaded[role] = self._keystore.get_or_create(role)
        return self._loaded[role]

    def __iter__(self):
        return iter(("admin", *ROLES))

    def __len__(self) -> int:
        return 1 + len(ROLES)

    def address(self, role: str) -> str:
        """The role's address without decrypting its key (read from the keystore file)."""
        if role in self._loaded or not self._keystore.exists(role):
            return self[role].address
        stored = json.loads(self._keystore.path_of(role).read_text())["address"]
        return to_checksum_address("0x" + stored.removeprefix("0x"))


def _ensure_roles(chain, accounts: RoleAccounts) -> None:
    """Appoint this instance's institution, auditor and key service on a fresh contract."""
    admin = chain.with_account(accounts["admin"])
    wanted = {"institution": admin.add_institution, "auditor": admin.add_auditor,
              "keyservice": admin.set_key_service}  # fmt: skip
    for role, appoint in wanted.items():
        address = accounts.address(role)
        if role not in chain.roles_of(address):
            appoint(address)
        if chain.backend.is_dev_chain and chain.backend.get_balance(address) < 10**18:
            chain.backend.fund(address, 100 * 10**18)


@dataclass(frozen=True)
class AnonymizerFactory:
    """Builds an anonymizer for (method, epsilon, seed) from fixed ``build_anonymizer``
    keywords (the settings' and the installation's secret); picklable, so worker processes
    can build their own."""

    options: dict = field(default_factory=dict)

    def __call__(self, method: str, *, epsilon: float | None = None, seed: int = 0):
        from veilchain.anonymizer import build_anonymizer

        return build_anonymizer(method, epsilon=epsilon, seed=seed, **self.options)


def build_service(settings) -> VeilchainService:
    """Open (or create) everything under the settings' data directory and wire the service."""
    from veilchain.chain import Keystore, build_chain_client
    from veilchain.platform.db import init_db, make_engine, make_session_factory
    from veilchain.platform.keys import build_key_manager
    from veilchain.platform.local_secrets import resolve_local_secrets
    from veilchain.platform.storage import build_storage

    settings = resolve_local_secrets(settings)  # unset secrets: generated per data dir
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    init_db(engine)
    sessions = make_session_factory(engine)
    audit = AuditLog(sessions)
    keys = build_key_manager(
        session_factory=sessions,
        passphrase=settings.kms.passphrase,
        master_key_hex=settings.kms.master_key_hex,
        audit=audit,
    )
    storage = build_storage(api_url=settings.ipfs.api_url, data_dir=data_dir)
    chain = build_chain_client(
        rpc_url=settings.chain.rpc_url,
        data_dir=data_dir,
        private_key=settings.chain.private_key,
        keystore_passphrase=settings.chain.keystore_passphrase,
        contract_address=settings.chain.contract_address,
        log_block_range=settings.chain.log_block_range,
        confirmations=settings.chain.confirmations,
    )
    keystore = Keystore(data_dir / "keystore", settings.chain.keystore_passphrase)
    accounts = RoleAccounts(keystore, chain.account)
    _ensure_roles(chain, accounts)
    a = settings.anonymizer

    secret = anonymizer_secret(data_dir)
    anonymizer_factory = AnonymizerFactory({**a.builder_options(), "secret": secret})

    return VeilchainService(
        chain=chain,
        accounts=accounts,
        storage=storage,
        keys=keys,
        audit=audit,
        session_factory=sessions,
        anonymizer_factory=anonymizer_factory,
        seed=a.seed,
        keystore=keystore,
        workers=a.workers or (os.cpu_count() or 1),
    )
