"""One settings object for the whole system, read from ``VEILCHAIN_*`` environment variables.

Nested sections use ``__`` in variable names, e.g. ``VEILCHAIN_CHAIN__RPC_URL``. The few
top-level shortcuts the CLI exposes (``--rpc``, ``--ipfs``, ``--db``, ``--data-dir``) map to
fields here. Nothing reads the environment at import time: call :func:`get_settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from veilchain.errors import ConfigError
from veilchain.secret_policy import (
    jwt_secret_problem,
    master_key_problem,
    passphrase_problem,
    private_key_problem,
)

DEFAULT_DATA_DIR = Path(".veilchain")


class AnonymizerSettings(BaseModel):
    method: str = "pixelate"  # a name in veilchain.anonymizer.methods.METHODS
    epsilon: float = 1.0
    identity_threshold: float = 0.6
    identity_retries: int | None = None  # None: the pipeline's default for the method
    seed: int = 0
    weights_dir: Path | None = None  # None: the weights shipped in the package
    workers: int = 0  # processes anonymizing a registration; 0: one per CPU
    detector: Literal["centerface", "hog"] = "centerface"
    detector_threshold: float | None = None  # None: the detector's default
    # HOG only: upsampling; None (auto) stops at the first level that finds a face
    upsample: int | None = None
    # sweep every output for faces detection missed, and cover them (fail closed)
    second_look: bool = True
    # CenterFace score down to which candidates are covered (recall vs false positives:
    # docs/anonymizer.md, "Face recall"); None: the pipeline's default
    sweep_threshold: float | None = Field(default=None, gt=0.0, lt=1.0)
    # what is anonymized: faces and licence plates (comma list; env
    # VEILCHAIN_ANONYMIZER__IDENTIFIERS=faces,plates); plates on by default for register
    identifiers: str = "faces,plates"
    # the plates' text budget (k-ary randomized response, split over the characters)
    plate_epsilon: float = Field(default=1.0, gt=0.0, le=100.0)

    @field_validator("identifiers")
    @classmethod
    def _known_identifiers(cls, identifiers: str) -> str:
        from veilchain.anonymizer.wiring import parse_identifiers

        return ",".join(parse_identifiers(identifiers))

    # generators only: regenerate just these features, e.g. "eyes,nose" (empty: the whole face)
    features: str = ""

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        from veilchain.anonymizer.methods import validate_method  # the one method registry

        validate_method(method)
        return method

    @field_validator("features")
    @classmethod
    def _known_features(cls, features: str) -> str:
        from veilchain.anonymizer.features import parse_features

        return ",".join(parse_features(features))

    def builder_options(self) -> dict:
        """The ``build_anonymizer`` keywords these settings fix (method, epsilon, seed and the
        installation's secret are per call)."""
        return {
            "weights_dir": self.weights_dir,
            "identity_threshold": self.identity_threshold,
            "identity_retries": self.identity_retries,
            "detector_name": self.detector,
            "detector_threshold": self.detector_threshold,
            "upsample": self.upsample,
            "second_look": self.second_look,
            "sweep_threshold": self.sweep_threshold,
            "identifiers": self.identifiers,
            "plate_epsilon": self.plate_epsilon,
            "features": tuple(f for f in self.features.split(",") if f),
        }


class ChainSettings(BaseModel):
    rpc_url: str | None = None  # None: the embedded py-evm chain in the data directory
    # Hex private key of the signing account; None: an account in the encrypted keystore.
    private_key: str | None = None
    # None: a random passphrase generated in the data directory on first use (not in prod).
    keystore_passphrase: str | None = None
    contract_address: str | None = None  # None: look up the address book, deploy if absent
    confirmations: int = 0
    log_block_range: int = 2_000


class IpfsSettings(BaseModel):
    api_url: str | None = None  # None: the embedded block store; else e.g. /ip4/127.0.0.1/tcp/5001


class KmsSettings(BaseModel):
    # The master key wrapping key is derived from this passphrase (scrypt) unless a raw
    # 32-byte key is given in hex via master_key_hex. None: a random passphrase generated in
    # the data directory on first use (not in prod).
    passphrase: str | None = None
    master_key_hex: str | None = None


class DbSettings(BaseModel):
    url: str | None = None  # None: SQLite file in the data directory


class AuthSettings(BaseModel):
    # None: a random secret generated in the data directory on first use (not in prod).
    jwt_secret: str | None = None
    token_ttl_s: int = 900
    nonce_ttl_s: int = 300
    domain: str = "localhost"
    uri: str = "http://localhost:8000"
    login_rate_per_minute: int = 30
    # Refused key requests (no live grant) one account may make per minute before 429.
    refusal_rate_per_minute: int = 20
    # Comma-separated addresses of reverse proxies whose X-Forwarded-For is believed (rate
    # limits key on the client address). Empty: none, the peer address is the client.
    trusted_proxies: str = ""


class CredentialsSettings(BaseModel):
    """The C2PA signing identity (docs/provenance.md). Outside prod, unset paths mean the
    data directory's development CA and certificate, generated on first use."""

    # the signer's name in the development certificate (an operator's comes from its own)
    institution_name: str | None = None
    cert_path: Path | None = None  # PEM chain, signing certificate first
    key_path: Path | None = None  # PEM ECDSA P-256 private key
    key_passphrase: str | None = None
    pkcs12_path: Path | None = None  # instead of cert_path + key_path
    pkcs12_passphrase: str | None = None
    ca_cert_path: Path | None = None  # the root to publish when the chain does not end in it


class ExecutorSettings(BaseModel):
    """Where registrations anonymize: ``local`` worker processes (the default) or a Ray
    cluster (``ray``; docs/scale.md)."""

    kind: Literal["local", "ray"] = "local"
    # Ray: the cluster's address (host:port of the head's GCS, or ray://host:10001);
    # None: a local Ray instance on 127.0.0.1 with one CPU per core.
    address: str | None = None
    actors: int = Field(default=0, ge=0)  # Ray: anonymizer actors; 0: one per cluster CPU
    batch: int = Field(default=8, ge=1, le=1024)  # Ray: images per actor call
    # either executor: seconds to fetch one http(s):// input (--uri-list) in whole
    fetch_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    # Ray, API: this API's URL as the Ray workers reach it (http(s)://host:port); API
    # uploads are then fetched by the workers through signed links (docs/scale.md)
    upload_url: str | None = Field(default=None, pattern=r"^https?://[^/?#\s]+/?$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VEILCHAIN_", env_nested_delimiter="__", extra="ignore"
    )

    env: Literal["dev", "test", "prod"] = "dev"
    data_dir: Path = DEFAULT_DATA_DIR
    anonymizer: AnonymizerSettings = Field(default_factory=AnonymizerSettings)
    chain: ChainSettings = Field(default_factory=ChainSettings)
    ipfs: IpfsSettings = Field(default_factory=IpfsSettings)
    kms: KmsSettings = Field(default_factory=KmsSettings)
    db: DbSettings = Field(default_factory=DbSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    credentials: CredentialsSettings = Field(default_factory=CredentialsSettings)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)

    @model_validator(mode="after")
    def _no_weak_or_public_secrets_in_prod(self) -> Settings:
        if self.env != "prod":
            return self
        k, c = self.kms, self.chain
        problems = [
            jwt_secret_problem("VEILCHAIN_AUTH__JWT_SECRET", self.auth.jwt_secret),
            master_key_problem("VEILCHAIN_KMS__MASTER_KEY_HEX", k.master_key_hex)
            if k.master_key_hex
            else passphrase_problem("VEILCHAIN_KMS__PASSPHRASE", k.passphrase),
            # Always checked: the keystore holds the role accounts even when a key is given.
            passphrase_problem("VEILCHAIN_CHAIN__KEYSTORE_PASSPHRASE", c.keystore_passphrase),
            private_key_problem("VEILCHAIN_CHAIN__PRIVATE_KEY", c.private_key)
            if c.private_key
            else None,
        ]
        cred = self.credentials
        if not cred.pkcs12_path and not (cred.cert_path and cred.key_path):
            problems.append(
                "prod signs Content Credentials with the operator's certificate: set "
                "VEILCHAIN_CREDENTIALS__CERT_PATH and __KEY_PATH, or __PKCS12_PATH"
            )
        for problem in problems:
            if problem:
                raise ValueError(problem)
        return self

    @property
    def db_url(self) -> str:
        return self.db.url or f"sqlite:///{(self.data_dir / 'veilchain.db').resolve()}"


def get_settings(**overrides) -> Settings:
    """Build settings from the environment, then apply explicit overrides (CLI flags)."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from exc
    except ValueError as exc:
        raise ConfigError(str(exc).splitlines()[0].strip()) from exc


def _one_line(exc: ValidationError) -> str:
    """The first error as one sentence naming the variable (not pydantic's URL footer)."""
    err = exc.errors()[0]
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    loc = [str(p) for p in err.get("loc", ())]
    if not loc or msg.startswith("VEILCHAIN_"):
        return msg
    var = "VEILCHAIN_" + "__".join(loc).upper()
    return f"{var}: {msg}"
