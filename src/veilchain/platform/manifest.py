"""The public manifest of a data set version and the Merkle leaf of each image record.

The manifest is a JSON document pinned to IPFS; its CID and the Merkle root over its records
are stored on chain. docs/manifest.md specifies both so that an auditor can verify a data set
with web3 and a CID library alone. Change nothing here without bumping ``MANIFEST_FORMAT``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from eth_abi import encode
from eth_utils import keccak

from veilchain.errors import InputError
from veilchain.platform.audit import canonical_json

MANIFEST_FORMAT = "veilchain-manifest/1"
LEAF_ENCODING = (
    "keccak256(keccak256(abi.encode(uint256 index, string imageId, string cid, "
    "bytes32 ciphertextSha256, bytes32 anonymizedSha256, bytes32 reportSha256)))"
)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ImageRecord:
    """One image of a data set version, as published in the manifest."""

    index: int
    image_id: str
    cid: str
    ciphertext_sha256: str
    anonymized_sha256: str
    size: int
    width: int
    height: int
    report: dict = field(default_factory=dict)

    @property
    def report_sha256(self) -> str:
        return sha256_hex(canonical_json(self.report))

    def leaf(self) -> bytes:
        """The Merkle leaf: double keccak of the ABI-encoded record (see ``LEAF_ENCODING``)."""
        inner = keccak(
            encode(
                ["uint256", "string", "string", "bytes32", "bytes32", "bytes32"],
                [
                    self.index,
                    self.image_id,
                    self.cid,
                    bytes.fromhex(self.ciphertext_sha256),
                    bytes.fromhex(self.anonymized_sha256),
                    bytes.fromhex(self.report_sha256),
                ],
            )
        )
        return keccak(inner)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["report_sha256"] = self.report_sha256
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ImageRecord:
        try:
            return cls(
                index=int(d["index"]),
                image_id=str(d["image_id"]),
                cid=str(d["cid"]),
                ciphertext_sha256=str(d["ciphertext_sha256"]),
                anonymized_sha256=str(d["anonymized_sha256"]),
                size=int(d["size"]),
                width=int(d["width"]),
                height=int(d["height"]),
                report=dict(d.get("report") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"manifest record is malformed: {exc}") from exc


@dataclass(frozen=True)
class Manifest:
    """A data set version's public description; ``to_bytes`` is what gets pinned."""

    dataset_uid: str
    name: str
    institution: str
    chain_id: int
    contract: str
    method: str
    model_hash: str
    params: dict
    merkle_root: str
    records: list[ImageRecord]
    proofs: list[list[str]]
    previous_manifest_cid: str | None = None
    created_at: str = ""

    def to_dict(self) -> dict:
        return {
            "format": MANIFEST_FORMAT,
            "dataset": {
                "uid": self.dataset_uid,
                "name": self.name,
                "institution": self.institution,
                "chain_id": self.chain_id,
                "contract": self.contract,
                "previous_manifest_cid": self.previous_manifest_cid,
                "created_at": self.created_at,
            },
            "anonymization": {
                "method": self.method,
                "model_hash": self.model_hash,
                "params": self.params,
            },
            "merkle": {
                "algorithm": "sorted-pair keccak256",
                "leaf_encoding": LEAF_ENCODING,
                "root": self.merkle_root,
                "count": len(self.records),
            },
            "records": [
                {**r.to_dict(), "leaf": "0x" + r.leaf().hex(), "proof": p}
                for r, p in zip(self.records, self.proofs, strict=True)
            ],
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            d = json.loads(data)
            if d.get("format") != MANIFEST_FORMAT:
                raise InputError(f"unknown manifest format {d.get('format')!r}")
            ds, an, mk = d["dataset"], d["anonymization"], d["merkle"]
            return cls(
                dataset_uid=ds["uid"],
                name=ds["name"],
                institution=ds["institution"],
                chain_id=int(ds["chain_id"]),
                contract=ds["contract"],
                previous_manifest_cid=ds.get("previous_manifest_cid"),
                created_at=ds.get("created_at", ""),
                method=an["method"],
                model_hash=an["model_hash"],
                params=an["params"],
                merkle_root=mk["root"],
                records=[ImageRecord.from_dict(r) for r in d["records"]],
                proofs=[list(r.get("proof", [])) for r in d["records"]],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"manifest is not valid JSON of {MANIFEST_FORMAT}: {exc}") from exc
