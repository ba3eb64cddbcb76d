"""Findings 2 and 3: a JWT secret written in the source signed every default install's
tokens (a forged admin token read /audit, a forged grantee token got a sealed key); the compose
stack defaulted to ganache's public account 0 and prod accepted it; prod stopped checking the
keystore passphrase once a key was set, and accepted weak secrets; veilchain.db was 0644."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
import yaml
from eth_account import Account

from veilchain.config import get_settings
from veilchain.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
OLD_SOURCE_SECRET = "veilchain-dev-jwt-secret-not-for-production"
KEY = base64.b64encode(bytes(range(32))).decode()


def _forge(address: str, secret: str, issuer: str = "testserver") -> str:
    now = int(datetime.now(UTC).timestamp())
    claims = {"sub": address, "iss": issuer, "iat": now, "exp": now + 600, "jti": "f"}
    return jwt.encode(claims, secret, algorithm="HS256")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_forged_tokens_signed_with_the_old_source_secret_are_refused(stack, dataset) -> None:
    svc = stack.service
    svc.grant(
        dataset["dataset_id"], stack.grantee.address, expires_at=svc.chain.block_timestamp() + 3600
    )
    admin = {"Authorization": f"Bearer {_forge(stack.admin.address, OLD_SOURCE_SECRET)}"}
    grantee = {"Authorization": f"Bearer {_forge(stack.grantee.address, OLD_SOURCE_SECRET)}"}
    assert stack.client.get("/audit", headers=admin).status_code == 401
    assert stack.client.get("/jobs", headers=admin).status_code == 401
    url = f"/datasets/{dataset['dataset_id']}/versions/{dataset['version']}/images/0/key"
    assert stack.client.post(url, json={"public_key": KEY}, headers=grantee).status_code == 401
    # the real sign-in still works
    assert (
        stack.client.post(
            url, json={"public_key": KEY}, headers=stack.headers("grantee")
        ).status_code
        == 200
    )


def test_each_data_dir_gets_its_own_random_secrets_0600(stack, tmp_path) -> None:
    from tests.factories import api_settings
    from veilchain.platform.local_secrets import resolve_local_secrets

    data_dir = Path(stack.app.state.ctx.settings.data_dir)
    ours = stack.app.state.ctx.settings.auth.jwt_secret
    assert ours != OLD_SOURCE_SECRET and len(ours) == 64
    other = resolve_local_secrets(api_settings(tmp_path / "other"))
    assert other.auth.jwt_secret != ours
    assert other.kms.passphrase != stack.app.state.ctx.settings.kms.passphrase
    assert other.chain.keystore_passphrase not in ("veilchain-dev", None)
    # stable across restarts of one data dir
    assert resolve_local_secrets(api_settings(data_dir)).auth.jwt_secret == ours
    assert _mode(data_dir / "secrets") == 0o700
    for f in (data_dir / "secrets").rglob("*"):  # secrets/c2pa/ holds the signing identity
        assert _mode(f) == (0o700 if f.is_dir() else 0o600), f
    for f in (data_dir / "keystore").iterdir():
        if f.is_file():
            assert _mode(f) == 0o600, f
    assert _mode(data_dir / "veilchain.db") == 0o600


def test_an_existing_world_readable_db_is_tightened(tmp_path) -> None:
    from veilchain.platform.db import make_engine

    db = tmp_path / "old.db"
    db.write_bytes(b"")
    db.chmod(0o644)
    make_engine(f"sqlite:///{db}").dispose()
    assert _mode(db) == 0o600


def _dev_chain_keys() -> list[str]:
    Account.enable_unaudited_hdwallet_features()
    keys = []
    for mnemonic in (
        "test test test test test test test test test test test junk",  # anvil, hardhat
        "myth like bonus scare over problem client lizard pioneer submit female collect",  # ganache
    ):
        for i in range(10):
            acct = Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{i}")
            keys.append("0x" + bytes(acct.key).hex())
    return keys


GOOD = {  # random values generated once for this test
    "VEILCHAIN_ENV": "prod",
    "VEILCHAIN_AUTH__JWT_SECRET": "9bd61ab52241747dc0c7d4bc4238d48b"
    "0d84f9ec21e2fc80d0336f1b783d1f9c",
    "VEILCHAIN_KMS__MASTER_KEY_HEX": "b17d78b7a16bedfde2345617f3d8bb43"
    "15dc614c2146e696c5452dd8e0d6152d",
    "VEILCHAIN_CHAIN__PRIVATE_KEY": "0x2d8291ed7acb2499edc2bebd6345c5c2"
    "d4765f9b56f8814e7516e1970131164b",
    "VEILCHAIN_CHAIN__KEYSTORE_PASSPHRASE": "plover-quartz-Mimosa-71",
    # the operator's signing bundle (only its presence is checked by settings)
    "VEILCHAIN_CREDENTIALS__PKCS12_PATH": "/run/veilchain/signer.p12",
}


@pytest.fixture
def prod_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("VEILCHAIN_"):
            monkeypatch.delenv(key)

    def apply(**changes):
        env = {**GOOD, **changes}
        for k, v in env.items():
            if v is None:
                monkeypatch.delenv(k, raising=False)
            else:
                monkeypatch.setenv(k, v)

    return apply


def test_prod_accepts_real_secrets(prod_env) -> None:
    prod_env()
    assert get_settings().env == "prod"


@pytest.mark.parametrize("key", _dev_chain_keys())
def test_prod_refuses_every_published_dev_chain_key(prod_env, key) -> None:
    prod_env(VEILCHAIN_CHAIN__PRIVATE_KEY=key)
    with pytest.raises(ConfigError, match=r"^VEILCHAIN_CHAIN__PRIVATE_KEY is a published") as e:
        get_settings()
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "var,value",
    [
        ("VEILCHAIN_AUTH__JWT_SECRET", "a" * 32),
        ("VEILCHAIN_AUTH__JWT_SECRET", "ab" * 32),
        ("VEILCHAIN_AUTH__JWT_SECRET", None),
        ("VEILCHAIN_AUTH__JWT_SECRET", OLD_SOURCE_SECRET),
        ("VEILCHAIN_KMS__MASTER_KEY_HEX", "00" * 32),
        ("VEILCHAIN_KMS__MASTER_KEY_HEX", "ab" * 32),
        ("VEILCHAIN_CHAIN__KEYSTORE_PASSPHRASE", "x"),
        ("VEILCHAIN_CHAIN__KEYSTORE_PASSPHRASE", None),  # checked even with a private key set
        ("VEILCHAIN_CHAIN__KEYSTORE_PASSPHRASE", "veilchain-dev"),
        ("VEILCHAIN_CHAIN__KEYSTORE_PASSPHRASE", "aaaaaaaaaaaaaaaaaaaa"),
        ("VEILCHAIN_CHAIN__PRIVATE_KEY", "0x" + "00" * 31 + "01"),  # eth-tester's key 1
    ],
)
def test_prod_refuses_weak_secrets_naming_the_variable(prod_env, var, value) -> None:
    prod_env(**{var: value})
    with pytest.raises(ConfigError) as e:
        get_settings()
    assert str(e.value).startswith(var) and "\n" not in str(e.value), str(e.value)


def test_prod_refuses_a_one_character_kms_passphrase(prod_env) -> None:
    prod_env(VEILCHAIN_KMS__MASTER_KEY_HEX=None, VEILCHAIN_KMS__PASSPHRASE="x")
    with pytest.raises(ConfigError, match=r"^VEILCHAIN_KMS__PASSPHRASE is shorter"):
        get_settings()


def test_serve_in_prod_with_the_ganache_key_exits_2_naming_the_variable(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILCHAIN_")}
    env.update(GOOD, VEILCHAIN_DATA_DIR=str(tmp_path), PYTHONPATH=str(ROOT / "src"))
    env["PYTHONWARNINGS"] = "ignore"  # abnf warns about its own grammar at import
    env["VEILCHAIN_CHAIN__PRIVATE_KEY"] = _dev_chain_keys()[10]  # ganache account 0
    r = subprocess.run(
        [sys.executable, "-m", "veilchain.cli", "serve", "--port", "1"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "VEILCHAIN_CHAIN__PRIVATE_KEY" in lines[0], r.stderr
    assert "pydantic" not in r.stderr


def test_compose_ships_no_usable_default_secret() -> None:
    env = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["api"][
        "environment"
    ]
    for var in (
        "VEILCHAIN_CHAIN__PRIVATE_KEY",
        "VEILCHAIN_CHAIN__KEYSTORE_PASSPHRASE",
        "VEILCHAIN_KMS__MASTER_KEY_HEX",
        "VEILCHAIN_AUTH__JWT_SECRET",
    ):
        assert str(env[var]).startswith("${" + var + ":?"), f"{var} must be required"
    text = (ROOT / "docker-compose.yml").read_text()
    assert "4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d" not in text
