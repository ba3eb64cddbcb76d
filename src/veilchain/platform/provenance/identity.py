"""The institution's C2PA signing identity: an ES256 key and the X.509 chain that names it.

Outside prod each data directory gets its own: a development CA and an institution
certificate issued by it, generated on first use in ``<data dir>/secrets/c2pa/`` (directory
0700, files 0600). ``ca.pem`` holds the CA's key and certificate, ``signing.pem`` the
institution's key and certificate; each is written to a temporary file and renamed, so two
processes starting at once agree on one identity and a key never lies apart from its
certificate. The institution certificate is re-issued by the same CA when the configured
institution name changes or the certificate is within 30 days of expiry.

In prod the operator supplies the key and chain (PEM files or a PKCS#12 bundle);
:func:`load_signing_identity` refuses a chain that ends in a Veilchain development CA.

C2PA readers need, on the signing certificate: a Subject and Authority Key Identifier, key
usage ``digitalSignature``, and the extended key usage ``emailProtection``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from veilchain.errors import ConfigError, ContentCredentialsError
from veilchain.platform.local_secrets import SECRETS_DIR, ensure_private

__all__ = [
    "DEFAULT_INSTITUTION_NAME",
    "DEV_CA_ORGANIZATION",
    "SigningIdentity",
    "certificate_fingerprint",
    "load_signing_identity",
]

DEFAULT_INSTITUTION_NAME = "Veilchain development institution"
# Marks every development CA; prod refuses a chain whose root carries it.
DEV_CA_ORGANIZATION = "Veilchain development CA (not for production)"
IDENTITY_DIR = "c2pa"
_CA_DAYS = 3650
_LEAF_DAYS = 825
_RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class SigningIdentity:
    """What signs Content Credentials: the institution's name, its private key and chain
    (PEM, leaf first, no root) and the root CA certificate that verifiers are given."""

    institution: str
    key_pem: bytes
    chain_pem: bytes
    ca_pem: bytes
    development: bool

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificates(self.chain_pem)[0]

    @property
    def serial_hex(self) -> str:
        """The signing certificate's serial number in lower-case hex, as C2PA readers print it."""
        return format(self.certificate.serial_number, "x")

    @property
    def certificate_sha256(self) -> str:
        return certificate_fingerprint(self.certificate)

    @property
    def ca_sha256(self) -> str:
        return certificate_fingerprint(x509.load_pem_x509_certificate(self.ca_pem))

    def public(self) -> dict:
        """What a data set publishes about its signer (no key material)."""
        return {
            "institution": self.institution,
            "ca_certificate": self.ca_pem.decode("ascii"),
            "ca_sha256": self.ca_sha256,
            "signer_serial": self.serial_hex,
            "signer_sha256": self.certificate_sha256,
            "development_ca": self.development,
        }


def certificate_fingerprint(cert: x509.Certificate) -> str:
    """sha256 of the certificate's DER encoding, lower-case hex."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def load_signing_identity(settings) -> SigningIdentity:
    """The signing identity ``settings`` configure: the operator's (``settings.credentials``
    paths) or, outside prod, the data directory's development identity."""
    cfg = settings.credentials
    if cfg.pkcs12_path or cfg.cert_path or cfg.key_path:
        identity = _operator_identity(cfg)
    elif settings.env == "prod":
        raise ConfigError(
            "prod signs Content Credentials with the operator's certificate: set "
            "VEILCHAIN_CREDENTIALS__CERT_PATH and __KEY_PATH, or __PKCS12_PATH"
        )
    else:
        name = cfg.institution_name or DEFAULT_INSTITUTION_NAME
        identity = development_identity(Path(settings.data_dir), name)
    if settings.env == "prod" and identity.development:
        raise ConfigError(
            "the configured signing certificate chains to a Veilchain development CA; prod "
            "needs a certificate from the institution's own CA (VEILCHAIN_CREDENTIALS__*)"
        )
    return identity


