"""Shared chain fixtures: named accounts and a deployed VeilRegistry on either backend."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from veilchain.chain import ChainBackend, ChainClient, EthTesterBackend, JsonRpcBackend

FUNDING_WEI = 50 * 10**18


def named_account(name: str) -> LocalAccount:
    """A deterministic test account (the key is keccak of the name)."""
    return Account.from_key(keccak(text=f"veilchain-test-{name}"))


def random_bytes32() -> bytes:
    return os.urandom(32)


def version_fields(**overrides) -> dict:
    """Keyword arguments for register_dataset / add_version, overridable."""
    fields = {
        "merkle_root": random_bytes32(),
        "record_count": 1000,
        "manifest_cid": "bafybeidsyc3rx6lmbjml2fg4ucagkjh3kse6tbphoyyhms46fqhmu6ujbi",
        "model_hash": random_bytes32(),
        "method": "dp",
        "params": '{"block": 16, "clip": 1.0}',
        "epsilon_milli": 1500,
    }
    fields.update(overrides)
    return fields


@dataclass
class Deployed:
    """A VeilRegistry with one client per role; every account funded."""

    backend: ChainBackend
    admin: ChainClient
    institution: ChainClient
    other_institution: ChainClient
    auditor: ChainClient
    keyservice: ChainClient
    grantee: ChainClient
    stranger: ChainClient


def deploy_with_roles(backend: ChainBackend) -> Deployed:
    accounts = {
        n: named_account(n)
        for n in (
            "admin",
            "institution",
            "other_institution",
            "auditor",
            "keyservice",
            "grantee",
            "stranger",
        )
    }
    for account in accounts.values():
        if backend.get_balance(account.address) < FUNDING_WEI // 2:
            backend.fund(account.address, FUNDING_WEI)
    admin = ChainClient.deploy(backend, accounts["admin"])
    admin.add_institution(accounts["institution"].address)
    admin.add_institution(accounts["other_institution"].address)
    admin.add_auditor(accounts["auditor"].address)
    admin.set_key_service(accounts["keyservice"].address)
    clients = {n: admin.with_account(a) for n, a in accounts.items() if n != "admin"}
    return Deployed(backend=backend, admin=admin, **clients)


@pytest.fixture(
    scope="module",
    params=["embedded", pytest.param("ganache", marks=pytest.mark.integration)],
)
def chain(request) -> Iterator[Deployed]:
    """A fresh VeilRegistry with all roles appointed, on the embedded chain and on ganache."""
    if request.param == "embedded":
        backend: ChainBackend = EthTesterBackend(None)
    else:
        backend = JsonRpcBackend(request.getfixturevalue("ganache_url"))
    try:
        yield deploy_with_roles(backend)
    finally:
        backend.close()


@pytest.fixture(scope="module")
def embedded_chain() -> Iterator[Deployed]:
    """The same deployment on an in-memory embedded chain only."""
    backend = EthTesterBackend(None)
    try:
        yield deploy_with_roles(backend)
    finally:
        backend.close()
