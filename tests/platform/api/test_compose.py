"""docker-compose.yml: pinned images, admin ports on loopback, every setting the API needs."""

from __future__ import annotations

import re
from pathlib import Path
from secrets import token_hex

import pytest
import yaml

from veilchain.config import Settings

ROOT = Path(__file__).resolve().parents[3]
ADMIN_PORTS = {"ganache": 8545, "ipfs": 5001, "postgres": 5432}
# What the API needs set to run against the real components in prod mode.
REQUIRED = {
    "VEILCHAIN_ENV",
    "VEILCHAIN_DATA_DIR",
    "VEILCHAIN_CHAIN__RPC_URL",
    "VEILCHAIN_CHAIN__PRIVATE_KEY",
    "VEILCHAIN_IPFS__API_URL",
    "VEILCHAIN_DB__URL",
    "VEILCHAIN_KMS__MASTER_KEY_HEX",
    "VEILCHAIN_AUTH__JWT_SECRET",
    "VEILCHAIN_AUTH__DOMAIN",
    "VEILCHAIN_AUTH__URI",
    "VEILCHAIN_CREDENTIALS__PKCS12_PATH",
    "VEILCHAIN_CREDENTIALS__PKCS12_PASSPHRASE",
}
MASTER_KEY_HEX = token_hex(32)
_SUBST = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _env(compose: dict) -> dict[str, str]:
    env = compose["services"]["api"]["environment"]
    return dict(env) if isinstance(env, dict) else dict(e.split("=", 1) for e in env)


def _fill(value: str, secrets: dict[str, str]) -> str:
    """Resolve ${VAR:-default} / ${VAR:?msg} as docker compose would with ``secrets`` set."""

    def sub(m: re.Match) -> str:
        return secrets.get(m.group(1), m.group(2) if "-" in m.group(0) else "")

    return _SUBST.sub(sub, str(value))


def test_services_and_pinned_images(compose):
    services = compose["services"]
    assert {"ganache", "ipfs", "postgres", "api"} <= set(services)
    assert services["ganache"]["image"].startswith("trufflesuite/ganache:v")
    assert services["ipfs"]["image"].startswith("ipfs/kubo:v")
    for name, svc in services.items():
        if "image" in svc and name != "api":
            assert ":" in svc["image"] and not svc["image"].endswith(":latest"), name
    assert "--wallet.deterministic" in services["ganache"]["command"]
    assert services["api"]["build"] == "."
    assert (ROOT / "Dockerfile").is_file()


def test_admin_ports_bind_loopback_only(compose):
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            spec = str(port)
            container_port = int(spec.rsplit(":", 1)[-1].split("/")[0])
            if name in ADMIN_PORTS or container_port in ADMIN_PORTS.values():
                assert spec.startswith("127.0.0.1:"), f"{name} publishes {spec} beyond loopback"
    published = {
        name: [int(str(p).rsplit(":", 1)[-1]) for p in svc.get("ports", [])]
        for name, svc in compose["services"].items()
    }
    for name, port in ADMIN_PORTS.items():
        assert port in published[name], f"{name} should publish {port} on 127.0.0.1"


def test_every_setting_the_api_needs_is_set(compose):
    env = _env(compose)
    assert set(env) >= REQUIRED, f"missing: {sorted(REQUIRED - set(env))}"
    assert env["VEILCHAIN_ENV"] == "prod"
    assert env["VEILCHAIN_CHAIN__RPC_URL"].startswith("http://ganache:")
    assert "/ipfs/tcp/5001" in env["VEILCHAIN_IPFS__API_URL"]
    assert "@postgres:5432/" in env["VEILCHAIN_DB__URL"]


def test_every_variable_names_a_real_setting(compose):
    for var in _env(compose):
        path = var.removeprefix("VEILCHAIN_").lower().split("__")
        model = Settings
        for part in path:
            assert part in model.model_fields, f"{var}: no setting {part!r}"
            model = model.model_fields[part].annotation
        # a field that is itself a section would be a mistake (it needs a leaf)
        assert not (isinstance(model, type) and hasattr(model, "model_fields")), var


