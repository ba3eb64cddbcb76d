"""Content Credentials (C2PA): the institution's signing identity, signing anonymized images,
and reading their credentials back (docs/provenance.md)."""

from veilchain.platform.provenance.credentials import (
    ANCHOR_LABEL,
    Anchor,
    Credentials,
    CredentialsSigner,
    anchor_problems,
    check_image_credentials,
    expected_credentials,
    read_credentials,
    sign_file,
)
from veilchain.platform.provenance.identity import SigningIdentity, load_signing_identity

__all__ = [
    "ANCHOR_LABEL",
    "Anchor",
    "Credentials",
    "CredentialsSigner",
    "SigningIdentity",
    "anchor_problems",
    "check_image_credentials",
    "expected_credentials",
    "load_signing_identity",
    "read_credentials",
    "sign_file",
]
