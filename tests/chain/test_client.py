"""One backend contract suite: ChainClient against VeilRegistry on the embedded chain and ganache.

Every test runs on both backends (the ganache parameter is marked ``integration``) and
asserts the same results and the same decoded errors, names and messages included.
"""

from __future__ import annotations

import pytest

from tests.factories import named_account, random_bytes32, version_fields
from veilchain.chain import build_merkle_tree
from veilchain.errors import ContractRevertedError, InputError, TransactionFailedError


def reverts(name: str):
    return pytest.raises(ContractRevertedError, match=rf"reverted: {name}\(")


# ---------------------------------------------------------------------------- roles
def test_roles_of_each_account(chain) -> None:
    assert chain.admin.roles_of(chain.admin.sender) == {"admin"}
    assert chain.admin.roles_of(chain.institution.sender) == {"institution"}
    assert chain.admin.roles_of(chain.auditor.sender) == {"auditor"}
    assert chain.admin.roles_of(chain.keyservice.sender) == {"keyservice"}
    assert chain.admin.roles_of(chain.stranger.sender) == set()
    assert chain.stranger.admin() == chain.admin.sender
    assert chain.stranger.key_service() == chain.keyservice.sender


def test_only_admin_appoints(chain) -> None:
    target = chain.stranger.sender
    for call in (
        lambda: chain.institution.add_institution(target),
        lambda: chain.institution.add_auditor(target),
        lambda: chain.auditor.set_key_service(target),
        lambda: chain.keyservice.remove_institution(chain.institution.sender),
        lambda: chain.stranger.propose_admin(target),
    ):
        with reverts("NotAdmin") as info:
            call()
        assert info.value.name == "NotAdmin"
        assert target in str(info.value) or "is not the contract's admin" in str(info.value)


def test_add_and_remove_roles_with_events_and_errors(chain) -> None:
    who = named_account("temp-role").address
    ref = chain.admin.add_auditor(who)
    assert ref.gas_used > 0 and ref.tx_hash.startswith("0x")
    assert "auditor" in chain.admin.roles_of(who)
    with reverts("AlreadyInRole") as info:
        chain.admin.add_auditor(who)
    assert info.value.error_args == (who, "auditor")  # the account and the role, named
    assert str(info.value) == (
        f"addAuditor from {chain.admin.sender} reverted: "
        f"AlreadyInRole(account={who}, role=auditor): {who} already holds the auditor role"
    )
    chain.admin.remove_auditor(who)
    assert chain.admin.roles_of(who) == set()
    with reverts("NotInRole") as info:
        chain.admin.remove_auditor(who)
    assert info.value.error_args == (who, "auditor")
    with reverts("NotInRole") as info:
        chain.admin.remove_institution(who)
    assert info.value.error_args == (who, "institution")
    with reverts("ZeroAddress"):
        chain.admin.add_institution("0x" + "00" * 20)


def test_invalid_address_is_input_error_before_any_transaction(chain) -> None:
    with pytest.raises(InputError):
        chain.admin.add_institution("not-an-address")


# ---------------------------------------------------------------------------- data sets
def test_register_dataset_and_read_every_field_back(chain) -> None:
    fields = version_fields(epsilon_milli=2500, params='{"sigma": 0.8}')
    before = chain.stranger.dataset_count()
    ref = chain.institution.register_dataset(**fields)
    assert ref.dataset_id == before + 1 and ref.version == 1
    assert chain.stranger.dataset_count() == before + 1
    info = chain.stranger.get_dataset(ref.dataset_id)
    assert info.owner == chain.institution.sender and info.version_count == 1
    v = chain.auditor.get_version(ref.dataset_id, 1)
    assert v.merkle_root == fields["merkle_root"]
    assert v.record_count == fields["record_count"]
    assert v.manifest_cid == fields["manifest_cid"]
    assert v.model_hash == fields["model_hash"]
    assert v.method == fields["method"] and v.params == fields["params"]
    assert v.epsilon_milli == 2500 and v.epsilon == 2.5
    assert v.registrant == chain.institution.sender
    assert v.block_number == ref.block_number and v.tx_hash == ref.tx_hash
    assert v.registered_at == chain.backend.block_timestamp(ref.block_number)


