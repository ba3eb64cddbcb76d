"""The JavaScript verifier (verifiers/js) and `veilchain verify --json` against one data set
registered by the Python side on ganache + js-ipfs (and on ganache + the embedded block
store): both must pass honest data and agree on every tamper case."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import server_missing
from veilchain.platform.demo import samples_dir
from veilchain.platform.storage import decode_cid

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "verifiers" / "js"
CLI = [sys.executable, "-m", "veilchain.cli"]


def _require_js() -> None:
    if shutil.which("node") is None or not (JS / "node_modules" / "ethers").exists():
        server_missing("the JS verifier is not installed; run `make install`")


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILCHAIN_")}
    return {**env, "VEILCHAIN_ENV": "test", "PYTHONPATH": str(ROOT / "src")}


def veilchain(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=600, env=_env(), cwd=ROOT
    )


class DataSet:
    def __init__(self, data_dir: Path, rpc: str, ipfs: str | None, inputs: Path, *extra: str):
        self.data_dir, self.rpc, self.ipfs = data_dir, rpc, ipfs
        self.globals = ["--data-dir", str(data_dir), "--rpc", rpc]
        if ipfs:
            self.globals += ["--ipfs", ipfs]
        r = veilchain(*self.globals, "register", str(inputs), "--name", "js", "--method", "blur",
                      "--allow-recognizable", "--json", *extra)  # fmt: skip
        assert r.returncode == 0, r.stderr
        (self.result,) = json.loads(r.stdout)
        book = json.loads((data_dir / "addressbook.json").read_text())
        self.contract = book["chains"]["1337"]["address"]

    def python_verdict(self, version: int | None = None, institution=None) -> tuple[int, dict]:
        extra = ["--version", str(version)] if version else []
        extra += ["--institution", institution] if institution else []
        ds = str(self.result["dataset_id"])
        r = veilchain(*self.globals, "verify", ds, *extra, "--json")
        assert r.returncode in (0, 1), r.stderr
        return r.returncode, json.loads(r.stdout)

    def js_verdict(self, version: int | None = None, institution=None) -> tuple[int, dict]:
        cmd = ["node", str(JS / "verify.js"), "--rpc", self.rpc, "--contract", self.contract,
               "--dataset", str(self.result["dataset_id"])]  # fmt: skip
        cmd += ["--version", str(version)] if version else []
        cmd += ["--institution", institution] if institution else []
        cmd += ["--ipfs", self.ipfs] if self.ipfs else ["--blocks", str(self.data_dir / "ipfs")]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode in (0, 1), r.stderr
        return r.returncode, json.loads(r.stdout)

    def both(self, version: int | None = None, institution=None) -> tuple[dict, dict]:
        """Both verdicts, asserted to agree on everything but the wording and the time."""
        pc, py = self.python_verdict(version, institution)
        jc, js = self.js_verdict(version, institution)
        assert pc == jc and py["ok"] == js["ok"], (py, js)
        for key in ("dataset_id", "version", "manifest_cid", "chain_root", "computed_root",
                    "record_count"):  # fmt: skip
            assert py[key] == js[key], (key, py, js)
        assert [f["image_id"] for f in py["failing"]] == [f["image_id"] for f in js["failing"]]
        assert bool(py["problems"]) == bool(js["problems"]), (py["problems"], js["problems"])
        return py, js


@pytest.fixture(scope="module")
def sample_inputs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("inputs")
    for name in ("astronaut.jpg", "obama.jpg", "biden.jpg"):
        shutil.copy(samples_dir() / name, d / name)
    return d


# the data set statements (docs/manifest.md section 3), published in the manifest
STATEMENTS = ("--description", "Three sample portraits.\nSecond line.", "--licence", "CC-BY-4.0",
              "--consent", "Public-domain press photos; no consent needed.")  # fmt: skip


def _jsipfs_block(repo: Path, cid: str) -> Path:
    key = base64.b32encode(b"\x12\x20" + decode_cid(cid)[3]).decode().rstrip("=")
    return repo / "blocks" / key[-3:-1] / f"{key}.data"


class Tampered:
    """Replace a file's bytes for the duration of a ``with`` block."""

    def __init__(self, path: Path, edit):
        self.path, self.edit = path, edit

    def __enter__(self):
        self.original = self.path.read_bytes()
        self.path.write_bytes(self.edit(self.original))

    def __exit__(self, *exc):
        self.path.write_bytes(self.original)


def _flip(data: bytes, at: int = 100) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x80]) + data[at + 1 :]


@pytest.fixture(scope="module")
def on_jsipfs(tmp_path_factory, ganache_url, ipfs_daemon, sample_inputs):
    _require_js()
    return DataSet(tmp_path_factory.mktemp("js-ipfs"), ganache_url, ipfs_daemon.api_addr,
                   sample_inputs, *STATEMENTS)  # fmt: skip


def test_register_json_reports_gas_and_tx_on_ganache(on_jsipfs):
    res = on_jsipfs.result
    assert res["records"] == 3 and res["gas_used"] > 50_000 and len(res["tx_hash"]) == 66


def test_honest_data_passes_both(on_jsipfs):
    py, js = on_jsipfs.both()
    assert py["ok"] and js["ok"] and py["computed_root"] == py["chain_root"]


