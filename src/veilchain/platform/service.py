"""``VeilchainService``: the one object routes and CLI commands call. No HTTP in here.

A thin facade; each step of the workflow lives in a module named after it:

    registration.py   images -> anonymized (anonymizer/batch.py), encrypted, pinned ->
                      manifest -> one transaction; resumable, sent once
    catalog.py        the keyless read side: data sets, versions, records, proofs
    statements.py     a data set's description, licence, consent: checked, then published
    verification.py   a version checked against the chain, without any key; attest
    grants.py         who may grant, expiry, visibility, liveness
    release.py        a data key sealed to a grantee with a live grant (signed requests)
    provenance/       Content Credentials (C2PA): signing identity, signing, reading
    uploads.py        an API upload's originals: spooled encrypted, shredded on failure
    upload_links.py   signed, short-lived links to a running job's uploads (remote Ray)
    job_handlers.py   the API's background jobs (registration, verification)
    audit_anchors.py  the audit log's on-chain anchor and its one verdict
    wiring.py         build_service(settings)
The grantee's side (sign, decrypt, check) is ``veilchain/client.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from veilchain.chain.client import ChainClient, Grant
from veilchain.errors import AccessDeniedError
from veilchain.platform import jobs
from veilchain.platform.audit import AuditLog
from veilchain.platform.audit_anchors import AuditVerdict, anchor_audit, audit_verdict
from veilchain.platform.audit_entries import canonical_json
from veilchain.platform.catalog import (
    Catalog,
    DatasetDetail,
    DatasetSummary,
    MerkleProof,
    VersionDetail,
)
from veilchain.platform.executors import ExecutorChoice
from veilchain.platform.grants import Actor, GrantBook, GrantChange
from veilchain.platform.job_handlers import JobHandlers
from veilchain.platform.keys import KeyManager, generate_keypair
from veilchain.platform.manifest import ImageRecord, Manifest
from veilchain.platform.provenance import (
    Credentials,
    check_image_credentials,
    expected_credentials,
)
from veilchain.platform.registration import Progress, Registrar, no_progress
from veilchain.platform.registrations import DatasetSpec, RegistrationResult, RegistrationRow
from veilchain.platform.release import KeyRelease, ReleaseRequest, open_image
from veilchain.platform.statements import DatasetStatements
from veilchain.platform.storage import IpfsStorage
from veilchain.platform.upload_links import UploadLinks
from veilchain.platform.uploads import UploadSpool, job_tmp_dir
from veilchain.platform.verification import VerificationReport, verify_version

__all__ = ["VeilchainService"]


class VeilchainService:
    """``accounts`` maps role names ("admin", "institution", "auditor", "keyservice") to local
    accounts this process may sign with. ``anonymizer_factory(method, epsilon=, seed=)``
    returns an anonymizer (``veilchain.anonymizer.batch.AnonymizerFactory``)."""

    def __init__(
        self,
        *,
        chain: ChainClient,
        accounts: Mapping[str, Any],
        storage: IpfsStorage,
        keys: KeyManager,
        audit: AuditLog,
        session_factory: sessionmaker[Session],
        anonymizer_factory: Callable[..., Any],
        data_dir: Path,
        seed: int = 0,
        keystore: Any = None,
        workers: int = 1,
        credentials: Callable[[], Any] = lambda: None,
        executor: ExecutorChoice | None = None,
    ) -> None:
        self.chain = chain
        # () -> the institution's C2PA signer (provenance.CredentialsSigner); None: unsigned
        self.credentials = credentials
        self.accounts = accounts
        self.storage = storage
        self.keys = keys
        self.audit = audit
        self.session_factory = session_factory
        self.keystore = keystore  # local accounts (roles, grantees)
        self.chain_id = int(chain.backend.chain_id)
        self.catalog = Catalog(chain=chain, storage=storage, session_factory=session_factory)
        links = UploadLinks(job_tmp_dir)  # an upload's files, for remote Ray workers
        self.registrar = Registrar(
            chain=chain, accounts=accounts, storage=storage, keys=keys, audit=audit,
            session_factory=session_factory, anonymizer_factory=anonymizer_factory,
            seed=seed, workers=workers, executor=executor, credentials=credentials,
            upload_links=links,
        )  # fmt: skip
        self.grants = GrantBook(
            chain=chain,
            institution=lambda: accounts["institution"],
            audit=audit,
            uploader=self.catalog.uploader,
        )
        self.release = KeyRelease(
            chain=chain, keys=keys, audit=audit, session_factory=session_factory,
            uid_of=self.registrar.uid_of,
        )  # fmt: skip
        self.uploads = UploadSpool(data_dir=data_dir, keys=keys, audit=audit,
                                   registrar=self.registrar, links=links)  # fmt: skip
        self.jobs = JobHandlers(self)

    def as_role(self, role: str) -> ChainClient:
        """The chain client signing as one of this process's accounts."""
        if role not in self.accounts:
            raise AccessDeniedError(f"this Veilchain instance holds no {role} account")
        return self.chain.with_account(self.accounts[role])

    # --- registration (registration.py) ------------------------------------------
    def register(
        self,
        inputs: Iterable[str | Path],
        *,
        name: str,
        method: str,
        epsilon: float | None = None,
        seed: int | None = None,
        allow_recognizable: bool = False,
        progress: Progress = no_progress,
        job_id: str | None = None,
        description: str | None = None,
        licence: str | None = None,
        consent: str | None = None,
    ) -> RegistrationResult:
        """Register image files (or folders of them) as a new data set; the description,
        licence and consent statement are published in its manifest (statements.py)."""
        statements = DatasetStatements.checked(
            description=description, licence=licence, consent=consent
        )
        return self.registrar.register(
            inputs, DatasetSpec(name, method, epsilon, seed, statements),
            allow_recognizable=allow_recognizable, progress=progress, job_id=job_id,
        )  # fmt: skip

    def add_reencrypted_version(
        self, dataset_id: int, *, progress: Progress = no_progress
    ) -> RegistrationResult:
        """True revocation: the latest version again under fresh data keys, as a new version."""
        return self.registrar.add_reencrypted_version(dataset_id, progress=progress)

    def pending_registrations(self, *, local_only: bool = False) -> list[RegistrationRow]:
        return self.registrar.pending_registrations(local_only=local_only)

    def resume(
        self,
        uid: str | None = None,
        *,
        allow_recognizable: bool = False,
        progress: Progress = no_progress,
        local_only: bool = False,
    ) -> list[RegistrationResult]:
        """Finish interrupted registrations (all of them, the CLI's own, or ``uid``)."""
        return self.registrar.resume(
            uid, allow_recognizable=allow_recognizable, progress=progress, local_only=local_only
        )

    def abort(self, uid: str) -> None:
        """Give up an unsubmitted registration: delete its data keys, unpin what it pinned."""
        self.registrar.abort(uid)

    def registration_result(self, uid: str) -> RegistrationResult:
        return self.registrar.registration_result(uid)

    # --- reading (catalog.py) ----------------------------------------------------
    def list_datasets(
        self, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[DatasetSummary], int]:
        return self.catalog.list_datasets(limit=limit, offset=offset)

    def get_dataset(self, dataset_id: int) -> DatasetSummary:
        return self.catalog.get_dataset(dataset_id)

    def dataset_detail(self, dataset_id: int) -> DatasetDetail:
        """A data set with every version, its attestations and its uploader here."""
        return self.catalog.dataset_detail(dataset_id)

    def version_detail(self, dataset_id: int, version: int) -> VersionDetail:
        return self.catalog.version_detail(dataset_id, version)

    def records(self, dataset_id: int, version: int) -> list[ImageRecord]:
        return self.catalog.records(dataset_id, version)

    def record(self, dataset_id: int, version: int, index: int) -> ImageRecord:
        return self.catalog.record(dataset_id, version, index)

    def proof(
        self, dataset_id: int, version: int, index: int, *, check: bool = False
    ) -> MerkleProof:
        """The record's leaf and Merkle proof; ``check``: also ask the contract."""
        return self.catalog.proof(dataset_id, version, index, check=check)

    def peek_proof(self, dataset_id: int, version: int, index: int) -> MerkleProof | None:
        """A proof already built, without I/O (for the API's hot path)."""
        return self.catalog.peek_proof(dataset_id, version, index)

    def manifest(self, dataset_id: int, version: int | None = None) -> Manifest:
        return self.catalog.manifest(dataset_id, version)

    def image_record(self, dataset_id: int, index: int, version: int | None = None) -> dict:
        """One image's public record, Merkle proof and privacy report."""
        return self.catalog.image_record(dataset_id, index, version)

    def check_credentials(
        self, dataset_id: int, version: int, index: int, data: bytes
    ) -> tuple[Credentials, list[str]]:
        """The Content Credentials of a decrypted image and why they are not those of its
        record (empty: signed by the certificate the manifest names, trusted under its CA,
        anchored to this record). See docs/provenance.md."""
        return check_image_credentials(
            data,
            self.catalog.manifest(dataset_id, version),
            index=index,
            dataset_id=dataset_id,
            manifest_at=partial(self.catalog.earlier_manifest, dataset_id, version),
        )

    def expected_credentials(self, dataset_id: int, version: int, index: int) -> dict | None:
        """What the Content Credentials of image ``index`` say, from the public manifest
        alone (None: the version was registered before images were signed)."""
        return expected_credentials(
            self.catalog.manifest(dataset_id, version),
            dataset_id=dataset_id,
            version=version,
            index=index,
            manifest_at=partial(self.catalog.earlier_manifest, dataset_id, version),
        )

    def signing_identity(self) -> dict | None:
        """This institution's C2PA signer as published (no key material); None: unsigned."""
        signer = self.credentials()
        return None if signer is None else signer.identity.public()

    # --- verification (verification.py) -------------------------------------------
    def verify(
        self,
        dataset_id: int,
        version: int | None = None,
        *,
        progress: Progress = no_progress,
        institution: str | None = None,
    ) -> VerificationReport:
        """Check a version against the chain without any key; names every failure.
        ``institution``: the registrant the auditor trusts (None: not checked)."""
        version = self.catalog.resolve_version(dataset_id, version)
        ver = self.chain.get_version(dataset_id, version)
        return verify_version(
            self.chain, self.storage, dataset_id, version, ver, progress, institution
        )

    def attest(self, report: VerificationReport) -> dict:
        """Auditor: pin the verification report and record the verdict on chain."""
        report_cid = self.storage.add(canonical_json(report.to_dict()))
        ref = self.as_role("auditor").attest(
            report.dataset_id, report.version, report.ok, report_cid
        )
        return {"report_cid": report_cid, "passed": report.ok, "tx_hash": ref.tx_hash}

    # --- grants (grants.py) ----------------------------------------------------------
    def grant(
        self,
        dataset_id: int,
        grantee: str,
        *,
        expires_at: datetime | int | None = None,
        ttl_s: int | None = None,
        actor: Actor | None = None,
    ) -> GrantChange:
        """Grant access until ``expires_at`` or for ``ttl_s`` (``actor``: the API's caller,
        checked as the owner; None: this instance's institution)."""
        until = self.grants.expiry(expires_at=expires_at, ttl_s=ttl_s)  # bounds before lookups
        self.catalog.check_dataset(dataset_id)
        return self.grants.grant(dataset_id, grantee, expires_at=until, actor=actor)

    def revoke(self, dataset_id: int, grantee: str, *, actor: Actor | None = None) -> GrantChange:
        self.catalog.check_dataset(dataset_id)
        return self.grants.revoke(dataset_id, grantee, actor=actor)

    def list_grants(self, dataset_id: int, viewer: Actor | None = None) -> list[Grant]:
        self.catalog.check_dataset(dataset_id)
        return self.grants.list(dataset_id, viewer)

    # --- key release (release.py) ------------------------------------------------------
    def release_key(self, request: ReleaseRequest) -> bytes:
        """A grantee's signed request -> the data key sealed to their X25519 key."""
        return self.release.release_key(request)

    def release_key_to(
        self, address: str, dataset_id: int, version: int | None, index: int, recipient: bytes
    ) -> tuple[ImageRecord, bytes]:
        """For an address the caller authenticated: (the image's record, its sealed key)."""
        version = self.catalog.resolve_version(dataset_id, version)
        rec = self.catalog.record(dataset_id, version, index)
        sealed = self.release.release_key_to(address, dataset_id, version, rec.image_id, recipient)
        return rec, sealed

    def fetch_image(
        self, address: str, dataset_id: int, index: int, *, version: int | None = None
    ) -> bytes:
        """Decrypt one image here for an authenticated grantee (the API's content route)."""
        sk, pk = generate_keypair()
        rec = self.catalog.image_record(dataset_id, index, version)
        sealed = self.release.release_key_to(
            address, dataset_id, rec["version"], rec["image_id"], pk
        )
        return open_image(self.storage, rec, sealed, sk)

    # --- jobs (job_handlers.py) ------------------------------------------------------------
    def submit_registration(
        self,
        session: Session,
        *,
        owner: str,
        name: str,
        method: str,
        params: dict,
        items: list[bytes],
        allow_recognizable: bool = False,
        description: str | None = None,
        licence: str | None = None,
        consent: str | None = None,
    ) -> jobs.Job:
        """Spool an upload encrypted and queue its registration (the statements are
        checked first: bad text is refused before anything is spooled)."""
        statements = DatasetStatements.checked(
            description=description, licence=licence, consent=consent
        )
        return self.jobs.submit_registration(
            session, owner=owner, name=name, method=method, params=params, items=items,
            allow_recognizable=allow_recognizable, statements=statements,
        )  # fmt: skip

    def submit_verification(
        self, session: Session, *, owner: str, dataset_id: int, version: int, attest: bool
    ) -> jobs.Job:
        return self.jobs.submit_verification(
            session, owner=owner, dataset_id=dataset_id, version=version, attest=attest
        )

    def submit_reencryption(self, session: Session, *, dataset_id: int, actor: Actor) -> jobs.Job:
        """Queue a re-encrypted new version of a data set (its owner only)."""
        return self.jobs.submit_reencryption(
            session, owner=actor.address, dataset_id=dataset_id, actor=actor
        )

    def abort_job(self, session: Session, job_id: str, *, actor: str, is_admin: bool) -> jobs.Job:
        return self.jobs.abort(session, job_id, actor=actor, is_admin=is_admin)

    # --- key service and audit ---------------------------------------------------------------
    def rotate_keys(self) -> dict:
        version = self.keys.rotate(actor="cli")
        return {"current_version": version, "rewrapped": self.keys.rewrap()}

    def anchor_audit(self) -> dict:
        """Anchor the audit log's head hash on chain (as the key service)."""
        actor = self.accounts["keyservice"].address
        return anchor_audit(self.audit, self.as_role("keyservice"), actor=actor)

    def audit_verdict(self) -> AuditVerdict:
        """The hash chain verified, and compared with the newest on-chain anchor."""
        return audit_verdict(self.audit, self.chain)
