"""The chain layer against a real ganache node: factory, node loss, identical errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import deploy_with_roles, version_fields
from tests.servers import stop_process_group
from tests.servers.ganache import require_ganache, start_ganache
from veilchain.chain import AddressBook, EthTesterBackend, JsonRpcBackend, build_chain_client
from veilchain.errors import ChainUnavailableError, ContractRevertedError

pytestmark = pytest.mark.integration


def _failures(deployed) -> list[tuple[str | None, str]]:
    """Run the same failing calls; return (error name, message) of each."""
    ref = deployed.institution.register_dataset(**version_fields())
    calls = [
        lambda: deployed.stranger.register_dataset(**version_fields()),
        lambda: deployed.other_institution.add_version(ref.dataset_id, **version_fields()),
        lambda: deployed.institution.grant_access(ref.dataset_id, deployed.grantee.sender, 1),
        lambda: deployed.institution.revoke_access(ref.dataset_id, deployed.grantee.sender),
        lambda: deployed.stranger.get_version(ref.dataset_id, 5),
        lambda: deployed.stranger.get_dataset(999),
        lambda: deployed.institution.attest(ref.dataset_id, 1, True, "cid"),
        lambda: deployed.auditor.anchor_audit(b"\x01" * 32, 1),
        lambda: deployed.admin.add_auditor(deployed.auditor.sender),
        lambda: deployed.stranger.add_auditor(deployed.stranger.sender),
    ]
    out = []
    for call in calls:
        with pytest.raises(ContractRevertedError) as info:
            call()
        message = str(info.value)
        if info.value.name == "ExpiryInPast":  # carries the node's clock
            message = message.split("nowTs=")[0]
        out.append((info.value.name, message))
    return out


def test_same_error_names_and_messages_as_the_embedded_chain(ganache_url: str) -> None:
    embedded = EthTesterBackend(None)
    node = JsonRpcBackend(ganache_url)
    try:
        expected = _failures(deploy_with_roles(embedded))
        assert _failures(deploy_with_roles(node)) == expected
        assert [name for name, _ in expected] == [
            "NotInstitution",
            "NotDatasetOwner",
            "ExpiryInPast",
            "NoGrant",
            "UnknownVersion",
            "UnknownDataset",
            "NotAuditor",
            "NotKeyService",
            "AlreadyInRole",
            "NotAdmin",
        ]
    finally:
        embedded.close()


def test_factory_deploys_on_a_node_records_it_and_redeploys_after_a_reset(
    tmp_path: Path,
) -> None:
    require_ganache()
    proc, url = start_ganache(tmp_path / "ganache.log")
    kwargs = dict(rpc_url=url, data_dir=tmp_path, keystore_passphrase="pw", scrypt_n=2**12)
    try:
        client = build_chain_client(**kwargs)
        assert client.backend.chain_id == 1337
        assert client.backend.get_balance(client.sender) >= 10**18  # funded by ganache
        assert client.roles_of(client.sender) == {"admin"}
        first = client.address
        assert build_chain_client(**kwargs).address == first  # from the address book
    finally:
        stop_process_group(proc)

    with pytest.raises(ChainUnavailableError, match=url.replace(".", r"\.")):
        build_chain_client(**kwargs)

    # A fresh node (same chain id, new genesis): the stale entry is replaced.
    proc, url = start_ganache(tmp_path / "ganache2.log")
    try:
        kwargs["rpc_url"] = url
        client = build_chain_client(**kwargs)
        entry = AddressBook(tmp_path / "addressbook.json").get(1337)
        assert entry.address == client.address
        assert entry.genesis_hash == client.backend.genesis_hash()
        client.add_institution(client.sender)
        assert client.register_dataset(**version_fields()).dataset_id == 1
    finally:
        stop_process_group(proc)


def test_node_that_goes_away_mid_session_is_chain_unavailable(tmp_path: Path) -> None:
    require_ganache()
    proc, url = start_ganache(tmp_path / "ganache.log")
    backend = JsonRpcBackend(url, request_timeout_s=2)
    try:
        deployed = deploy_with_roles(backend)
    finally:
        stop_process_group(proc)
    with pytest.raises(ChainUnavailableError) as info:
        deployed.stranger.dataset_count()
    assert str(info.value) == f"chain node at {url} is unreachable; start it or check the URL"
    with pytest.raises(ChainUnavailableError):
        deployed.institution.register_dataset(**version_fields())