def test_register_dataset_gas_stays_under_100_per_image_at_1000(chain) -> None:
    ref = chain.institution.register_dataset(**version_fields(record_count=1000))
    assert ref.gas_used / 1000 <= 100


def test_add_version_appends_and_never_overwrites(chain) -> None:
    first = version_fields(method="pixelate", epsilon_milli=0)
    ref = chain.institution.register_dataset(**first)
    second = version_fields(record_count=999, method="blur", epsilon_milli=0)
    ref2 = chain.institution.add_version(ref.dataset_id, **second)
    assert (ref2.dataset_id, ref2.version) == (ref.dataset_id, 2)
    ref3 = chain.institution.add_version(ref.dataset_id, **version_fields())
    assert ref3.version == 3
    assert chain.stranger.get_dataset(ref.dataset_id).version_count == 3
    versions = chain.stranger.list_versions(ref.dataset_id)
    assert [v.version for v in versions] == [1, 2, 3]
    assert versions[0].merkle_root == first["merkle_root"] and versions[0].method == "pixelate"
    assert versions[1].merkle_root == second["merkle_root"] and versions[1].record_count == 999
    assert versions[0].epsilon is None


def test_register_and_add_version_errors(chain) -> None:
    ref = chain.institution.register_dataset(**version_fields())
    with reverts("NotInstitution"):
        chain.stranger.register_dataset(**version_fields())
    with reverts("NotDatasetOwner"):
        chain.other_institution.add_version(ref.dataset_id, **version_fields())
    with reverts("UnknownDataset"):
        chain.institution.add_version(10**9, **version_fields())
    with reverts("ZeroMerkleRoot"):
        chain.institution.register_dataset(**version_fields(merkle_root=b"\x00" * 32))
    with reverts("EmptyDataset"):
        chain.institution.register_dataset(**version_fields(record_count=0))
    with reverts("RecordCountTooLarge") as info:
        chain.institution.register_dataset(**version_fields(record_count=2**48))
    assert info.value.error_args == (2**48,)
    with reverts("UnknownDataset") as info:
        chain.stranger.get_dataset(10**9)
    assert info.value.error_args == (10**9,)
    with reverts("UnknownVersion") as info:
        chain.stranger.get_version(ref.dataset_id, 2)
    assert info.value.error_args == (ref.dataset_id, 2)


def test_removed_institution_cannot_register(chain) -> None:
    who = named_account("short-lived-institution")
    chain.backend.fund(who.address, 10**18)
    chain.admin.add_institution(who.address)
    client = chain.admin.with_account(who)
    ref = client.register_dataset(**version_fields())
    chain.admin.remove_institution(who.address)
    with reverts("NotInstitution"):
        client.register_dataset(**version_fields())
    # It still owns what it registered, but cannot write to it until it is an institution.
    with reverts("OwnerNotInstitution"):
        client.add_version(ref.dataset_id, **version_fields())
    chain.admin.add_institution(who.address)
    assert client.add_version(ref.dataset_id, **version_fields()).version == 2


def test_input_validation(chain) -> None:
    with pytest.raises(InputError, match="merkle_root must be 32 bytes"):
        chain.institution.register_dataset(**version_fields(merkle_root=b"short"))
    with pytest.raises(InputError, match="epsilon_milli"):
        chain.institution.register_dataset(**version_fields(epsilon_milli=-1))
    with pytest.raises(InputError, match="manifest_cid is empty"):
        chain.institution.register_dataset(**version_fields(manifest_cid=""))


# ---------------------------------------------------------------------------- verifyRecord
def test_verify_record_on_chain(chain) -> None:
    leaves = [random_bytes32() for _ in range(37)]
    tree = build_merkle_tree(leaves)
    ref = chain.institution.register_dataset(
        **version_fields(merkle_root=tree.root, record_count=len(leaves))
    )
    for i in (0, 1, 17, 35, 36):
        assert chain.stranger.verify_record(ref.dataset_id, 1, leaves[i], tree.proof(i))
    assert not chain.stranger.verify_record(ref.dataset_id, 1, leaves[0], tree.proof(1))
    assert not chain.stranger.verify_record(ref.dataset_id, 1, random_bytes32(), tree.proof(0))
    with reverts("UnknownVersion"):
        chain.stranger.verify_record(ref.dataset_id, 9, leaves[0], tree.proof(0))


