"""Compile the Solidity contracts into the committed JSON artifacts.

    .venv/bin/python scripts/compile_contracts.py           # write the artifacts
    .venv/bin/python scripts/compile_contracts.py --check   # exit 1 if a committed one is stale

Uses py-solc-x's ``compile_standard`` with ``scripts/solc_wrapper.js`` as the solc binary
(npm ``solc``, pinned in package.json), ``evmVersion: paris`` (ganache's limit) and the
optimizer. VeilRegistry's artifact ships inside the package (src/veilchain/chain/), so running
Veilchain needs no compiler; the benchmark baseline's artifact stays under contracts/bench/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WRAPPER = ROOT / "scripts" / "solc_wrapper.js"
SOLC_VERSION = "0.8.37"
SETTINGS = {
    "evmVersion": "paris",
    "viaIR": True,
    "optimizer": {"enabled": True, "runs": 200},
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}
# (source, contract name, artifact path), all relative to the repository root.
TARGETS = [
    (
        "contracts/VeilRegistry.sol",
        "VeilRegistry",
        "src/veilchain/chain/VeilRegistry.json",
    ),
    (
        "contracts/bench/PerRecordRegistry.sol",
        "PerRecordRegistry",
        "contracts/bench/PerRecordRegistry.json",
    ),
]


def _compile_one(source: str, name: str) -> dict:
    import solcx
    import solcx.wrapper

    text = (ROOT / source).read_text()
    standard_input = {
        "language": "Solidity",
        "sources": {source: {"content": text}},
        "settings": SETTINGS,
    }
    out = solcx.compile_standard(
        standard_input,
        solc_binary=WRAPPER,
        allow_paths=[str(ROOT)],
    )
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise SystemExit("\n".join(e["formattedMessage"] for e in errors))
    contract = out["contracts"][source][name]
    version = solcx.wrapper.get_solc_version(WRAPPER, with_commit_hash=True)
    if str(version).split("+")[0] != SOLC_VERSION:
        raise SystemExit(f"npm solc is {version}, expected {SOLC_VERSION}: run `npm ci`")
    return {
        "_generated_by": "scripts/compile_contracts.py (do not edit; rerun the script)",
        "contractName": name,
        "sourcePath": source,
        "sourceSha256": hashlib.sha256(text.encode()).hexdigest(),
        "compiler": {"name": "solc (npm solcjs)", "version": str(version)},
        "settings": {k: v for k, v in SETTINGS.items() if k != "outputSelection"},
        "abi": contract["abi"],
        "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
    }


def _render(artifact: dict) -> str:
    return json.dumps(artifact, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if an artifact is stale")
    args = parser.parse_args(argv)
    if shutil.which("node") is None:
        print("node is not on PATH: install Node.js 20 and run `npm ci`", file=sys.stderr)
        return 2
    stale = []
    for source, name, target in TARGETS:
        rendered = _render(_compile_one(source, name))
        path = ROOT / target
        if args.check:
            if not path.exists() or path.read_text() != rendered:
                stale.append(target)
        else:
            path.write_text(rendered)
            print(f"wrote {target}")
    if stale:
        print(
            "stale artifact(s): " + ", ".join(stale) + "; run scripts/compile_contracts.py",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
