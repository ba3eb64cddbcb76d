"""The public manifest of a data set version and the Merkle leaf of each image record.

The manifest is a JSON document pinned to IPFS; its CID and the Merkle root over its records
are stored on chain. docs/manifest.md specifies both so that an auditor can verify a data set
with an Ethereum client, a CID library and an RFC 8785 (JCS) library alone, in any language.

Format 2 (the default) is written in RFC 8785 canonical form and holds no JSON number other
than an integer of at most 2^53 - 1 in magnitude: every other number (a float, a larger
integer) is published as a string (``publishable``). Format 1 (Python ``json.dumps`` with
sorted keys) stays readable and verifiable. Change nothing here without a new format.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

import rfc8785
from eth_abi import encode
from eth_utils import keccak

from veilchain.errors import InputError
from veilchain.platform.audit_entries import canonical_json
from veilchain.platform.statements import FIELDS as STATEMENT_FIELDS
from veilchain.platform.statements import DatasetStatements

FORMAT_PREFIX = "veilchain-manifest/"
MANIFEST_FORMAT_VERSION = 2
MANIFEST_FORMAT = f"{FORMAT_PREFIX}{MANIFEST_FORMAT_VERSION}"
SUPPORTED_FORMATS = (1, 2)
MAX_SAFE_INTEGER = 2**53 - 1  # JavaScript's Number.MAX_SAFE_INTEGER
LEAF_ENCODING = (
    "keccak256(keccak256(abi.encode(uint256 index, string imageId, string cid, "
    "bytes32 ciphertextSha256, bytes32 anonymizedSha256, bytes32 reportSha256)))"
)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def jcs(obj: Any) -> bytes:
    """RFC 8785 canonical JSON (UTF-8 bytes) of ``obj``; one-line InputError when impossible."""
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InputError(f"cannot write RFC 8785 JSON: {exc}") from exc


def publishable(value: Any) -> Any:
    """``value`` with every number that is not a safe integer written as a string.

    Floats become Python's shortest round-trip text (``repr``: ``179.0``, ``0.7019``,
    ``1e-05``, ``nan``); integers beyond +-(2^53 - 1) their decimal digits. Verifiers never
    parse these strings, they only hash them, so any language reproduces the bytes.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) <= MAX_SAFE_INTEGER else str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): publishable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [publishable(v) for v in value]
    raise InputError(f"cannot publish a {type(value).__name__} in a manifest")


def unsafe_number(value: Any, path: str = "$") -> str | None:
    """The JSON path of the first number that is not a safe integer (``$.a[0].b``), or None."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return None
    if isinstance(value, int):
        return None if abs(value) <= MAX_SAFE_INTEGER else path
    if isinstance(value, float):
        return path
    if isinstance(value, dict):
        items = [(f"{path}.{k}", v) for k, v in value.items()]
    elif isinstance(value, list):
        items = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
    else:
        return path
    for sub, v in items:
        found = unsafe_number(v, sub)
        if found:
            return found
    return None


def _as_javascript_reads_it(value: Any) -> Any:
    """Integers beyond 2^53 - 1 as the nearest double, as JSON.parse gives them; so the
    canonical-form check (C4) refuses exactly what a JavaScript verifier refuses."""
    if isinstance(value, bool) or not isinstance(value, (int, dict, list)):
        return value
    if isinstance(value, int):
        if abs(value) <= MAX_SAFE_INTEGER:
            return value
        try:
            return float(value)
        except OverflowError as exc:
            raise InputError("manifest bytes are not in RFC 8785 canonical form") from exc
    if isinstance(value, dict):
        return {k: _as_javascript_reads_it(v) for k, v in value.items()}
    return [_as_javascript_reads_it(v) for v in value]


def epsilon_milli_of(params: dict) -> int:
    """The on-chain ``epsilonMilli``: round(epsilon x 1000), 0 when there is no epsilon."""
    return int(round(float(params.get("epsilon") or 0) * 1000))


def chain_params_text(params: dict, format_version: int = MANIFEST_FORMAT_VERSION) -> str:
    """The ``params`` string recorded on chain: format 2 is the JCS text of the manifest's
    ``anonymization.params``; format 1 was Python's sorted-keys ``json.dumps``."""
    if format_version >= 2:
        return jcs(publishable(params)).decode("utf-8")
    return canonical_json(params).decode("utf-8")


def image_id_for(index: int) -> str:
    """A record's public id: its position, zero-padded to at least 6 digits."""
    return f"{index:06d}"


