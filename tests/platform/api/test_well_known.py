"""/.well-known/veilchain.json: the deployment record an auditor pins, served without login,
equal to what `veilchain chain info --json` prints for the same data directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from veilchain.platform.trust import deployment_record


def test_well_known_document_matches_the_chain(stack):
    r = stack.client.get("/.well-known/veilchain.json")
    assert r.status_code == 200, r.text
    doc = r.json()
    svc = stack.service
    assert doc["format"] == "veilchain-deployment/1"
    assert doc["contract"] == svc.chain.address and doc["chain_id"] == str(svc.chain_id)
    assert doc["deployed_bytecode_keccak256"] == doc["artifact_deployed_bytecode_keccak256"]
    assert doc["institution"] == stack.institution.address
    assert stack.institution.address in [i["address"] for i in doc["institutions"]]
    assert [a["address"] for a in doc["auditors"]] == [stack.auditor.address]
    assert doc["admin"] == stack.admin.address and doc["key_service"] == stack.keyservice.address
    cred = doc["content_credentials"]
    assert cred["ca_certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" not in json.dumps(doc)
    assert doc == deployment_record(svc.chain, svc.accounts, svc.signing_identity())


def test_chain_info_cli_prints_the_record(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILCHAIN_")}
    cli = [sys.executable, "-m", "veilchain.cli", "--data-dir", str(tmp_path)]
    r = subprocess.run(
        [*cli, "chain", "info", "--json"], capture_output=True, text=True, timeout=300, env=env
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    book = json.loads((tmp_path / "addressbook.json").read_text())
    entry = book["chains"][doc["chain_id"]]
    assert doc["contract"] == entry["address"] and doc["genesis_hash"] == entry["genesis_hash"]
    assert doc["institution"] in [i["address"] for i in doc["institutions"]]
    assert doc["content_credentials"]["development_ca"] is True