# ---------------------------------------------------------------------------- grants
def test_grant_expiry_and_revoke(chain) -> None:
    ref = chain.institution.register_dataset(**version_fields())
    grantee = chain.grantee.sender
    assert not chain.stranger.has_access(ref.dataset_id, grantee)
    assert chain.stranger.get_grant(ref.dataset_id, grantee) is None
    now = chain.stranger.block_timestamp()
    tx = chain.institution.grant_access(ref.dataset_id, grantee, now + 1000)
    assert chain.stranger.has_access(ref.dataset_id, grantee)
    grant = chain.stranger.get_grant(ref.dataset_id, grantee)
    assert grant.expires_at == now + 1000 and grant.active and not grant.revoked
    assert grant.granted_at == chain.backend.block_timestamp(tx.block_number)

    chain.backend.advance_time(1001)
    assert not chain.stranger.has_access(ref.dataset_id, grantee)
    assert not chain.stranger.get_grant(ref.dataset_id, grantee).active

    now = chain.stranger.block_timestamp()
    chain.institution.grant_access(ref.dataset_id, grantee, now + 10_000)
    assert chain.stranger.has_access(ref.dataset_id, grantee)
    chain.institution.revoke_access(ref.dataset_id, grantee)
    assert not chain.stranger.has_access(ref.dataset_id, grantee)
    grant = chain.stranger.get_grant(ref.dataset_id, grantee)
    assert grant.revoked and not grant.active
    with reverts("NoGrant"):
        chain.institution.revoke_access(ref.dataset_id, grantee)
    # A new grant after a revoke is live again.
    chain.institution.grant_access(ref.dataset_id, grantee, now + 20_000)
    assert chain.stranger.has_access(ref.dataset_id, grantee)


def test_grant_errors(chain) -> None:
    ref = chain.institution.register_dataset(**version_fields())
    now = chain.stranger.block_timestamp()
    with reverts("NotDatasetOwner"):
        chain.other_institution.grant_access(ref.dataset_id, chain.grantee.sender, now + 100)
    with reverts("NotDatasetOwner"):
        chain.grantee.revoke_access(ref.dataset_id, chain.grantee.sender)
    with reverts("ExpiryInPast") as info:
        chain.institution.grant_access(ref.dataset_id, chain.grantee.sender, now - 1)
    assert info.value.error_args[0] == now - 1
    with reverts("ZeroAddress"):
        chain.institution.grant_access(ref.dataset_id, "0x" + "00" * 20, now + 100)
    with reverts("NoGrant"):
        chain.institution.revoke_access(ref.dataset_id, chain.stranger.sender)
    with reverts("UnknownDataset"):
        chain.stranger.get_grant(10**9, chain.grantee.sender)
    assert not chain.stranger.has_access(10**9, chain.grantee.sender)


def test_list_grants_from_events(chain) -> None:
    ref = chain.institution.register_dataset(**version_fields())
    now = chain.stranger.block_timestamp()
    a, b = chain.grantee.sender, chain.stranger.sender
    chain.institution.grant_access(ref.dataset_id, a, now + 5000)
    chain.institution.grant_access(ref.dataset_id, b, now + 6000)
    chain.institution.grant_access(ref.dataset_id, a, now + 7000)  # extends
    chain.institution.revoke_access(ref.dataset_id, b)
    grants = chain.auditor.list_grants(ref.dataset_id)
    assert [(g.grantee, g.expires_at, g.revoked, g.active) for g in grants] == [
        (a, now + 7000, False, True),
        (b, now + 6000, True, False),
    ]


