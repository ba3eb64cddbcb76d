"""The committed contract artifacts are what the compiler makes from the committed sources."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from veilchain.chain import load_artifact

ROOT = Path(__file__).resolve().parents[2]


def test_artifact_header_names_its_source_compiler_and_script() -> None:
    artifact = load_artifact()
    source = (ROOT / artifact["sourcePath"]).read_bytes()
    assert artifact["sourceSha256"] == hashlib.sha256(source).hexdigest()
    assert artifact["compiler"]["version"].startswith("0.8.37+")
    assert artifact["settings"]["evmVersion"] == "paris"
    assert artifact["settings"]["optimizer"]["enabled"] is True
    assert "scripts/compile_contracts.py" in artifact["_generated_by"]
    names = {item["name"] for item in artifact["abi"] if item["type"] == "error"}
    assert {"NotAdmin", "NotInstitution", "NotAuditor", "NotKeyService", "NotDatasetOwner",
            "UnknownDataset", "UnknownVersion", "ExpiryInPast"} <= names  # fmt: skip


def test_committed_artifacts_are_not_stale() -> None:
    node_ok = shutil.which("node") and (ROOT / "node_modules" / "solc").exists()
    if not node_ok:
        message = "node or node_modules/solc is missing; run `make install` to recompile"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compile_contracts.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
