"""The read side: data sets, versions, manifests, image records and Merkle proofs.

Everything here is public and keyless. A registered version never changes on chain and its
manifest is content-addressed, so each (data set, version) is read once and kept in one
locked LRU cache shared by every thread that serves requests.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from veilchain.chain.client import Attestation, ChainClient, DatasetVersion
from veilchain.errors import (
    DatasetNotFoundError,
    ImageNotFoundError,
    InputError,
    VeilchainError,
)
from veilchain.platform.manifest import ImageRecord, Manifest
from veilchain.platform.statements import DatasetStatements
from veilchain.platform.storage import IpfsStorage

CACHE_VERSIONS = 256


@dataclass(frozen=True)
class DatasetSummary:
    dataset_id: int
    owner: str
    versions: int
    name: str | None
    latest: dict
    # the newest version's description, licence and consent statement (all None when its
    # manifest has none or cannot be read)
    statements: DatasetStatements = field(default_factory=DatasetStatements)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class VersionDetail:
    version: DatasetVersion
    attestations: list[Attestation]


@dataclass(frozen=True)
class DatasetDetail:
    summary: DatasetSummary
    uploader: str | None  # the account that uploaded it through this instance's API
    versions: list[VersionDetail]


@dataclass(frozen=True)
class MerkleProof:
    dataset_id: int
    version: int
    index: int
    leaf: str
    proof: list[str]
    merkle_root: str
    verified_on_chain: bool | None = None


@dataclass
class _Version:
    chain: DatasetVersion
    manifest: Manifest
    proofs: dict[int, MerkleProof] = field(default_factory=dict)


class Catalog:
    def __init__(
        self,
        *,
        chain: ChainClient,
        storage: IpfsStorage,
        session_factory: sessionmaker[Session],
        size: int = CACHE_VERSIONS,
    ) -> None:
        self.chain = chain
        self.storage = storage
        self.session_factory = session_factory
        self._versions: OrderedDict[tuple[int, int], _Version] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size
        self._known_count = 0  # data sets are never deleted: ids up to this one exist

    # --- data sets -----------------------------------------------------------------
    def check_dataset(self, dataset_id: int) -> None:
        if 1 <= dataset_id <= self._known_count:
            return
        self._known_count = self.chain.dataset_count()
        if not 1 <= dataset_id <= self._known_count:
            raise DatasetNotFoundError(
                f"no data set {dataset_id} on the contract; list them with GET /datasets"
                " or `veilchain list`"
            )

    def list_datasets(
        self, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[DatasetSummary], int]:
        count = self._known_count = self.chain.dataset_count()
        ids = range(1 + offset, min(count, offset + limit) + 1)
        return [self.get_dataset(i) for i in ids], count

    def get_dataset(self, dataset_id: int) -> DatasetSummary:
        self.check_dataset(dataset_id)
        info = self.chain.get_dataset(dataset_id)
        statements = DatasetStatements()
        try:
            cached = self._cached(dataset_id, info.version_count)
            ver, name = cached.chain, cached.manifest.name
            statements = cached.manifest.statements or statements
        except VeilchainError:  # the manifest is unreachable: the chain still answers
            ver, name = self.chain.get_version(dataset_id, info.version_count), None
        return DatasetSummary(
            dataset_id, info.owner, info.version_count, name, _latest(ver), statements
        )

    def dataset_detail(self, dataset_id: int) -> DatasetDetail:
        summary = self.get_dataset(dataset_id)
        atts = self._attestations(dataset_id)
        versions = [
            VersionDetail(self._cached(dataset_id, v).chain, atts.get(v, []))
            for v in range(1, summary.versions + 1)
        ]
        return DatasetDetail(summary, self.uploader(dataset_id), versions)

    def version_detail(self, dataset_id: int, version: int) -> VersionDetail:
        self.check_dataset(dataset_id)
        ver = self._cached(dataset_id, version).chain
        return VersionDetail(ver, self._attestations(dataset_id).get(version, []))

    def uploader(self, dataset_id: int) -> str | None:
        """The account whose API upload created this data set here, if one did."""
        from veilchain.platform.jobs import Job

        stmt = (
            select(Job.owner, Job.result)
            .where(Job.kind == "register", Job.status == "succeeded")
            .order_by(Job.created_at)
        )
        with self.session_factory() as s:
            for owner, result in s.execute(stmt):
                if result and result.get("dataset_id") == dataset_id:
                    return owner
        return None

    def _attestations(self, dataset_id: int) -> dict[int, list[Attestation]]:
        out: dict[int, list[Attestation]] = {}
        for a in self.chain.list_attestations(dataset_id):
            out.setdefault(a.version, []).append(a)
        return out

    # --- versions and records ------------------------------------------------------
    def resolve_version(self, dataset_id: int, version: int | None) -> int:
        """``version``, or the newest one when None."""
        self.check_dataset(dataset_id)
        if version is None:
            return self.chain.get_dataset(dataset_id).version_count
        return version

    def manifest(self, dataset_id: int, version: int | None = None) -> Manifest:
        return self._cached(dataset_id, self.resolve_version(dataset_id, version)).manifest

    def earlier_manifest(self, dataset_id: int, version: int, cid: str) -> Manifest:
        """The manifest of an earlier version of the data set whose manifest CID is ``cid``
        (what a version's ``previous_manifest_cid`` may name); InputError if none is."""
        for v in range(version - 1, 0, -1):
            cached = self._cached(dataset_id, v)
            if cached.chain.manifest_cid == cid:
                return cached.manifest
        raise InputError(f"{cid} is no earlier version's manifest of data set {dataset_id}")

    def records(self, dataset_id: int, version: int) -> list[ImageRecord]:
        self.check_dataset(dataset_id)
        return self._cached(dataset_id, version).manifest.records

    def record(self, dataset_id: int, version: int, index: int) -> ImageRecord:
        self.check_dataset(dataset_id)
        records = self._cached(dataset_id, version).manifest.records
        if not 0 <= index < len(records):
            raise ImageNotFoundError(
                f"data set {dataset_id} v{version} has images 0..{len(records) - 1}, not {index}"
            )
        return records[index]

    def image_record(self, dataset_id: int, index: int, version: int | None = None) -> dict:
        """One image's public record with its Merkle proof and the data set's uid."""
        version = self.resolve_version(dataset_id, version)
        rec = self.record(dataset_id, version, index)
        cached = self._cached(dataset_id, version)
        return {
            **rec.to_dict(),
            "dataset_id": dataset_id,
            "dataset_uid": cached.manifest.dataset_uid,
            "version": version,
            "leaf": "0x" + rec.leaf().hex(),
            "proof": cached.manifest.proofs[index],
            "merkle_root": "0x" + bytes(cached.chain.merkle_root).hex(),
        }

    def proof(
        self, dataset_id: int, version: int, index: int, *, check: bool = False
    ) -> MerkleProof:
        """The record's leaf and proof; ``check`` also asks the contract (verifyRecord)."""
        rec = self.record(dataset_id, version, index)
        cached = self._cached(dataset_id, version)
        out = cached.proofs.get(index)
        if out is None:
            out = cached.proofs[index] = MerkleProof(
                dataset_id=dataset_id,
                version=version,
                index=index,
                leaf="0x" + rec.leaf().hex(),
                proof=cached.manifest.proofs[index],
                merkle_root="0x" + bytes(cached.chain.merkle_root).hex(),
            )
        if not check:
            return out
        path = [bytes.fromhex(p[2:]) for p in out.proof]
        verified = self.chain.verify_record(dataset_id, version, bytes.fromhex(out.leaf[2:]), path)
        return MerkleProof(**{**asdict(out), "verified_on_chain": verified})

    def peek_proof(self, dataset_id: int, version: int, index: int) -> MerkleProof | None:
        """A proof already built, without any I/O (None: call :meth:`proof`)."""
        if not 1 <= dataset_id <= self._known_count:
            return None
        with self._lock:
            cached = self._versions.get((dataset_id, version))
        return None if cached is None else cached.proofs.get(index)

    def _cached(self, dataset_id: int, version: int) -> _Version:
        key = (dataset_id, version)
        with self._lock:
            hit = self._versions.get(key)
            if hit is not None:
                self._versions.move_to_end(key)
                return hit
        ver = self.chain.get_version(dataset_id, version)  # UnknownVersion -> 404 / exit 3
        entry = _Version(ver, Manifest.from_bytes(self.storage.cat(ver.manifest_cid)))
        with self._lock:
            entry = self._versions.setdefault(key, entry)
            while len(self._versions) > self._size:
                self._versions.popitem(last=False)
        return entry


def _latest(ver: DatasetVersion) -> dict:
    return {
        "version": ver.version,
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
