"""Finding 1: expired grants kept releasing keys on an idle embedded chain (its head block's
timestamp went stale, and access was cached per block); ``ttl_s`` grants were shortened by
the idle time. The attack: wait past expiry without mining a block, then ask again."""

from __future__ import annotations

import base64
import time

import pytest

from veilchain.platform.audit_entries import AuditEvent
from veilchain.platform.limits import now_s

KEY = base64.b64encode(bytes(range(32))).decode()


def _key_status(stack, ds: dict, who: str = "grantee") -> int:
    url = f"/datasets/{ds['dataset_id']}/versions/{ds['version']}/images/0/key"
    return stack.client.post(url, json={"public_key": KEY}, headers=stack.headers(who)).status_code


def _content_status(stack, ds: dict) -> int:
    url = f"/datasets/{ds['dataset_id']}/versions/{ds['version']}/images/0/content"
    return stack.client.get(url, headers=stack.headers("grantee")).status_code


def _releases(stack, address: str) -> int:
    rows = stack.service.audit.query(
        event=AuditEvent.RELEASE, subject=None, since_seq=0, limit=10_000
    )
    return sum(1 for r in rows if r.actor == address)


def test_no_key_released_one_second_after_expiry_on_an_idle_chain(stack, dataset) -> None:
    svc = stack.service
    expires = now_s(svc.chain.block_timestamp()) + 3  # py-evm may run ahead after a burst
    svc.grant(dataset["dataset_id"], stack.grantee.address, expires_at=expires)
    assert _key_status(stack, dataset) == 200  # live: released and cached for this block
    head = svc.chain.block_number()
    released = _releases(stack, stack.grantee.address)
    time.sleep(max(0.0, expires + 1 - time.time()))  # 1 s past expiry, no block mined meanwhile
    assert svc.chain.block_number() == head
    statuses = [_key_status(stack, dataset) for _ in range(5)] + [_content_status(stack, dataset)]
    assert statuses == [403] * 6
    assert _releases(stack, stack.grantee.address) == released  # 0 keys after expiry
    assert svc.chain.block_timestamp() >= expires  # the chain itself now says expired too


def test_ttl_grant_is_not_shortened_by_idle_time(stack, dataset) -> None:
    svc = stack.service
    time.sleep(2.5)  # the chain idles: its head block is now >= 2 s old
    grantee = "0x" + "ab" * 20
    before = int(time.time())
    r = stack.client.post(
        f"/datasets/{dataset['dataset_id']}/grants",
        json={"grantee": grantee, "ttl_s": 3600},
        headers=stack.headers("institution"),
    )
    assert r.status_code in (200, 201), r.text
    grant = svc.chain.get_grant(dataset["dataset_id"], grantee)
    assert grant.expires_at >= before + 3600
    assert grant.granted_at >= before - 1  # the grant's block carries the current time


@pytest.mark.integration
def test_no_key_after_expiry_on_ganache_whose_head_lags(tmp_path) -> None:
    """ganache mines only on a transaction: idle, its head block's timestamp lags wall time,
    so the chain alone can still say "live" after expiry; the service's clock refuses. A
    ganache of its own: the session's may have had its clock moved ahead by other tests."""
    from tests.factories import deploy_with_roles, version_fields
    from tests.servers import stop_process_group
    from tests.servers.ganache import require_ganache, start_ganache
    from veilchain.chain import JsonRpcBackend
    from veilchain.platform.grants import live_grant_until

    require_ganache()
    proc, url = start_ganache(tmp_path / "ganache.log")
    chain = deploy_with_roles(JsonRpcBackend(url))
    try:
        ref = chain.institution.register_dataset(**version_fields())
        grantee = chain.grantee.sender
        expires = now_s(chain.stranger.block_timestamp()) + 2
        chain.institution.grant_access(ref.dataset_id, grantee, expires)
        assert live_grant_until(chain.stranger, ref.dataset_id, grantee) == expires
        time.sleep(max(0.0, expires + 1 - time.time()))  # 1 s past expiry, nothing mined
        lagging = chain.stranger.access_until(ref.dataset_id, grantee)  # the chain alone
        assert live_grant_until(chain.stranger, ref.dataset_id, grantee) is None
        print(f"ganache alone at expiry + 1 s: {'live' if lagging else 'expired'}")
    finally:
        chain.backend.close()
        stop_process_group(proc)