@dataclass(frozen=True)
class ImageRecord:
    """One image of a data set version, as published in the manifest.

    ``ciphertext_sha256`` and ``anonymized_sha256`` are 64 lower-case hex characters without
    ``0x``. In format 2 the report is stored as ``publishable(report)``.
    """

    index: int
    image_id: str
    cid: str
    ciphertext_sha256: str
    anonymized_sha256: str
    size: int
    width: int
    height: int
    report: dict = field(default_factory=dict)
    format_version: int = MANIFEST_FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.format_version >= 2:
            object.__setattr__(self, "report", publishable(self.report))

    @property
    def report_bytes(self) -> bytes:
        """The bytes whose sha256 is ``report_sha256``: JCS (format 2) or json.dumps (1)."""
        if self.format_version >= 2:
            return jcs(self.report)
        return canonical_json(self.report)

    @property
    def report_sha256(self) -> str:
        return sha256_hex(self.report_bytes)

    def leaf(self) -> bytes:
        """The Merkle leaf: double keccak of the ABI-encoded record (see ``LEAF_ENCODING``)."""
        try:
            fields = [bytes.fromhex(self.ciphertext_sha256), bytes.fromhex(self.anonymized_sha256)]
        except ValueError as exc:
            raise InputError(f"record {self.index}: a sha256 field is not hex") from exc
        inner = keccak(
            encode(
                ["uint256", "string", "string", "bytes32", "bytes32", "bytes32"],
                [self.index, self.image_id, self.cid, *fields, bytes.fromhex(self.report_sha256)],
            )
        )
        return keccak(inner)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("format_version")
        d["report_sha256"] = self.report_sha256
        return d

    @classmethod
    def from_dict(cls, d: dict, format_version: int = MANIFEST_FORMAT_VERSION) -> ImageRecord:
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
                format_version=format_version,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"manifest record is malformed: {exc}") from exc


_SHA = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"0x[0-9a-f]{64}")
_STR, _INT, _OBJ, _NULLSTR = "a string", "an integer", "an object", "a string or null"
_SHAPE_V2 = {
    "dataset": {"uid": _STR, "name": _STR, "institution": _STR, "chain_id": "decimal digits",
                "contract": _STR, "previous_manifest_cid": _NULLSTR, "created_at": _STR},
    "anonymization": {"method": _STR, "model_hash": _STR, "params": _OBJ, "epsilon_milli": _INT},
    "merkle": {"root": _STR, "count": _INT},
}  # fmt: skip
_RECORD_V2 = {"index": _INT, "image_id": _STR, "cid": _STR, "ciphertext_sha256": "64 hex",
              "anonymized_sha256": "64 hex", "size": _INT, "width": _INT, "height": _INT,
              "report": _OBJ, "proof": "a list of 0x + 64 hex"}  # fmt: skip


def _fits(value: Any, kind: str) -> bool:
    if kind == _STR:
        return isinstance(value, str)
    if kind == _NULLSTR:
        return value is None or isinstance(value, str)
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == _OBJ:
        return isinstance(value, dict)
    if kind == "decimal digits":
        return isinstance(value, str) and value.isascii() and value.isdigit()
    if kind == "64 hex":
        return isinstance(value, str) and _SHA.fullmatch(value) is not None
    return isinstance(value, list) and all(
        isinstance(p, str) and _HEX32.fullmatch(p) for p in value
    )


_CREDENTIALS = {"institution": _STR, "ca_certificate": _STR, "ca_sha256": "64 hex",
                "signer_serial": _STR, "signer_sha256": "64 hex"}  # fmt: skip


def _statements_problem(ds: dict) -> str | None:
    """The dataset statements (description, licence, consent) come all together, each a
    string or null, or not at all (manifests written before they were published)."""
    if not any(name in ds for name in STATEMENT_FIELDS):
        return None
    for name in STATEMENT_FIELDS:
        if name not in ds or not _fits(ds[name], _NULLSTR):
            return f"dataset.{name} must be {_NULLSTR}"
    return None


def shape_problem(d: dict) -> str | None:
    """The first field of a format-2 manifest whose JSON type is wrong (docs/manifest.md
    section 3), as ``"records[2].size must be an integer"``; None when all fit."""
    if "credentials" in d:  # optional: data sets registered before Content Credentials lack it
        cred = d["credentials"]
        if not isinstance(cred, dict):
            return "credentials must be an object"
        for name, kind in _CREDENTIALS.items():
            if not _fits(cred.get(name), kind):
                return f"credentials.{name} must be {kind}"
    for section, fields in _SHAPE_V2.items():
        part = d.get(section)
        if not isinstance(part, dict):
            return f"{section} must be an object"
        for name, kind in fields.items():
            if not _fits(part.get(name), kind):
                return f"{section}.{name} must be {kind}"
    problem = _statements_problem(d["dataset"])
    if problem:
        return problem
    if not isinstance(d.get("records"), list):
        return "records must be a list"
    for i, rec in enumerate(d["records"]):
        if not isinstance(rec, dict):
            return f"records[{i}] must be an object"
        for name, kind in _RECORD_V2.items():
            if not _fits(rec.get(name), kind):
                return f"records[{i}].{name} must be {kind}"
    return None