# --- operator identity (prod) ----------------------------------------------------
def _operator_identity(cfg) -> SigningIdentity:
    if cfg.pkcs12_path:
        key, chain = _read_pkcs12(Path(cfg.pkcs12_path), cfg.pkcs12_passphrase)
    else:
        if not (cfg.cert_path and cfg.key_path):
            raise ConfigError(
                "VEILCHAIN_CREDENTIALS__CERT_PATH and __KEY_PATH go together; set both"
            )
        chain = _read_certs(Path(cfg.cert_path))
        key = _read_key(Path(cfg.key_path), cfg.key_passphrase)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ConfigError("the signing key must be an ECDSA P-256 key (ES256)")
    leaf = chain[0]
    if leaf.public_key().public_numbers() != key.public_key().public_numbers():
        raise ConfigError("the signing key does not match the first certificate of the chain")
    if cfg.ca_cert_path:
        ca = _read_certs(Path(cfg.ca_cert_path))[-1]
    elif _self_signed(chain[-1]) and len(chain) > 1:
        ca = chain[-1]
    else:
        raise ConfigError(
            "the certificate chain ends below its root; set VEILCHAIN_CREDENTIALS__CA_CERT_PATH "
            "to the root CA certificate that verifiers should trust"
        )
    below_root = [c for c in chain if not _self_signed(c)]
    return SigningIdentity(
        institution=_organization(leaf),
        key_pem=_key_pem(key),
        chain_pem=b"".join(_cert_pem(c) for c in below_root),
        ca_pem=_cert_pem(ca),
        development=_is_dev_ca(ca) or any(_is_dev_ca(c) for c in chain),
    )


def _read_pkcs12(path: Path, passphrase: str | None):
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(
            path.read_bytes(), passphrase.encode() if passphrase else None
        )
    except OSError as exc:
        raise ConfigError(f"cannot read the PKCS#12 bundle {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(
            f"{path} is not a PKCS#12 bundle this passphrase opens "
            "(VEILCHAIN_CREDENTIALS__PKCS12_PASSPHRASE)"
        ) from exc
    if key is None or cert is None:
        raise ConfigError(f"{path} must hold the signing key and its certificate")
    return key, [cert, *(extra or [])]


def _read_certs(path: Path) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read the certificate file {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path} holds no PEM certificate") from exc
    return certs


def _read_key(path: Path, passphrase: str | None):
    try:
        return serialization.load_pem_private_key(
            path.read_bytes(), passphrase.encode() if passphrase else None
        )
    except OSError as exc:
        raise ConfigError(f"cannot read the signing key {path}: {exc.strerror}") from exc
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{path} is not a PEM private key this passphrase opens "
            "(VEILCHAIN_CREDENTIALS__KEY_PASSPHRASE)"
        ) from exc


# --- development identity ----------------------------------------------------------
def development_identity(data_dir: Path, institution: str) -> SigningIdentity:
    """The data directory's development CA and institution certificate, created (or the
    certificate re-issued) when needed."""
    folder = data_dir / SECRETS_DIR / IDENTITY_DIR
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    ensure_private(folder.parent)
    ensure_private(folder)
    ca_key, ca_cert = _load_or_create(folder / "ca.pem", _new_ca)
    key, leaf = _load_or_create(
        folder / "signing.pem", lambda: _new_leaf(ca_key, ca_cert, institution)
    )
    stale = (
        _organization(leaf) != institution
        or leaf.issuer != ca_cert.subject
        or leaf.not_valid_after_utc - _now() < _RENEW_BEFORE
    )
    if stale:
        key, leaf = _new_leaf(ca_key, ca_cert, institution)
        _write_private(folder / "signing.pem", _key_pem(key) + _cert_pem(leaf), replace=True)
    return SigningIdentity(
        institution=institution,
        key_pem=_key_pem(key),
        chain_pem=_cert_pem(leaf),
        ca_pem=_cert_pem(ca_cert),
        development=True,
    )


def _load_or_create(path: Path, make):
    if not path.exists():
        key, cert = make()
        _write_private(path, _key_pem(key) + _cert_pem(cert), replace=False)
    try:
        data = path.read_bytes()
        key = serialization.load_pem_private_key(data, None)
        cert = x509.load_pem_x509_certificates(data)[0]
    except (OSError, ValueError) as exc:
        raise ContentCredentialsError(
            f"{path} is unreadable or corrupt; move it away to generate a new development "
            "signing identity"
        ) from exc
    ensure_private(path)
    return key, cert


def _write_private(path: Path, data: bytes, *, replace: bool) -> None:
    """Write ``data`` to a 0600 temporary file and move it to ``path``; without ``replace``
    a file another process put there first wins."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if it exists: the first writer wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )


def _key_usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _new_ca():
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"Veilchain development CA {secrets.token_hex(4)}", DEV_CA_ORGANIZATION)
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(sign=False, ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _new_leaf(ca_key, ca_cert: x509.Certificate, institution: str):
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(institution, institution))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(sign=True, ca=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def _is_dev_ca(cert: x509.Certificate) -> bool:
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return any(a.value == DEV_CA_ORGANIZATION for a in orgs)


def _organization(cert: x509.Certificate) -> str:
    """The name C2PA readers show as the signer: the subject's O, else its CN."""
    for oid in (NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME):
        attrs = cert.subject.get_attributes_for_oid(oid)
        if attrs:
            return str(attrs[0].value)
    return cert.subject.rfc4514_string()
