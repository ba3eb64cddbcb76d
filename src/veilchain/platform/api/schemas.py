"""Request and response schemas, one family per entity (``*Create``, ``*Public``, ``*sPublic``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from veilchain.chain.client import Attestation, Grant
from veilchain.platform import catalog
from veilchain.platform.catalog import DatasetDetail, VersionDetail

ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"


def _utc(dt: datetime) -> datetime:
    """SQLite returns naive datetimes; every stored time is UTC."""
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
EXAMPLE_ADDRESS = "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"
EXAMPLE_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


# --- auth -------------------------------------------------------------------
class NoncePublic(BaseModel):
    nonce: str = Field(examples=["3f9c1a7be2d04c55a1f0e6b2c4d8a913"])
    domain: str = Field(examples=["localhost"])
    uri: str = Field(examples=["http://localhost:8000"])
    chain_id: int = Field(examples=[1337])
    expires_at: UtcDatetime


class LoginIn(BaseModel):
    message: str = Field(
        max_length=4000,
        description="An EIP-4361 message carrying the nonce, domain, uri and chain id.",
        examples=[
            "localhost wants you to sign in with your Ethereum account:\n"
            f"{EXAMPLE_ADDRESS}\n\nSign in to Veilchain\n\nURI: http://localhost:8000\n"
            "Version: 1\nChain ID: 1337\nNonce: 3f9c1a7be2d04c55a1f0e6b2c4d8a913\n"
            "Issued At: 2026-11-21T22:00:00Z"
        ],
    )
    signature: str = Field(max_length=200, examples=["0x" + "ab" * 65])


class TokenPublic(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(examples=[900])
    address: str = Field(examples=[EXAMPLE_ADDRESS])
    roles: list[str] = Field(examples=[["auditor"]])


class MePublic(BaseModel):
    address: str = Field(examples=[EXAMPLE_ADDRESS])
    roles: list[str] = Field(examples=[["institution"]])
    via: Literal["jwt", "api_key"]


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["ingest-server-1"])


class ApiKeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["9c1a7be2d04c55a1"])
    name: str
    address: str
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None = None


class ApiKeyCreated(ApiKeyPublic):
    api_key: str = Field(description="Shown once; send it as X-API-Key. Only a hash is stored.")


class ApiKeysPublic(BaseModel):
    data: list[ApiKeyPublic]
    count: int


# --- jobs -------------------------------------------------------------------
class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["5b0f3c1e9a7d4e2f8c6b1a0d3e5f7a9b"])
    kind: str = Field(examples=["register"])
    owner: str = Field(examples=[EXAMPLE_ADDRESS])
    status: Literal["queued", "running", "succeeded", "failed"]
    stage: str = Field(examples=["encrypting"])
    progress_done: int
    progress_total: int
    result: dict[str, Any] | None = None
    error: str | None = Field(default=None, examples=[None])
    attempts: int
    created_at: UtcDatetime
    updated_at: UtcDatetime
    finished_at: UtcDatetime | None = None


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int


# --- data sets and versions -------------------------------------------------
class AttestationPublic(BaseModel):
    auditor: str = Field(examples=[EXAMPLE_ADDRESS])
    passed: bool
    report_cid: str = Field(
        examples=["bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"]
    )
    block_number: int
    tx_hash: str

    @classmethod
    def of(cls, a: Attestation) -> AttestationPublic:
        return cls(auditor=a.auditor, passed=a.passed, report_cid=a.report_cid,
                   block_number=a.block_number, tx_hash=a.tx_hash)  # fmt: skip


class VersionPublic(BaseModel):
    dataset_id: int = Field(examples=[1])
    version: int = Field(examples=[1])
    merkle_root: str = Field(examples=["0x" + "3a" * 32])
    record_count: int = Field(examples=[100])
    manifest_cid: str = Field(
        examples=["bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"]
    )
    model_hash: str = Field(examples=["0x" + "00" * 32])
    method: str = Field(examples=["pixelate"])
    params: str = Field(examples=['{"block":12}'])
    epsilon: float | None = Field(default=None, examples=[None])
    registrant: str = Field(examples=[EXAMPLE_ADDRESS])
    registered_at: int = Field(description="Block timestamp (Unix seconds).")
    block_number: int
    tx_hash: str
    attestations: list[AttestationPublic] = []

    @classmethod
    def of(cls, detail: VersionDetail) -> VersionPublic:
        v = detail.version
        return cls(
            dataset_id=v.dataset_id,
            version=v.version,
            merkle_root="0x" + bytes(v.merkle_root).hex(),
            record_count=v.record_count,
            manifest_cid=v.manifest_cid,
            model_hash="0x" + bytes(v.model_hash).hex(),
            method=v.method,
            params=v.params,
            epsilon=v.epsilon,
            registrant=v.registrant,
            registered_at=v.registered_at,
            block_number=v.block_number,
            tx_hash=v.tx_hash,
            attestations=[AttestationPublic.of(a) for a in detail.attestations],
        )


class DatasetSummary(BaseModel):
    id: int = Field(examples=[1])
    name: str = Field(examples=["faces-2026-11"])
    owner: str = Field(examples=[EXAMPLE_ADDRESS])
    version_count: int = Field(examples=[1])
    record_count: int = Field(description="Images in the newest version.", examples=[100])
    method: str = Field(examples=["pixelate"])

    @classmethod
    def of(cls, d: catalog.DatasetSummary) -> DatasetSummary:
        return cls(
            id=d.dataset_id,
            name=d.name or f"dataset {d.dataset_id}",
            owner=d.owner,
            version_count=d.versions,
            record_count=d.latest.get("record_count", 0),
            method=d.latest.get("method", ""),
        )


class DatasetsPublic(BaseModel):
    data: list[DatasetSummary]
    count: int


class DatasetPublic(DatasetSummary):
    uploader: str | None = Field(
        default=None, description="The institution that uploaded it through this API, if any."
    )
    description: str | None = Field(
        default=None,
        description="Given at registration, from the newest version's manifest; null: not given.",
        examples=["Portraits of consenting staff, anonymized for a face detection benchmark."],
    )
    licence: str | None = Field(default=None, examples=["CC-BY-4.0"])
    consent: str | None = Field(
        default=None,
        description="The consent statement given at registration; null: not given.",
        examples=["Every person shown gave written consent to publication on 2026-11-02."],
    )
    versions: list[VersionPublic]

    @classmethod
    def of_detail(cls, d: DatasetDetail) -> DatasetPublic:
        return cls(
            **DatasetSummary.of(d.summary).model_dump(),
            **d.summary.statements.to_dict(),
            uploader=d.uploader,
            versions=[VersionPublic.of(v) for v in d.versions],
        )


# --- images -------------------------------------------------------------------
class CredentialsPublic(BaseModel):
    """What the image's Content Credentials (C2PA) carry, from the public manifest; the
    decrypted image holds the same, signed (docs/provenance.md)."""

    summary: str = Field(
        examples=["anonymized with ciagan, ε –, by Example University, anchored in data set 3 v1"]
    )
    signer: str = Field(examples=["Example University"])
    signer_serial: str = Field(examples=["2e050504507a7a12ce617213a4d62fdba1b02b35"])
    ca_sha256: str = Field(examples=["ab" * 32])
    digital_source_type: str = Field(
        examples=[
            "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
        ]
    )
    method: str = Field(examples=["ciagan"])
    epsilon: str | None = Field(default=None, examples=[None, "1.0"])
    model_hash: str = Field(examples=["0x" + "cd" * 32])
    anchor: dict[str, Any] = Field(default_factory=dict)


class ImagePublic(BaseModel):
    index: int = Field(examples=[0])
    image_id: str = Field(examples=["img-0000"])
    cid: str = Field(examples=[EXAMPLE_CID])
    ciphertext_sha256: str = Field(examples=["ab" * 32])
    anonymized_sha256: str = Field(examples=["cd" * 32])
    size: int = Field(examples=[52344])
    width: int = Field(examples=[128])
    height: int = Field(examples=[128])
    report: dict[str, Any] = Field(default_factory=dict)
    credentials: CredentialsPublic | None = Field(
        default=None, description="None: registered before images carried Content Credentials."
    )


class ImagesPublic(BaseModel):
    data: list[ImagePublic]
    count: int


class ProofPublic(BaseModel):
    dataset_id: int
    version: int
    index: int
    leaf: str = Field(examples=["0x" + "5c" * 32])
    proof: list[str] = Field(examples=[["0x" + "11" * 32, "0x" + "22" * 32]])
    merkle_root: str = Field(examples=["0x" + "3a" * 32])
    verified_on_chain: bool | None = Field(
        default=None, description="verifyRecord on the contract; only with ?check=true."
    )


# --- verification -------------------------------------------------------------
class VerificationCreate(BaseModel):
    attest: bool = Field(
        default=True, description="Pin the report and record the verdict on chain (attest)."
    )


class ImageVerdict(BaseModel):
    index: int
    image_id: str
    ok: bool
    problems: list[str] = Field(default_factory=list, examples=[["ciphertext hash mismatch"]])


class VerificationReport(BaseModel):
    dataset_id: int
    version: int
    passed: bool
    root_matches: bool = True
    problems: list[str] = Field(default_factory=list)
    images: list[ImageVerdict]
    report_cid: str | None = None
    attest_tx: str | None = None


# --- grants -------------------------------------------------------------------
class GrantCreate(BaseModel):
    grantee: str = Field(pattern=ADDRESS_PATTERN, examples=[EXAMPLE_ADDRESS])
    expires_at: datetime | None = Field(
        default=None, description="When the grant ends; default: ttl_s from now."
    )
    ttl_s: int = Field(default=30 * 24 * 3600, ge=60, le=10 * 365 * 24 * 3600)


class GrantPublic(BaseModel):
    dataset_id: int
    grantee: str = Field(examples=[EXAMPLE_ADDRESS])
    expires_at: datetime
    granted_at: datetime | None = None
    state: Literal["live", "expired", "revoked"]
    tx_hash: str | None = None

    @classmethod
    def of(cls, g: Grant, tx_hash: str | None = None) -> GrantPublic:
        return cls(
            dataset_id=g.dataset_id,
            grantee=g.grantee,
            expires_at=datetime.fromtimestamp(g.expires_at, UTC),
            granted_at=datetime.fromtimestamp(g.granted_at, UTC) if g.granted_at else None,
            state="revoked" if g.revoked else ("live" if g.active else "expired"),
            tx_hash=tx_hash,
        )


class GrantsPublic(BaseModel):
    data: list[GrantPublic]
    count: int


# --- key release -------------------------------------------------------------
class KeyRequest(BaseModel):
    public_key: str = Field(
        pattern=r"^[A-Za-z0-9+/]{43}=$",
        description="The grantee's X25519 public key, 32 bytes in standard base64.",
        examples=["jY2N4o3bOv4Vb2b5m0dJk8nGf3YsF1mQb6H3a9XkG0c="],
    )


class SealedKeyPublic(BaseModel):
    dataset_id: int
    version: int
    index: int
    image_id: str
    cid: str
    scheme: str = Field(examples=["x25519-xsalsa20-poly1305 (libsodium sealed box)"])
    sealed_key: str = Field(description="Base64 sealed box; open with the X25519 private key.")


# --- audit ------------------------------------------------------------------------
class AuditEntryPublic(BaseModel):
    seq: int
    ts: str
    event: str = Field(examples=["key.release"])
    actor: str
    subject: str
    details: dict[str, Any] = Field(default_factory=dict)
    entry_hash: str


class AuditEntriesPublic(BaseModel):
    data: list[AuditEntryPublic]
    count: int


class AuditVerificationPublic(BaseModel):
    ok: bool
    entries: int
    head: str | None = None
    broken_at: int | None = None
    reason: str | None = None
    anchored: bool | None = Field(
        default=None, description="The newest on-chain anchor matches this log."
    )
    anchor_count: int | None = Field(
        default=None, description="The entry the newest on-chain anchor commits to."
    )


class AuditAnchorPublic(BaseModel):
    root: str = Field(examples=["0x" + "9f" * 32])
    count: int
    tx_hash: str | None = None
    block_number: int | None = None
    anchored_at: int | None = None
