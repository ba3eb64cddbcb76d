"""build_chain_client on the embedded chain: deploy once, address book, explicit keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from veilchain.chain import AddressBook, build_chain_client
from veilchain.errors import ContractNotDeployedError

FAST_N = 2**12


def _build(data_dir: Path, **kwargs):
    kwargs.setdefault("keystore_passphrase", "pw")
    return build_chain_client(rpc_url=None, data_dir=data_dir, scrypt_n=FAST_N, **kwargs)


def test_first_use_deploys_funds_and_records_then_reuses(tmp_path: Path) -> None:
    client = _build(tmp_path)
    try:
        address, admin = client.address, client.sender
        assert client.roles_of(admin) == {"admin"}
        assert client.backend.get_balance(admin) >= 10**18
        entry = AddressBook(tmp_path / "addressbook.json").get(client.backend.chain_id)
        assert entry.address == address and entry.deploy_block == client.deploy_block
        assert entry.genesis_hash == client.backend.genesis_hash()
        assert (tmp_path / "keystore" / "admin.json").exists()
        assert (tmp_path / "chain" / "chain.sqlite3").exists()
    finally:
        client.backend.close()
    again = _build(tmp_path)
    try:
        assert again.address == address and again.sender == admin
        assert again.deploy_block == entry.deploy_block
    finally:
        again.backend.close()


def test_stale_address_book_entry_is_replaced_by_a_new_deployment(tmp_path: Path) -> None:
    client = _build(tmp_path)
    chain_id = client.backend.chain_id
    client.backend.close()
    book_path = tmp_path / "addressbook.json"
    data = json.loads(book_path.read_text())
    data["chains"][str(chain_id)]["genesis_hash"] = "0x" + "00" * 32  # another chain's entry
    old = data["chains"][str(chain_id)]["address"]
    book_path.write_text(json.dumps(data))
    fresh = _build(tmp_path)
    try:
        assert fresh.address != old
        assert AddressBook(book_path).get(chain_id).address == fresh.address
    finally:
        fresh.backend.close()


def test_private_key_and_explicit_contract_address(tmp_path: Path) -> None:
    key = "0x" + "42" * 32
    first = _build(tmp_path, private_key=key)
    address = first.address
    first.backend.close()
    assert not (tmp_path / "keystore").exists()
    attached = _build(tmp_path, private_key=key, contract_address=address)
    try:
        assert attached.address == address and attached.roles_of(attached.sender) == {"admin"}
    finally:
        attached.backend.close()
    with pytest.raises(ContractNotDeployedError, match="no contract at"):
        _build(tmp_path, private_key=key, contract_address="0x" + "12" * 20)
    # The failed build released the chain: it opens again at once.
    _build(tmp_path, private_key=key).backend.close()


def test_other_code_at_the_recorded_address_is_refused(tmp_path: Path) -> None:
    client = _build(tmp_path)
    chain_id = client.backend.chain_id
    # Point the address book at a contract of another build (the benchmark baseline).
    from veilchain.chain.client import send_transaction

    baseline = json.loads(
        (Path(__file__).resolve().parents[2] / "contracts/bench/PerRecordRegistry.json").read_text()
    )
    receipt = send_transaction(
        client.backend,
        client.account,
        {"from": client.sender, "data": baseline["bytecode"], "value": 0},
        action="deploy baseline",
    )
    client.backend.close()
    book_path = tmp_path / "addressbook.json"
    data = json.loads(book_path.read_text())
    data["chains"][str(chain_id)]["address"] = receipt["contractAddress"]
    book_path.write_text(json.dumps(data))
    with pytest.raises(ContractNotDeployedError, match="not this build of VeilRegistry"):
        _build(tmp_path)