def test_trusted_institution_is_checked_by_both(on_jsipfs):
    r = veilchain(*on_jsipfs.globals, "chain", "info", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["contract"] == on_jsipfs.contract
    assert info["institution"] in [i["address"] for i in info["institutions"]]
    py, js = on_jsipfs.both(institution=info["institution"].lower())
    assert py["ok"] and js["ok"]
    py, js = on_jsipfs.both(institution=info["admin"])
    assert not js["ok"] and not js["failing"]
    assert all(v["problems"][0].startswith("registrant ") for v in (py, js))


def test_flipped_ciphertext_byte_is_named_by_both(on_jsipfs, ipfs_daemon):
    manifest = json.loads(_cat(on_jsipfs, on_jsipfs.result["manifest_cid"]))
    cid = manifest["records"][1]["cid"]
    with Tampered(_jsipfs_block(ipfs_daemon.repo, cid), _flip):
        py, js = on_jsipfs.both()
    assert not py["ok"] and [f["image_id"] for f in js["failing"]] == ["000001"]
    assert "tampered" in js["failing"][0]["problems"][0]
    assert on_jsipfs.both()[1]["ok"]


def test_edited_manifest_fails_both(on_jsipfs, ipfs_daemon):
    def hide_faces(raw: bytes) -> bytes:
        edited = json.loads(raw)
        edited["records"][0]["report"]["faces"] = []
        return json.dumps(edited, separators=(",", ":"), sort_keys=True).encode()

    block = _jsipfs_block(ipfs_daemon.repo, on_jsipfs.result["manifest_cid"])
    with Tampered(block, hide_faces):
        py, js = on_jsipfs.both()
    assert not py["ok"] and js["problems"][0].startswith("manifest ")


def _add_version(ds: DataSet, **change) -> int:
    """A new on-chain version of the data set, the same as v1 except for ``change``."""
    from veilchain.config import Settings
    from veilchain.platform.wiring import build_service

    chain, ipfs = {"rpc_url": ds.rpc}, {"api_url": ds.ipfs}
    settings = Settings(data_dir=ds.data_dir, env="test", chain=chain, ipfs=ipfs)
    svc = build_service(settings)
    dataset_id = ds.result["dataset_id"]
    ver = svc.chain.get_version(dataset_id, 1)
    fields = dict(
        merkle_root=ver.merkle_root, record_count=ver.record_count,
        manifest_cid=ver.manifest_cid, model_hash=ver.model_hash, method=ver.method,
        params=ver.params, epsilon_milli=ver.epsilon_milli,
    )  # fmt: skip
    fields.update(change)
    return svc.as_role("institution").add_version(dataset_id, **fields).version


def test_forged_root_fails_both(on_jsipfs):
    """A version whose on-chain root is not the manifest's: every record fails its proof."""
    version = _add_version(on_jsipfs, merkle_root=b"\x11" * 32)
    py, js = on_jsipfs.both(version)
    assert not js["ok"] and len(js["failing"]) == 3
    assert all("Merkle root" in f["problems"][-1] for f in js["failing"])


def test_chain_params_and_epsilon_differing_from_the_manifest_fail_both(on_jsipfs):
    version = _add_version(on_jsipfs, params='{"sigma_iod":"9"}', epsilon_milli=7)
    py, js = on_jsipfs.both(version)
    assert not js["ok"] and not js["failing"] and len(js["problems"]) == len(py["problems"]) == 2


def test_unknown_data_set_is_exit_7_for_both(on_jsipfs):
    r = veilchain(*on_jsipfs.globals, "verify", "99", "--json")
    cmd = ["node", str(JS / "verify.js"), "--rpc", on_jsipfs.rpc, "--contract",
           on_jsipfs.contract, "--dataset", "99", "--ipfs", on_jsipfs.ipfs]  # fmt: skip
    js = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == js.returncode == 7, (r.stderr, js.stderr)
    assert js.stderr.startswith("error: ") and js.stderr.count("\n") == 1


def test_statements_are_published_and_a_wrong_type_is_refused_by_both(on_jsipfs):
    """The manifest of v1 carries the statements and passes both; the same manifest with a
    number for its description, pinned and anchored as a new version, fails C4 in both."""
    import rfc8785

    from veilchain.platform.storage import build_storage

    manifest = json.loads(_cat(on_jsipfs, on_jsipfs.result["manifest_cid"]))
    assert manifest["dataset"]["description"] == "Three sample portraits.\nSecond line."
    assert manifest["dataset"]["licence"] == "CC-BY-4.0"
    manifest["dataset"]["description"] = 42
    storage = build_storage(api_url=on_jsipfs.ipfs, data_dir=on_jsipfs.data_dir)
    version = _add_version(on_jsipfs, manifest_cid=storage.add(rfc8785.dumps(manifest)))
    py, js = on_jsipfs.both(version)
    assert not py["ok"] and not js["failing"] and py["computed_root"] is None
    for verdict in (py, js):
        assert verdict["problems"][-1].endswith(
            "not valid veilchain-manifest/2 JSON: dataset.description must be a string or null"
        ), verdict["problems"]


def _cat(ds: DataSet, cid: str) -> bytes:
    from veilchain.platform.storage import build_storage

    return build_storage(api_url=ds.ipfs, data_dir=ds.data_dir).cat(cid)


def test_block_folder_of_the_embedded_store(tmp_path_factory, ganache_url, sample_inputs):
    """The JS verifier reads the embedded block store's folder directly (--blocks)."""
    _require_js()
    ds = DataSet(tmp_path_factory.mktemp("blocks"), ganache_url, None, sample_inputs)
    py, js = ds.both()
    assert py["ok"] and js["ok"]
    manifest = json.loads(_cat(ds, ds.result["manifest_cid"]))
    cid = manifest["records"][2]["cid"]
    path = ds.data_dir / "ipfs" / "objects" / cid[-3:-1] / cid
    with Tampered(path, _flip):
        py, js = ds.both()
    assert [f["image_id"] for f in js["failing"]] == ["000002"]
