"""docs/vectors: the files an outside verifier checks itself against, reproduced byte for byte
here and by the JavaScript verifier's own test (node --test verifiers/js/test, run below).

Regenerate the derived files after changing a vector's input:
``PYTHONPATH=src python -m tests.platform.test_manifest_vectors --write``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import rfc8785
from eth_abi import encode
from eth_utils import keccak

from tests.servers import server_missing
from veilchain.chain.merkle import build_merkle_tree
from veilchain.platform.manifest import ImageRecord, Manifest, chain_params_text
from veilchain.platform.storage import compute_cid

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "docs" / "vectors"
CID_SIZES = (0, 1, 1024, 262144, 262145, 174 * 262144, 174 * 262144 + 1)


def payload(n: int) -> bytes:
    """The CID vectors' content: sha256(uint32be(0)) || sha256(uint32be(1)) || ..., cut to n."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(i.to_bytes(4, "big")).digest()
        i += 1
    return bytes(out[:n])


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def derive_example(manifest_bytes: bytes) -> dict:
    """Every intermediate value of docs/manifest.md's recipe, from the library primitives."""
    m = json.loads(manifest_bytes)
    records, leaves = [], []
    for r in m["records"]:
        report_jcs = rfc8785.dumps(r["report"])
        report_sha = hashlib.sha256(report_jcs).digest()
        encoded = encode(
            ["uint256", "string", "string", "bytes32", "bytes32", "bytes32"],
            [r["index"], r["image_id"], r["cid"], bytes.fromhex(r["ciphertext_sha256"]),
             bytes.fromhex(r["anonymized_sha256"]), report_sha],
        )  # fmt: skip
        inner = keccak(encoded)
        leaves.append(keccak(inner))
        records.append({
            "index": r["index"], "report_jcs": report_jcs.decode("utf-8"),
            "report_sha256": report_sha.hex(), "abi_encoded": _hex(encoded),
            "inner": _hex(inner), "leaf": _hex(leaves[-1]),
        })  # fmt: skip
    levels = [leaves]
    while len(levels[-1]) > 1:
        lv, nxt = levels[-1], []
        for i in range(0, len(lv) - 1, 2):
            nxt.append(keccak(min(lv[i], lv[i + 1]) + max(lv[i], lv[i + 1])))
        if len(lv) % 2:
            nxt.append(lv[-1])
        levels.append(nxt)
    return {
        "manifest_cid": compute_cid(manifest_bytes),
        "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
        "chain_params": rfc8785.dumps(m["anonymization"]["params"]).decode("utf-8"),
        "records": records,
        "tree_levels": [[_hex(x) for x in lv] for lv in levels],
        "root": _hex(levels[-1][0]),
    }


def derive_cids() -> dict:
    return {
        "about": "content = sha256(uint32be(0)) || sha256(uint32be(1)) || ... cut to `bytes`; "
        "cid = ipfs add --cid-version=1 --raw-leaves (docs/storage.md)",
        "vectors": [{"bytes": n, "cid": compute_cid(payload(n))} for n in CID_SIZES],
    }


