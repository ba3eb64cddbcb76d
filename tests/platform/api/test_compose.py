"""docker-compose.yml: pinned images, admin ports on loopback, every setting the API needs."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
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
    assert _env(compose)["VEILCHAIN_EXECUTOR__UPLOAD_URL"] == "http://api:8000"  # uploads
    for svc in (head, worker, api):  # workers read input files at the api's paths
        assert any(str(v).startswith("inputs:/inputs") for v in svc["volumes"])


# --- the `ray` profile run as far as one machine allows (no Docker engine here) -------------
_COMPOSE_RUN = r"""
set -eu
ip link set lo up                       # the namespace's only interface
mount -t tmpfs -o size="$SHM_RAY" tmpfs /dev/shm   # the Ray containers' shm_size
printf '127.0.0.1 localhost api ray-head ray-worker\n' > "$RUN/hosts"
mount --bind "$RUN/hosts" /etc/hosts    # the compose network's service names
export RAY_TMPDIR="$RUN"                # Ray's session files: this run's, not /tmp/ray
$HEAD_CMD > "$RUN/head.log" 2>&1 & head=$!
gcs_up="import socket; socket.create_connection(('ray-head', 6379), 1)"
for _ in $(seq 240); do python -c "$gcs_up" 2>/dev/null && break; sleep 0.5; done
$WORKER_CMD > "$RUN/worker.log" 2>&1 & worker=$!
# the api container: a /dev/shm of its own, as its shm_size gives it
env $API_ENV unshare --mount sh -c 'mount -t tmpfs -o size="$SHM_API" tmpfs /dev/shm && exec "$@"' \
    sh $API_CMD > "$RUN/api.log" 2>&1 & api=$!
rc=0
python -m tests.platform.api.compose_client "$DATA" ray-head:6379 > "$RUN/client.json" || rc=$?
kill $api $worker $head; wait || true
exit $rc
"""


def _tmpfs_size(service: dict) -> str:
    """A compose ``shm_size`` ("1gb") as a tmpfs size ("1g")."""
    return str(service["shm_size"]).lower().removesuffix("b")


def _can_isolate() -> bool:
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("ip")):
        return False
    probe = ["unshare", "--net", "--mount", "sh", "-c", "ip link set lo up"]
    return subprocess.run(probe, capture_output=True).returncode == 0


@pytest.mark.slow
def test_the_ray_profile_runs_as_written_in_a_loopback_only_network(compose, tmp_path):
    """Not Docker: the ``ray`` profile's ray-head and ray-worker commands and the Dockerfile's
    api command, run as written (``ray start --head --port=6379 --num-cpus=0 ...``, ``ray
    start --address=ray-head:6379 --block``, ``veilchain serve --host 0.0.0.0 --port 8000``)
    with the api's executor variables from the compose file, in a network namespace whose
    only interface is loopback (so 6379 and 8000 are free, every address is 127.0.0.1, and
    nothing leaves the machine) with ``ray-head`` and ``api`` resolving to it, and the api
    in a mount namespace of its own /dev/shm. An upload registered through the api on that
    cluster: the actors run on the worker (the head has no CPUs) and read the upload only
    through the api's signed links (its /dev/shm is not theirs).

    Differs from ``docker compose --profile ray up``: no images (this machine's venv, as
    root, not the image's user 10001), one network namespace for all three (one loopback,
    not a bridge with an address each), the api on the test environment's embedded chain,
    block store and SQLite (ganache, ipfs and postgres are not started), no volumes."""
    if not _can_isolate():
        pytest.skip("needs root, unshare(1) and ip(8) for a loopback-only network namespace")
    services = compose["services"]
    head, worker = services["ray-head"]["command"], services["ray-worker"]["command"]
    cmd_line = (ROOT / "Dockerfile").read_text().rsplit("\nCMD ", 1)[1].strip()
    api_cmd = json.loads(cmd_line)
    assert api_cmd[:2] == ["veilchain", "serve"]
    chosen = {"VEILCHAIN_EXECUTOR__KIND": "ray"}  # as `VEILCHAIN_EXECUTOR__KIND=ray docker ...`
    executor = {k: _fill(v, chosen) for k, v in _env(compose).items()
                if k.startswith("VEILCHAIN_EXECUTOR__")}  # fmt: skip
    assert executor["VEILCHAIN_EXECUTOR__KIND"] == "ray"
    data = tmp_path / "data"
    api_env = {**executor, "VEILCHAIN_ENV": "test", "VEILCHAIN_DATA_DIR": str(data)}
    run = Path(tempfile.mkdtemp(prefix="vrc", dir="/tmp"))  # short: Ray's socket paths
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VEILCHAIN_", "RAY_"))}
    env.update(RUN=str(run), DATA=str(data), SHM_RAY=_tmpfs_size(services["ray-head"]),
               SHM_API=_tmpfs_size(services["api"]),
               HEAD_CMD=shlex.join(head), WORKER_CMD=shlex.join(worker),
               API_CMD=shlex.join(api_cmd),
               API_ENV=" ".join(f"{k}={v}" for k, v in api_env.items()),
               PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
               # `ray`, `veilchain` and `python` as the image has them: this venv's
               PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
               )  # fmt: skip
    try:
        proc = subprocess.run(
            ["unshare", "--net", "--mount", "--fork", "bash", "-c", _COMPOSE_RUN],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=560,
        )  # fmt: skip
        logs = {n: (run / f"{n}.log").read_text()[-1500:] for n in ("head", "worker", "api")
                if (run / f"{n}.log").exists()}  # fmt: skip
        assert proc.returncode == 0, (proc.stderr[-2000:], logs)
        seen = json.loads((run / "client.json").read_text())
    finally:
        shutil.rmtree(run, ignore_errors=True)
    assert sorted(n["cpus"] for n in seen["nodes"]) == [0, os.cpu_count()], seen["nodes"]
    assert {n["ip"] for n in seen["nodes"]} == {"127.0.0.1"}
    assert seen["status"] == "succeeded", (seen["error"], logs)
    assert seen["records"] == 3
    assert seen["served_by_links"] == [3], "the workers did not read the upload by its links"
    assert seen["upload_visible_to_workers"] is False