# ---------------------------------------------------------------------------- audits
def test_attest_and_list_attestations(chain) -> None:
    ref = chain.institution.register_dataset(**version_fields())
    chain.auditor.attest(ref.dataset_id, 1, True, "bafkreiaudit1")
    tx = chain.auditor.attest(ref.dataset_id, 1, False, "bafkreiaudit2")
    found = chain.stranger.list_attestations(ref.dataset_id)
    assert [(a.version, a.auditor, a.passed, a.report_cid) for a in found] == [
        (1, chain.auditor.sender, True, "bafkreiaudit1"),
        (1, chain.auditor.sender, False, "bafkreiaudit2"),
    ]
    assert found[-1].tx_hash == tx.tx_hash and found[-1].block_number == tx.block_number
    with reverts("NotAuditor"):
        chain.institution.attest(ref.dataset_id, 1, True, "bafkreix")
    with reverts("UnknownVersion"):
        chain.auditor.attest(ref.dataset_id, 2, True, "bafkreix")
    with reverts("UnknownDataset"):
        chain.auditor.attest(10**9, 1, True, "bafkreix")


def test_anchor_audit(chain) -> None:
    latest = chain.stranger.latest_audit_anchor()
    base = latest.entry_count if latest else 0
    root = random_bytes32()
    tx = chain.keyservice.anchor_audit(root, base + 10)
    anchor = chain.stranger.latest_audit_anchor()
    assert anchor.root == root and anchor.entry_count == base + 10
    assert anchor.block_number == tx.block_number
    assert anchor.anchored_at == chain.backend.block_timestamp(tx.block_number)
    chain.keyservice.anchor_audit(random_bytes32(), base + 10)  # same count: allowed
    with reverts("StaleAuditAnchor") as info:
        chain.keyservice.anchor_audit(random_bytes32(), base + 9)
    assert info.value.error_args == (base + 9, base + 10)
    with reverts("NotKeyService"):
        chain.admin.anchor_audit(random_bytes32(), base + 20)
    with reverts("NotKeyService"):
        chain.auditor.anchor_audit(random_bytes32(), base + 20)


def test_events_for_state_changes(chain) -> None:
    """Every write emits its event; read them back through the bounded log reader."""
    start = chain.backend.block_number() + 1
    who = named_account("evented").address
    chain.admin.add_institution(who)
    chain.admin.remove_institution(who)
    ref = chain.institution.register_dataset(**version_fields())
    chain.institution.add_version(ref.dataset_id, **version_fields())
    names = []
    for event in ("InstitutionAdded", "InstitutionRemoved", "DatasetRegistered", "VersionAdded"):
        logs = chain.stranger._logs(event, from_block=start)
        names += [event] * len(logs)
    assert names == [
        "InstitutionAdded",
        "InstitutionRemoved",
        "DatasetRegistered",
        "VersionAdded",
        "VersionAdded",
    ]


def test_log_queries_span_many_bounded_ranges(chain) -> None:
    """A tiny log_block_range forces many get_logs calls; results are unchanged."""
    ref = chain.institution.register_dataset(**version_fields())
    now = chain.stranger.block_timestamp()
    for i in range(3):
        chain.institution.grant_access(ref.dataset_id, named_account(f"g{i}").address, now + 99)
    saved = chain.backend.log_block_range
    chain.backend.log_block_range = 2
    try:
        assert len(chain.stranger.list_grants(ref.dataset_id)) == 3
    finally:
        chain.backend.log_block_range = saved


# ---------------------------------------------------------------------------- mined failures
def test_mined_revert_is_decoded_from_a_replay(chain) -> None:
    """Skipping estimation, a reverting tx is mined with status 0; its reason is recovered."""
    with reverts("NotInstitution"):
        chain.stranger._transact(
            "registerDataset", *chain.stranger._version_args(**version_fields()), gas=300_000
        )
    # The nonce counter stays in step with the chain afterwards.
    assert chain.admin.add_auditor(named_account("after-failure").address).gas_used > 0


def test_out_of_gas_is_transaction_failed(chain) -> None:
    with pytest.raises(TransactionFailedError, match=r"status 0, gas used \d+ of 40000"):
        chain.institution._transact(
            "registerDataset", *chain.institution._version_args(**version_fields()), gas=40_000
        )
    assert chain.institution.register_dataset(**version_fields()).version == 1
