"""The key service (SECaaS): per-image data keys, versioned master keys, sealed release."""

from veilchain.platform.keys.envelope import (
    HEADER_LEN,
    MAGIC,
    decrypt_with_data_key,
    encrypt_with_data_key,
)
from veilchain.platform.keys.factory import build_key_manager
from veilchain.platform.keys.keystore import PassphraseSource, RawKeySource
from veilchain.platform.keys.manager import KekVersionInfo, KeyManager, KeyStatus
from veilchain.platform.keys.sealing import generate_keypair, open_sealed_key, seal_data_key

__all__ = [
    "HEADER_LEN",
    "MAGIC",
    "KekVersionInfo",
    "KeyManager",
    "KeyStatus",
    "PassphraseSource",
    "RawKeySource",
    "build_key_manager",
    "decrypt_with_data_key",
    "encrypt_with_data_key",
    "generate_keypair",
    "open_sealed_key",
    "seal_data_key",
]