def format_version_of(d: dict) -> int:
    """The format number of a parsed manifest; InputError for an unknown one."""
    fmt = d.get("format") if isinstance(d, dict) else None
    if isinstance(fmt, str) and fmt.startswith(FORMAT_PREFIX):
        tail = fmt[len(FORMAT_PREFIX) :]
        if tail.isdigit() and int(tail) in SUPPORTED_FORMATS:
            return int(tail)
    raise InputError(f"unknown manifest format {fmt!r}; this verifier reads formats 1 and 2")


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
    format_version: int = MANIFEST_FORMAT_VERSION
    # the Content Credentials signer (docs/provenance.md): the CA certificate verifiers trust
    # and the signing certificate; absent from manifests written before images were signed
    credentials: dict | None = None
    # description, licence, consent statement (each may be None: not given); None: the
    # manifest has none of the keys (written before they were published)
    statements: DatasetStatements | None = None

    @property
    def epsilon_milli(self) -> int:
        return epsilon_milli_of(self.params)

    def to_dict(self) -> dict:
        v2 = self.format_version >= 2
        anonymization = {
            "method": self.method,
            "model_hash": self.model_hash,
            "params": publishable(self.params) if v2 else self.params,
        }
        if v2:
            anonymization["epsilon_milli"] = self.epsilon_milli
        credentials = {} if self.credentials is None else {"credentials": self.credentials}
        statements = {} if self.statements is None else self.statements.to_dict()
        return {
            "format": f"{FORMAT_PREFIX}{self.format_version}",
            **credentials,
            "dataset": {
                "uid": self.dataset_uid,
                "name": self.name,
                "institution": self.institution,
                "chain_id": str(self.chain_id) if v2 else self.chain_id,
                "contract": self.contract,
                "previous_manifest_cid": self.previous_manifest_cid,
                "created_at": self.created_at,
                **statements,
            },
            "anonymization": anonymization,
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

    def write_streaming(
        self, fh: BinaryIO, count: int, records: Iterable[tuple[ImageRecord, list[str]]]
    ) -> None:
        """Write ``to_bytes()`` of this manifest with ``count`` records, taken one at a
        time from ``records`` ((record, proof) pairs) instead of ``self.records``: the same
        bytes, without holding every record (format 2 only). RFC 8785 sorts keys, and
        ``records`` sorts last, so the document is its head, then the records one by one."""
        if self.format_version < 2:
            raise InputError("only format-2 manifests are written streaming")
        head = Manifest(**{**self.__dict__, "records": [], "proofs": []}).to_dict()
        head["merkle"]["count"] = count
        head.pop("records")
        text = jcs(head)
        assert text.endswith(b"}")
        fh.write(text[:-1] + b',"records":[')
        written = 0
        for record, proof in records:
            if written:
                fh.write(b",")
            fh.write(jcs({**record.to_dict(), "leaf": "0x" + record.leaf().hex(), "proof": proof}))
            written += 1
        if written != count:
            raise InputError(f"manifest announced {count} records but got {written}")
        fh.write(b"]}")

    def to_bytes(self) -> bytes:
        if self.format_version >= 2:
            return jcs(self.to_dict())
        return canonical_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse a pinned manifest of any supported format (format 2: canonical form checked)."""
        try:
            d = json.loads(data)
        except ValueError as exc:
            raise InputError(f"manifest is not JSON: {exc}") from exc
        fmt = format_version_of(d)
        if fmt >= 2:
            try:  # a lone surrogate, for one, has no canonical form
                canonical = jcs(_as_javascript_reads_it(d))
            except InputError:
                canonical = None
            if canonical != data:
                raise InputError("manifest bytes are not in RFC 8785 canonical form")
            where = unsafe_number(d)
            if where:
                raise InputError(f"manifest holds a number that is not a safe integer at {where}")
            problem = shape_problem(d)
            if problem:
                raise InputError(f"manifest is not valid {MANIFEST_FORMAT} JSON: {problem}")
        try:
            ds, an, mk = d["dataset"], d["anonymization"], d["merkle"]
            records = [ImageRecord.from_dict(r, fmt) for r in d["records"]]
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
                records=records,
                proofs=[list(r.get("proof", [])) for r in d["records"]],
                format_version=fmt,
                credentials=d.get("credentials"),
                statements=_statements_of(ds),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"manifest is not valid {FORMAT_PREFIX}{fmt} JSON: {exc}") from exc


def _statements_of(ds: dict) -> DatasetStatements | None:
    """The statements as published (not re-checked: a verifier checks types only)."""
    if not any(name in ds for name in STATEMENT_FIELDS):
        return None
    return DatasetStatements(**{name: ds.get(name) for name in STATEMENT_FIELDS})
