"""The veilchain command's own options, and a quiet start."""

from __future__ import annotations

import subprocess
import sys

from veilchain import __version__


def test_version():
    out = subprocess.run(
        [sys.executable, "-m", "veilchain.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == f"veilchain {__version__}"


def test_the_auth_module_loads_without_grammar_warnings():
    """siwe's grammar used to print four abnf GrammarWarnings at every server start."""
    code = (
        "import veilchain.platform.auth; "
        "from siwe import SiweMessage; "
        "SiweMessage.from_message("
        "'localhost wants you to sign in with your Ethereum account:\\n"
        "0x0000000000000000000000000000000000000001\\n\\n\\nURI: http://localhost\\n"
        "Version: 1\\nChain ID: 1\\nNonce: 12345678abcd\\n"
        "Issued At: 2026-01-01T00:00:00Z')"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", code], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "GrammarWarning" not in out.stderr
