"""The signing identity: a development CA per data directory outside prod, the operator's
certificate in prod, and never the development CA in prod."""

from __future__ import annotations

import multiprocessing
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.platform.provenance.operator import operator_ca as _operator_ca
from tests.platform.provenance.operator import pem as _pem
from veilchain.config import Settings
from veilchain.errors import ConfigError
from veilchain.platform.provenance import CredentialsSigner, load_signing_identity, read_credentials
from veilchain.platform.provenance.identity import DEV_CA_ORGANIZATION

PROD = dict(  # random values generated once for these tests
    env="prod",
    auth={"jwt_secret": "5e0c1d7a9b3f48e2a6c4d1f0b8e7a3c29f61d4b0e8a2c7f35b9d0e1a6c4f8b2d"},
    kms={"master_key_hex": "3fa91c07d25be6481ac93d7e0b6f2a54c18e97d3b2056af4e1c8d90b7a3f2e61"},
    chain={"keystore_passphrase": "tundra-Oxbow-castle-42"},
)


def _settings(tmp_path, **credentials) -> Settings:
    return Settings(data_dir=tmp_path / "dd", **PROD, credentials=credentials)


def test_development_identity_is_private_stable_and_per_directory(tmp_path) -> None:
    a = load_signing_identity(Settings(data_dir=tmp_path / "a", env="test"))
    folder = tmp_path / "a" / "secrets" / "c2pa"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("ca.pem", "signing.pem"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert load_signing_identity(Settings(data_dir=tmp_path / "a", env="test")) == a
    b = load_signing_identity(Settings(data_dir=tmp_path / "b", env="test"))
    assert b.ca_pem != a.ca_pem and b.key_pem != a.key_pem
    ca = x509.load_pem_x509_certificate(a.ca_pem)
    assert a.development
    org = ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    assert org == DEV_CA_ORGANIZATION
    leaf = a.certificate
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ku.digital_signature and ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)


def test_a_new_institution_name_reissues_the_certificate_under_the_same_ca(tmp_path) -> None:
    first = load_signing_identity(Settings(data_dir=tmp_path, env="test"))
    renamed = load_signing_identity(
        Settings(data_dir=tmp_path, env="test", credentials={"institution_name": "Uni Example"})
    )
    assert renamed.institution == "Uni Example" and renamed.ca_pem == first.ca_pem
    assert renamed.serial_hex != first.serial_hex


def _ca_of(data_dir: str) -> bytes:
    return load_signing_identity(Settings(data_dir=data_dir, env="test")).ca_pem


def test_two_processes_starting_at_once_agree_on_one_identity(tmp_path) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        cas = pool.map(_ca_of, [str(tmp_path)] * 4)
    assert len(set(cas)) == 1


def test_prod_without_an_operator_certificate_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="VEILCHAIN_CREDENTIALS__CERT_PATH"):
        Settings(data_dir=tmp_path, **PROD)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_prod_refuses_the_development_ca_even_by_path(tmp_path) -> None:
    dev = load_signing_identity(Settings(data_dir=tmp_path / "dd", env="dev"))
    cert = _write(tmp_path / "chain.pem", dev.chain_pem + dev.ca_pem)
    key = _write(tmp_path / "key.pem", dev.key_pem)
    with pytest.raises(ConfigError, match="development CA") as e:
        load_signing_identity(_settings(tmp_path, cert_path=cert, key_path=key))
    assert "\n" not in str(e.value)


def test_prod_signs_with_the_operators_pem_files(tmp_path) -> None:
    key, leaf, ca = _operator_ca()
    cert = _write(tmp_path / "chain.pem", _pem(leaf) + _pem(ca))
    keyf = _write(tmp_path / "key.pem", _pem(key))
    identity = load_signing_identity(_settings(tmp_path, cert_path=cert, key_path=keyf))
    assert identity.institution == "Example University" and not identity.development
    assert identity.ca_pem == _pem(ca)
    from tests.platform.provenance.test_credentials import _png, _sign

    signed = _sign(CredentialsSigner(identity), _png())
    creds = read_credentials(signed, trust_pem=_pem(ca).decode())
    assert creds.state == "Trusted" and creds.signer == "Example University"


def test_prod_reads_a_pkcs12_bundle(tmp_path) -> None:
    key, leaf, ca = _operator_ca()
    bundle = pkcs12.serialize_key_and_certificates(
        b"signer", key, leaf, [ca], serialization.BestAvailableEncryption(b"p12-Secret-pass")
    )
    p12 = _write(tmp_path / "signer.p12", bundle)
    identity = load_signing_identity(
        _settings(tmp_path, pkcs12_path=p12, pkcs12_passphrase="p12-Secret-pass")
    )
    assert identity.serial_hex == format(leaf.serial_number, "x")
    with pytest.raises(ConfigError, match="PKCS12_PASSPHRASE"):
        load_signing_identity(_settings(tmp_path, pkcs12_path=p12, pkcs12_passphrase="wrong"))


def test_a_key_that_is_not_the_certificates_or_a_chain_without_root_is_refused(tmp_path) -> None:
    key, leaf, ca = _operator_ca()
    other = ec.generate_private_key(ec.SECP256R1())
    cert = _write(tmp_path / "chain.pem", _pem(leaf) + _pem(ca))
    with pytest.raises(ConfigError, match="does not match"):
        load_signing_identity(
            _settings(tmp_path, cert_path=cert, key_path=_write(tmp_path / "k", _pem(other)))
        )
    leaf_only = _write(tmp_path / "leaf.pem", _pem(leaf))
    keyf = _write(tmp_path / "key.pem", _pem(key))
    with pytest.raises(ConfigError, match="CA_CERT_PATH"):
        load_signing_identity(_settings(tmp_path, cert_path=leaf_only, key_path=keyf))
    root = _write(tmp_path / "root.pem", _pem(ca))
    identity = load_signing_identity(
        _settings(tmp_path, cert_path=leaf_only, key_path=keyf, ca_cert_path=root)
    )
    assert identity.ca_pem == _pem(ca)