def derive_malformed(manifest_bytes: bytes) -> dict:
    """Broken variants of the example manifest and the one-line problem both verifiers give."""
    from veilchain.errors import InputError

    def edited(edit) -> str:
        d = json.loads(manifest_bytes)
        edit(d)
        return rfc8785.dumps(d).decode("utf-8")

    def put(path, value):
        def edit(d):
            *head, last = path
            for k in head:
                d = d[k]
            d[last] = value

        return edit

    text = manifest_bytes.decode("utf-8")
    variants = {
        "not canonical: indented": json.dumps(json.loads(text), indent=1),
        "not canonical: 512.0 for 512": text.replace('"height":512,', '"height":512.0,', 1),
        "a float": text.replace('"size":332044,', '"size":332044.5,', 1),
        "2^53 + 1, not a double": text.replace('"count":3,', '"count":9007199254740993,'),
        "2^53, a double": text.replace('"count":3,', '"count":9007199254740992,'),
        "0.50 for 0.5": text.replace('"size":332044,', '"size":0.50,', 1),
        "index as a string": edited(put(["records", 0, "index"], "0")),
        "chain_id as a number": edited(put(["dataset", "chain_id"], 1337)),
        "upper-case proof hex": edited(
            lambda d: d["records"][1]["proof"].__setitem__(0, d["records"][1]["proof"][0].upper())
        ),
        "sha256 with 0x": edited(put(["records", 2, "ciphertext_sha256"], "0x" + "ab" * 32)),
        "report not an object": edited(put(["records", 0, "report"], [])),
        "no epsilon_milli": edited(lambda d: d["anonymization"].pop("epsilon_milli")),
        "unknown format": edited(put(["format"], "veilchain-manifest/3")),
        # the optional Content Credentials section (docs/provenance.md), when present
        "credentials serial as a number": edited(
            put(
                ["credentials"],
                {
                    "institution": "Example University",
                    "ca_certificate": "-----BEGIN CERTIFICATE-----",
                    "ca_sha256": "ab" * 32,
                    "signer_serial": 5,
                    "signer_sha256": "cd" * 32,
                },
            )
        ),  # fmt: skip
        # the data set statements (description, licence, consent): all three or none
        "description as a number": edited(
            lambda d: d["dataset"].update(description=42, licence="CC-BY-4.0", consent=None)
        ),
        "consent as an object": edited(
            lambda d: d["dataset"].update(description=None, licence=None, consent={"text": "x"})
        ),
        "licence without description and consent": edited(put(["dataset", "licence"], "CC-BY-4.0")),
        # RFC 8785 needs well-formed Unicode (I-JSON): a lone surrogate has no canonical form
        "a lone surrogate in a string": text.replace(
            '"name":"worked example"', '"name":"worked \\ud800example"', 1
        ),
    }
    out = []
    for name, body in variants.items():
        try:
            Manifest.from_bytes(body.encode("utf-8"))
            problem = None
        except InputError as exc:
            problem = str(exc)
        out.append({"name": name, "manifest": body, "problem": problem})
    return {"about": "each manifest must be refused (check C4) with exactly this problem",
            "vectors": out}  # fmt: skip


def _json_file(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def test_example_derivations_match_the_shipped_file():
    manifest = (VECTORS / "example" / "manifest.json").read_bytes()
    expected = json.loads((VECTORS / "example" / "expected.json").read_text())
    assert derive_example(manifest) == expected
    chain = json.loads((VECTORS / "example" / "chain.json").read_text())
    assert expected["manifest_cid"] == chain["manifestCid"]
    assert expected["root"] == chain["merkleRoot"]
    assert expected["chain_params"] == chain["params"]


def test_veilchain_code_agrees_with_the_example():
    data = (VECTORS / "example" / "manifest.json").read_bytes()
    expected = json.loads((VECTORS / "example" / "expected.json").read_text())
    m = Manifest.from_bytes(data)
    assert m.to_bytes() == data and m.format_version == 2
    assert chain_params_text(m.params) == expected["chain_params"]
    raw = json.loads(data)["records"]
    for rec, want, given in zip(m.records, expected["records"], raw, strict=True):
        assert rec.report_bytes.decode() == want["report_jcs"]
        assert "0x" + rec.leaf().hex() == want["leaf"] == given["leaf"]
        assert rec.report_sha256 == given["report_sha256"]
    assert "0x" + build_merkle_tree([r.leaf() for r in m.records]).root.hex() == expected["root"]
    assert isinstance(ImageRecord.from_dict(raw[0]).report["faces"][0]["key"], str)


def test_jcs_vectors():
    for v in json.loads((VECTORS / "jcs.json").read_text())["vectors"]:
        out = rfc8785.dumps(json.loads(v["json"]))
        assert out == v["jcs"].encode("utf-8"), v["name"]
        assert hashlib.sha256(out).hexdigest() == v["sha256"], v["name"]


def test_malformed_manifests_are_refused_with_the_shipped_problem():
    example = (VECTORS / "example" / "manifest.json").read_bytes()
    shipped = json.loads((VECTORS / "malformed.json").read_text())
    assert shipped == derive_malformed(example)
    assert all(v["problem"] for v in shipped["vectors"])


def test_cid_vectors():
    assert json.loads((VECTORS / "cid.json").read_text()) == derive_cids()


def test_js_verifier_reproduces_every_vector():
    """The JavaScript verifier's own tests, on the same files."""
    js = ROOT / "verifiers" / "js"
    if shutil.which("node") is None or not (js / "node_modules" / "canonicalize").exists():
        server_missing("the JS verifier is not installed; run `make install`")
    r = subprocess.run(
        ["node", "--test", "test/"], cwd=js, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "# fail 0" in r.stdout


if __name__ == "__main__" and "--write" in sys.argv:
    _json_file(VECTORS / "cid.json", derive_cids())
    example = (VECTORS / "example" / "manifest.json").read_bytes()
    _json_file(VECTORS / "example" / "expected.json", derive_example(example))
    _json_file(VECTORS / "malformed.json", derive_malformed(example))
