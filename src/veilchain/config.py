"""One settings object for the whole system, read from ``VEILCHAIN_*`` environment variables.

Nested sections use ``__`` in variable names, e.g. ``VEILCHAIN_CHAIN__RPC_URL``. The few
top-level shortcuts the CLI exposes (``--rpc``, ``--ipfs``, ``--db``, ``--data-dir``) map to
fields here. Nothing reads the environment at import time: call :func:`get_settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from veilchain.errors import ConfigError

DEFAULT_DATA_DIR = Path(".veilchain")
_PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "dev", "secret", "password"}


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

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        from veilchain.anonymizer.methods import validate_method  # the one method registry

        validate_method(method)
        return method

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
        }


class ChainSettings(BaseModel):
    rpc_url: str | None = None  # None: the embedded py-evm chain in the data directory
    # Hex private key of the signing account; None: an account in the encrypted keystore.
    private_key: str | None = None
    keystore_passphrase: str = "veilchain-dev"
    contract_address: str | None = None  # None: look up the address book, deploy if absent
    confirmations: int = 0
    log_block_range: int = 2_000


class IpfsSettings(BaseModel):
    api_url: str | None = None  # None: the embedded block store; else e.g. /ip4/127.0.0.1/tcp/5001


class KmsSettings(BaseModel):
    # The master key wrapping key is derived from this passphrase (scrypt) unless a raw
    # 32-byte key is given in hex via master_key_hex.
    passphrase: str = "veilchain-dev"
    master_key_hex: str | None = None


class DbSettings(BaseModel):
    url: str | None = None  # None: SQLite file in the data directory


class AuthSettings(BaseModel):
    jwt_secret: str = "veilchain-dev-jwt-secret-not-for-production"
    token_ttl_s: int = 900
    nonce_ttl_s: int = 300
    domain: str = "localhost"
    uri: str = "http://localhost:8000"
    login_rate_per_minute: int = 30


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

    @model_validator(mode="after")
    def _no_placeholder_secrets_outside_dev(self) -> Settings:
        if self.env != "prod":
            return self
        checks = {
            "VEILCHAIN_KMS__PASSPHRASE": self.kms.master_key_hex or self.kms.passphrase,
            "VEILCHAIN_AUTH__JWT_SECRET": self.auth.jwt_secret,
            "VEILCHAIN_CHAIN__KEYSTORE_PASSPHRASE": self.chain.private_key
            or self.chain.keystore_passphrase,
        }
        for var, value in checks.items():
            if value.lower() in _PLACEHOLDER_SECRETS or value.startswith("veilchain-dev"):
                raise ValueError(f"{var} is a development placeholder; set a real secret for prod")
        if len(self.auth.jwt_secret.encode()) < 32:  # RFC 7518 3.2: HS256 keys >= 256 bits
            raise ValueError("VEILCHAIN_AUTH__JWT_SECRET is shorter than 32 bytes (use 64 hex)")
        return self

    @property
    def db_url(self) -> str:
        return self.db.url or f"sqlite:///{(self.data_dir / 'veilchain.db').resolve()}"


def get_settings(**overrides) -> Settings:
    """Build settings from the environment, then apply explicit overrides (CLI flags)."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        raise ConfigError(str(exc).splitlines()[-1].strip() or str(exc)) from exc
