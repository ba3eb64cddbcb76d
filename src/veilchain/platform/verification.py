"""Keyless verification of a data set version against the chain (docs/manifest.md, section 2).

``verify_version`` runs the ordered check list an outside auditor runs: the version and its
VersionAdded event from the chain, the manifest by its CID, every manifest field that the
chain also records, then every image (CID, sha256, leaf, proof) and the root over all leaves.
The JavaScript verifier in verifiers/js/ implements the same list and prints the same JSON.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from veilchain.chain.merkle import build_merkle_tree, verify_proof
from veilchain.errors import (
    CidMismatchError,
    ContentNotFoundError,
    InputError,
    StorageError,
)
from veilchain.platform.manifest import (
    Manifest,
    chain_params_text,
    epsilon_milli_of,
    image_id_for,
)

Progress = Callable[[int, int, str], None]


@dataclass
class ImageCheck:
    index: int
    image_id: str
    cid: str
    ok: bool
    problems: list[str] = field(default_factory=list)


@dataclass
class VerificationReport:
    dataset_id: int
    version: int
    manifest_cid: str
    chain_root: str
    computed_root: str | None
    record_count: int
    ok: bool
    problems: list[str]
    images: list[ImageCheck]
    seconds: float

    @property
    def failing(self) -> list[ImageCheck]:
        return [i for i in self.images if not i.ok]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["failing"] = [asdict(i) for i in self.failing]
        return d

    def summary(self) -> dict:
        """The verdict per image, as a verification job's result."""
        return {
            "dataset_id": self.dataset_id,
            "version": self.version,
            "passed": self.ok,
            "root_matches": self.computed_root == self.chain_root,
            "problems": self.problems,
            "images": [
                {"index": c.index, "image_id": c.image_id, "ok": c.ok, "problems": c.problems}
                for c in self.images
            ],
        }


def _same_address(a: object, b: str) -> bool:
    return isinstance(a, str) and a.lower() == b.lower()


def manifest_problems(chain, dataset_id: int, version: int, ver, manifest: Manifest, raw: dict):
    """Checks C5-C10 of docs/manifest.md: every manifest field the chain also records."""
    problems: list[str] = []
    chain_root = "0x" + bytes(ver.merkle_root).hex()
    if manifest.merkle_root != chain_root:
        problems.append(
            f"manifest root {manifest.merkle_root} differs from the chain's {chain_root}"
        )
    declared = raw.get("merkle", {}).get("count")
    if declared != len(manifest.records):
        problems.append(f"merkle.count {declared} but the manifest lists {len(manifest.records)}")
    if len(manifest.records) != ver.record_count:
        problems.append(
            f"manifest lists {len(manifest.records)} records, the chain {ver.record_count}"
        )
    if manifest.model_hash != "0x" + bytes(ver.model_hash).hex():
        problems.append("manifest model hash differs from the chain's")
    if manifest.method != ver.method:
        problems.append(f"manifest method {manifest.method} differs from the chain's {ver.method}")
    if manifest.format_version >= 2:
        params_ok = chain_params_text(manifest.params) == ver.params
        eps = raw.get("anonymization", {}).get("epsilon_milli")
    else:  # format 1: json.dumps text; a v1 registration resumed by newer code wrote JCS
        try:
            params_ok = json.loads(ver.params) == manifest.params
        except ValueError:
            params_ok = False
        params_ok = params_ok or chain_params_text(manifest.params) == ver.params
        eps = epsilon_milli_of(manifest.params)
    if not params_ok:
        problems.append("manifest anonymization.params differ from the chain's params")
    if eps != ver.epsilon_milli:
        problems.append(
            f"manifest epsilon_milli {eps} differs from the chain's {ver.epsilon_milli}"
        )
    if manifest.chain_id != chain.backend.chain_id:
        problems.append(
            f"manifest chain_id {manifest.chain_id} is not this chain's {chain.backend.chain_id}"
        )
    if not _same_address(manifest.contract, chain.address):
        problems.append(f"manifest contract {manifest.contract} is not {chain.address}")
    if not _same_address(manifest.institution, ver.registrant):
        problems.append(
            f"manifest institution {manifest.institution} is not the registrant {ver.registrant}"
        )
    prev = manifest.previous_manifest_cid
    if prev is not None:
        earlier = {chain.get_version(dataset_id, v).manifest_cid for v in range(1, version)}
        if prev not in earlier:
            problems.append(
                f"previous_manifest_cid {prev} is no earlier version's manifest on chain"
            )
    return problems


