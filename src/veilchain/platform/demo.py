"""`veilchain demo`: the whole job on embedded defaults, on sample photos that ship with the
package (their sources are in veilchain/data/samples/SOURCES.md).

register -> verify -> grant -> fetch as the grantee -> a stranger refused -> revoke -> refused
-> one flipped ciphertext byte caught by verify -> byte restored -> audit log anchored.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from veilchain.client import Grantee
from veilchain.errors import AccessDeniedError, ModelLoadError, VeilchainError
from veilchain.platform.service import VeilchainService

PREFERRED_METHODS = ("ciagan", "dp", "mask")


def samples_dir() -> Path:
    return Path(str(resources.files("veilchain") / "data" / "samples"))


def best_method(service: VeilchainService) -> str:
    """The first method in PREFERRED_METHODS whose model loads here."""
    for method in PREFERRED_METHODS:
        try:
            service.registrar.anonymizer_factory(method, seed=service.registrar.seed)
            return method
        except ModelLoadError:
            continue
    return PREFERRED_METHODS[-1]


def run_demo(
    service: VeilchainService, *, method: str | None = None, say: Callable[[str], None] = print
) -> dict:
    """Run every step; returns a summary whose ``ok`` is true only if each check held."""
    t0 = time.perf_counter()
    steps: list[dict] = []

    def step(name: str, ok: bool, detail: str) -> None:
        steps.append({"step": name, "ok": ok, "detail": detail})
        mark = "[green]ok[/green]" if ok else "[red]FAILED[/red]"
        say(f"{mark:>22}  {name}: {detail}")

    method = method or best_method(service)
    src = samples_dir()
    say(f"Veilchain demo: {len(list(src.glob('*.jpg')))} sample photos from {src}, method {method}")
    res = service.register([src], name="veilchain-demo", method=method, allow_recognizable=True)
    step(
        "register",
        True,
        f"data set {res.dataset_id} v{res.version}: {res.records} images, {res.faces} faces"
        f" ({res.faces_failed} still matched by dlib), manifest {res.manifest_cid}",
    )

    report = service.verify(res.dataset_id)
    step("verify", report.ok, f"{report.record_count} records match the chain's root"
         f" in {report.seconds:.2f} s, no key used")  # fmt: skip

    keystore = service.keystore
    grantee, stranger = keystore.get_or_create("grantee"), keystore.get_or_create("stranger")
    expires = service.chain.block_timestamp() + 86_400
    service.grant(res.dataset_id, grantee.address, expires_at=expires)
    step("grant", service.chain.has_access(res.dataset_id, grantee.address),
         f"{grantee.address} may read data set {res.dataset_id} for 24 h")  # fmt: skip

    record = service.image_record(res.dataset_id, 0)
    plain = Grantee(service, grantee).fetch(res.dataset_id, 0)
    same = hashlib.sha256(plain).hexdigest() == record["anonymized_sha256"]
    step("fetch", same, f"grantee decrypted image 0 ({len(plain)} bytes PNG), sha256 matches")

    step("stranger refused", _refused(service, stranger, res.dataset_id),
         f"{stranger.address} has no grant: key release refused and audited")  # fmt: skip

    service.revoke(res.dataset_id, grantee.address)
    step("revoke", _refused(service, grantee, res.dataset_id),
         "after revocation the grantee's next request is refused")  # fmt: skip

    victim = report.images[min(2, len(report.images) - 1)]
    flipped = _flip_byte(service, victim.cid)
    if flipped is None:
        step("tamper", True, "skipped: storage is a daemon, no local file to flip")
    else:
        try:
            bad = service.verify(res.dataset_id)
        finally:
            _flip_byte(service, victim.cid)  # put the byte back
        named = [i.image_id for i in bad.failing]
        caught = (not bad.ok) and named == [victim.image_id]
        why = "; ".join(bad.failing[0].problems) if named else "nothing flagged"
        detail = f"flipped 1 byte of {flipped.name}: verify names image {', '.join(named)}: {why}"
        step("tamper caught", caught, detail)
        step("restored", service.verify(res.dataset_id).ok, "byte restored, verify passes again")

    anchor = service.anchor_audit()
    audit = service.audit.verify()
    step("audit", audit.ok, f"{anchor['count']} hash-chained entries, root {anchor['root'][:18]}"
         "... anchored on chain")  # fmt: skip

    ok = all(s["ok"] for s in steps)
    seconds = time.perf_counter() - t0
    say(f"{'All checks passed' if ok else 'SOME CHECKS FAILED'} in {seconds:.1f} s.")
    return {"ok": ok, "seconds": round(seconds, 2), "method": method,
            "registration": res.to_dict(), "steps": steps}  # fmt: skip


def _refused(service: VeilchainService, account, dataset_id: int) -> bool:
    try:
        Grantee(service, account).fetch(dataset_id, 0)
    except AccessDeniedError:
        return True
    except VeilchainError:
        return False
    return False


def _flip_byte(service: VeilchainService, cid: str) -> Path | None:
    """Flip the middle byte of a ciphertext in the embedded block store (self-inverse)."""
    object_path = getattr(service.storage.backend, "object_path", None)
    if object_path is None:
        return None
    path = object_path(cid)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return path
