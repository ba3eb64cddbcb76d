"""Fixtures for the key service: a real SQLite database and a fast scrypt keystore."""

from __future__ import annotations

import pytest

from tests.factories import FAST_SCRYPT_N, PASSPHRASE
from veilchain.platform.keys import KeyManager, PassphraseSource


@pytest.fixture
def km(session_factory, audit):
    return KeyManager(session_factory, PassphraseSource(PASSPHRASE, n=FAST_SCRYPT_N), audit)