def verify_version(
    chain,
    storage,
    dataset_id: int,
    version: int,
    ver,
    progress: Progress,
    institution: str | None = None,
) -> VerificationReport:
    """The full verdict for one version; ``ver`` is ``chain.get_version(dataset_id, version)``.
    ``institution``: the address the auditor trusts (C2); None skips that check."""
    t0 = time.perf_counter()
    chain_root = "0x" + bytes(ver.merkle_root).hex()

    def report(computed, ok, problems, checks) -> VerificationReport:
        return VerificationReport(
            dataset_id, version, ver.manifest_cid, chain_root, computed, ver.record_count,
            ok, problems, checks, time.perf_counter() - t0,
        )  # fmt: skip

    trusted: list[str] = []
    if institution is not None and not _same_address(institution, ver.registrant):
        trusted.append(f"registrant {ver.registrant} is not the trusted institution {institution}")
    try:
        data = storage.cat(ver.manifest_cid)
        manifest = Manifest.from_bytes(data)
        raw = json.loads(data)
    except (StorageError, InputError) as exc:
        return report(None, False, [*trusted, f"manifest {ver.manifest_cid}: {exc}"], [])
    problems = trusted + manifest_problems(chain, dataset_id, version, ver, manifest, raw)
    checks, leaves = [], []
    root_bytes = bytes(ver.merkle_root)
    total = len(manifest.records)
    for n, (rec, proof) in enumerate(zip(manifest.records, manifest.proofs, strict=True)):
        bad = _record_problems(storage, n, rec)
        try:
            leaf = rec.leaf()
            proof_bytes = [bytes.fromhex(p[2:]) for p in proof]
        except (InputError, ValueError, TypeError):
            bad.append("record fields or proof are not valid hex")
            leaf, proof_bytes = b"\x00" * 32, []
        leaves.append(leaf)
        if not verify_proof(leaf, proof_bytes, root_bytes):
            bad.append("record does not prove into the on-chain Merkle root")
        checks.append(ImageCheck(n, rec.image_id, rec.cid, not bad, bad))
        if n % 50 == 0 or n + 1 == total:
            progress(n + 1, total, "verify")
    computed = "0x" + build_merkle_tree(leaves).root.hex() if leaves else None
    if computed != chain_root:
        problems.append(f"records hash to root {computed}, the chain holds {chain_root}")
    return report(computed, not problems and all(c.ok for c in checks), problems, checks)


def _record_problems(storage, n: int, rec) -> list[str]:
    bad: list[str] = []
    if rec.index != n:
        bad.append(f"record {n} carries index {rec.index}")
    if rec.image_id != image_id_for(rec.index):
        bad.append(f"image_id {rec.image_id} is not the padded index {image_id_for(rec.index)}")
    data = None
    try:
        data = storage.cat(rec.cid)
    except CidMismatchError:
        bad.append("ciphertext bytes do not hash to the recorded CID (tampered)")
    except ContentNotFoundError:
        bad.append(f"ciphertext {rec.cid} is not available")
    except StorageError as exc:
        bad.append(f"ciphertext {rec.cid} unreadable: {exc}")
    if data is not None:
        if hashlib.sha256(data).hexdigest() != rec.ciphertext_sha256:
            bad.append("ciphertext sha256 differs from the manifest")
        if len(data) != rec.size:
            bad.append(f"ciphertext is {len(data)} bytes, the manifest says size {rec.size}")
    return bad