def test_compose_environment_builds_valid_prod_settings(compose, monkeypatch):
    secrets = {
        "POSTGRES_PASSWORD": "pw-" + "x" * 20,
        "VEILCHAIN_KMS__MASTER_KEY_HEX": MASTER_KEY_HEX,
        "VEILCHAIN_AUTH__JWT_SECRET": token_hex(32),
        "VEILCHAIN_CHAIN__PRIVATE_KEY": "0x" + token_hex(32),
        "VEILCHAIN_CHAIN__KEYSTORE_PASSPHRASE": token_hex(24),
        "VEILCHAIN_CREDENTIALS__PKCS12_PASSPHRASE": token_hex(16),
    }
    for key in list(__import__("os").environ):
        if key.startswith("VEILCHAIN_"):
            monkeypatch.delenv(key)
    for var, value in _env(compose).items():
        monkeypatch.setenv(var, _fill(value, secrets))
    s = Settings()
    assert s.env == "prod"
    assert s.chain.rpc_url == "http://ganache:8545"
    assert s.db_url.startswith("postgresql+psycopg://veilchain:pw-")
    assert s.kms.master_key_hex == MASTER_KEY_HEX
    assert str(s.credentials.pkcs12_path) == "/run/veilchain/signer.p12"


def test_required_secrets_have_no_default(compose):
    env = _env(compose)
    for var in (
        "VEILCHAIN_KMS__MASTER_KEY_HEX",
        "VEILCHAIN_AUTH__JWT_SECRET",
        "VEILCHAIN_CHAIN__PRIVATE_KEY",
        "VEILCHAIN_CHAIN__KEYSTORE_PASSPHRASE",
        "VEILCHAIN_CREDENTIALS__PKCS12_PASSPHRASE",
    ):
        assert ":?" in env[var], f"{var} must be required from the environment"
        assert ":-" not in env[var], f"{var} must not ship a default"


def test_the_signing_bundle_is_mounted_read_only_from_a_required_host_path(compose):
    mounts = compose["services"]["api"]["volumes"]
    signer = [m for m in mounts if m.endswith(":/run/veilchain/signer.p12:ro")]
    assert len(signer) == 1 and signer[0].startswith("${VEILCHAIN_SIGNER_P12:?")


@pytest.mark.parametrize(
    "jwt_secret,message",
    [
        ("veilchain-dev-jwt-secret-not-for-production", "development placeholder"),
        ("short-but-real-secret", "shorter than 32 bytes"),
    ],
)
def test_prod_refuses_placeholder_or_short_jwt_secret(jwt_secret, message):
    with pytest.raises(ValueError, match=message):
        Settings(
            env="prod",
            kms={"master_key_hex": "ab" * 32},
            chain={"private_key": "0x" + "cd" * 32},
            auth={"jwt_secret": jwt_secret},
        )


def test_the_ray_profile_is_what_the_api_is_pointed_at(compose):
    """The ``ray`` profile's nodes (docs/scale.md): started as the tests' two-node cluster is
    (tests/platform/test_ray_executor.py: a head, then a node joining its GCS address, no
    dashboard), run the api's image, read inputs at the api's paths, and are where the api
    sends registrations."""
    services = compose["services"]
    head, worker, api = services["ray-head"], services["ray-worker"], services["api"]
    assert head["profiles"] == worker["profiles"] == ["ray"]
    assert head["image"] == worker["image"] == api["image"]  # the actors import veilchain
    assert head["command"][:3] == ["ray", "start", "--head"] and "--block" in head["command"]
    assert {"--port=6379", "--include-dashboard=false"} <= set(head["command"])
    assert worker["command"] == ["ray", "start", "--address=ray-head:6379", "--block"]
    assert worker["depends_on"]["ray-head"]
    assert _env(compose)["VEILCHAIN_EXECUTOR__ADDRESS"] == "ray-head:6379"
    for svc in (head, worker, api):  # workers read input files at the api's paths
        assert any(str(v).startswith("inputs:/inputs") for v in svc["volumes"])
