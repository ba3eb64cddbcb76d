"""The thin seam between the HTTP layer and ``VeilchainService``.

Routes call these functions; these call the service (and, where the service has no method
yet, the service's own public clients: noted as "wanted in the service" below). They add
only HTTP-side concerns: authorization rules, pagination, an LRU cache of immutable
versions and manifests, and the encrypted upload spool for registration jobs.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import shutil
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fastapi import HTTPException, UploadFile
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from veilchain.config import Settings
from veilchain.errors import (
    AccessDeniedError,
    ConfigError,
    DatasetNotFoundError,
    InputError,
    JobNotFoundError,
    RegistrationStateError,
    VeilchainError,
)
from veilchain.platform import cleanup, jobs
from veilchain.platform.api import schemas as S
from veilchain.platform.auth import Principal
from veilchain.platform.limits import grant_expiry_from_ttl

log = logging.getLogger(__name__)

MAX_UPLOAD_FILES = 5_000
MAX_UPLOAD_BYTES = 512 * 1024 * 1024
MAX_IMAGE_BYTES = 50 * 1024 * 1024
CACHE_VERSIONS = 256


# --- construction --------------------------------------------------------------------
def build_service(settings: Settings):
    from veilchain.platform.service import build_service as _build

    return _build(settings)


def session_factory(service, settings: Settings) -> sessionmaker:
    return service.session_factory


def roles_of(service) -> Callable[..., set[str]]:
    return service.chain.roles_of  # roles_of(address, block=n)


def block_number(service) -> Callable[[], int]:
    return service.chain.block_number


def chain_id(service) -> int:
    cid = getattr(service.chain, "chain_id", None)
    return int(cid) if cid is not None else int(service.chain.backend.chain_id)


# --- immutable version cache ---------------------------------------------------------
class _VersionCache:
    """(dataset, version) -> (on-chain version, manifest, leaves). Versions are append-only
    on chain and manifests content-addressed, so entries never go stale."""

    def __init__(self, size: int = CACHE_VERSIONS):
        self._data: OrderedDict[tuple[int, int], tuple] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def peek(self, dataset_id: int, version: int) -> tuple | None:
        with self._lock:
            return self._data.get((dataset_id, version))

    def get(self, service, dataset_id: int, version: int) -> tuple:
        key = (dataset_id, version)
        with self._lock:
            hit = self._data.get(key)
            if hit:
                self._data.move_to_end(key)
                return hit
        from veilchain.platform.manifest import Manifest

        ver = service.chain.get_version(dataset_id, version)
        manifest = Manifest.from_bytes(service.storage.cat(ver.manifest_cid))
        entry = (ver, manifest, {})
        with self._lock:
            self._data[key] = entry
            while len(self._data) > self._size:
                self._data.popitem(last=False)
        return entry


def _cache(service) -> _VersionCache:
    cache = getattr(service, "_api_version_cache", None)
    if cache is None:
        cache = service._api_version_cache = _VersionCache()
    return cache


def _version(service, dataset_id: int, version: int):
    return _cache(service).get(service, dataset_id, version)


# --- data sets -------------------------------------------------------------------------
def _uploader(session: Session, dataset_id: int) -> str | None:
    stmt = (
        select(jobs.Job.owner, jobs.Job.result)
        .where(jobs.Job.kind == "register", jobs.Job.status == "succeeded")
        .order_by(jobs.Job.created_at)
    )
    for owner, result in session.execute(stmt):
        if result and result.get("dataset_id") == dataset_id:
            return owner
    return None


def _summary(d) -> S.DatasetSummary:
    return S.DatasetSummary(
        id=d.dataset_id,
        name=d.name or f"dataset {d.dataset_id}",
        owner=d.owner,
        version_count=d.versions,
        record_count=d.latest.get("record_count", 0),
        method=d.latest.get("method", ""),
    )


def list_datasets(service, *, limit: int, offset: int) -> tuple[list[S.DatasetSummary], int]:
    count = service.chain.dataset_count()
    ids = range(1 + offset, min(count, offset + limit) + 1)
    return [_summary(service.get_dataset(i)) for i in ids], count


def _check_dataset(service, dataset_id: int) -> None:
    # Data sets are never deleted: an id at or below a count seen before still exists.
    known = getattr(service, "_api_dataset_count", 0)
    if 1 <= dataset_id <= known:
        return
    known = service._api_dataset_count = service.chain.dataset_count()
    if not 1 <= dataset_id <= known:
        raise DatasetNotFoundError(f"no data set {dataset_id} on the contract; see GET /datasets")


def _attestations(service, dataset_id: int) -> dict[int, list[S.AttestationPublic]]:
    out: dict[int, list[S.AttestationPublic]] = {}
    for a in service.chain.list_attestations(dataset_id):
        out.setdefault(a.version, []).append(
            S.AttestationPublic(
                auditor=a.auditor,
                passed=a.passed,
                report_cid=a.report_cid,
                block_number=a.block_number,
                tx_hash=a.tx_hash,
            )
        )
    return out


def _version_public(ver, attestations: list) -> S.VersionPublic:
    return S.VersionPublic(
        dataset_id=ver.dataset_id,
        version=ver.version,
        merkle_root="0x" + bytes(ver.merkle_root).hex(),
        record_count=ver.record_count,
        manifest_cid=ver.manifest_cid,
        model_hash="0x" + bytes(ver.model_hash).hex(),
        method=ver.method,
        params=ver.params,
        epsilon=ver.epsilon,
        registrant=ver.registrant,
        registered_at=ver.registered_at,
        block_number=ver.block_number,
        tx_hash=ver.tx_hash,
        attestations=attestations,
    )


def get_dataset(service, session: Session, dataset_id: int) -> S.DatasetPublic:
    _check_dataset(service, dataset_id)
    d = service.get_dataset(dataset_id)
    atts = _attestations(service, dataset_id)
    versions = [
        _version_public(_version(service, dataset_id, v)[0], atts.get(v, []))
        for v in range(1, d.versions + 1)
    ]
    return S.DatasetPublic(
        **_summary(d).model_dump(), uploader=_uploader(session, dataset_id), versions=versions
    )


def get_version(service, dataset_id: int, version: int) -> S.VersionPublic:
    _check_dataset(service, dataset_id)
    ver = _version(service, dataset_id, version)[0]
    return _version_public(ver, _attestations(service, dataset_id).get(version, []))


# --- images ----------------------------------------------------------------------------
def records(service, dataset_id: int, version: int) -> list[dict]:
    _check_dataset(service, dataset_id)
    return [r.to_dict() for r in _version(service, dataset_id, version)[1].records]


def _record_obj(service, dataset_id: int, version: int, index: int):
    _check_dataset(service, dataset_id)
    ver, manifest, leaves = _version(service, dataset_id, version)
    if not 0 <= index < len(manifest.records):
        raise HTTPException(
            404, f"data set {dataset_id} v{version} has images 0..{len(manifest.records) - 1}"
        )
    return ver, manifest, leaves, manifest.records[index]


def record(service, dataset_id: int, version: int, index: int) -> dict:
    return _record_obj(service, dataset_id, version, index)[3].to_dict()


def cached_proof_json(service, dataset_id: int, version: int, index: int) -> bytes | None:
    """The proof response body straight from the cache, or None (then call :func:`proof`)."""
    entry = _cache(service).peek(dataset_id, version)
    if entry is None or dataset_id > getattr(service, "_api_dataset_count", 0):
        return None
    return entry[2].get(("json", index))


def proof(service, dataset_id: int, version: int, index: int, *, check: bool) -> S.ProofPublic:
    ver, manifest, leaves, rec = _record_obj(service, dataset_id, version, index)
    leaf = leaves.get(index)
    if leaf is None:
        leaf = leaves[index] = rec.leaf()
    path = manifest.proofs[index]
    verified = None
    if check:
        verified = service.chain.verify_record(
            dataset_id, version, leaf, [bytes.fromhex(p[2:]) for p in path]
        )
    out = S.ProofPublic(
        dataset_id=dataset_id,
        version=version,
        index=index,
        leaf="0x" + leaf.hex(),
        proof=path,
        merkle_root="0x" + bytes(ver.merkle_root).hex(),
        verified_on_chain=verified,
    )
    if not check:
        leaves[("json", index)] = out.model_dump_json().encode()
    return out


# --- uploads and registration jobs ---------------------------------------------------
async def read_upload(files: list[UploadFile], archive: UploadFile | None) -> list[bytes]:
    """Image bytes from uploaded files and/or a zip, with size and count limits."""
    items: list[bytes] = []
    total = 0

    def take(data: bytes, name: str) -> None:
        nonlocal total
        total += len(data)
        if len(data) > MAX_IMAGE_BYTES:
            raise HTTPException(413, f"{name} is larger than {MAX_IMAGE_BYTES >> 20} MiB")
        if total > MAX_UPLOAD_BYTES or len(items) >= MAX_UPLOAD_FILES:
            raise HTTPException(413, "upload too large; split it into several data sets")
        if data:
            items.append(data)

    for f in files:
        take(await f.read(MAX_IMAGE_BYTES + 1), "a file")
    if archive is not None:
        raw = await archive.read(MAX_UPLOAD_BYTES + 1)
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                for info in sorted(zf.infolist(), key=lambda i: i.filename):
                    if info.is_dir() or info.filename.startswith(("__MACOSX/", ".")):
                        continue
                    if info.file_size > MAX_IMAGE_BYTES:
                        raise HTTPException(413, "a zip member is larger than the limit")
                    take(zf.read(info), "a zip member")
        except zipfile.BadZipFile as exc:
            raise InputError("archive is not a readable zip file") from exc
    if not items:
        raise InputError("no images uploaded: send files=… or archive=<zip>")
    return items


def _spool_dir(settings: Settings, job_id: str) -> Path:
    return Path(settings.data_dir).resolve() / "uploads" / job_id


def submit_registration(
    ctx,
    session: Session,
    *,
    owner: str,
    name: str,
    method: str,
    params: dict,
    items: list[bytes],
    allow_recognizable: bool = False,
) -> jobs.Job:
    """Spool the uploads encrypted under the key service (never plaintext on disk) and queue
    a registration job."""
    job = jobs.create_job(
        session=session,
        kind="register",
        owner=owner,
        params={
            "name": name,
            "method": method,
            "method_params": params,
            "allow_recognizable": allow_recognizable,
            "count": len(items),
        },
    )
    spool = _spool_dir(ctx.settings, job.id)
    spool.mkdir(parents=True, exist_ok=True)
    keyset = cleanup.upload_keyset(job.id)
    for i, data in enumerate(items):
        (spool / f"{i:06d}.bin").write_bytes(
            ctx.service.keys.encrypt(data, dataset=keyset, image=f"{i:06d}")
        )
    ctx.worker.notify()
    return job


def _materialize(ctx, job: jobs.Job) -> tuple[Path, list[Path]]:
    """Decrypt the spooled uploads into memory-backed /dev/shm for the anonymizer."""
    if not cleanup.SHM_DIR.is_dir():
        raise ConfigError("/dev/shm is missing: uploads are decrypted only into memory")
    tmp = cleanup.job_tmp_dir(job.id)
    tmp.mkdir(mode=0o700, exist_ok=True)
    keyset, paths = cleanup.upload_keyset(job.id), []
    for blob in sorted(_spool_dir(ctx.settings, job.id).glob("*.bin")):
        path = tmp / f"{blob.stem}.img"
        if not path.exists():
            data = ctx.service.keys.decrypt(blob.read_bytes(), dataset=keyset, image=blob.stem)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        paths.append(path)
    return tmp, paths


def _run_registration(ctx, job: jobs.Job, progress: jobs.Progress) -> dict:
    try:
        return _registration_job(ctx, job, progress)
    except Exception as exc:  # failed or aborted: shred the originals (then record the failure)
        reason = str(exc) if isinstance(exc, VeilchainError) else type(exc).__name__
        cleanup.shred_job(ctx.service, ctx.settings.data_dir, job.id, reason=reason, actor="api")
        raise


def _registration_job(ctx, job: jobs.Job, outer: jobs.Progress) -> dict:
    service, p = ctx.service, job.params
    allow = bool(p.get("allow_recognizable"))

    def progress(done: int, total: int, stage: str = "") -> None:
        if cleanup.abort_requested(job.id):
            raise cleanup.JobAbortedError(f"job {job.id} was aborted")
        outer(done, total, stage)

    tmp, paths = _materialize(ctx, job)
    try:
        # A resumed job first looks for its own registration (by the spool path of its
        # images): finished -> its result; interrupted -> resume it (which looks on chain for
        # its transaction before sending one); aborted -> fail; none -> register now.
        found = cleanup.registration_of_job(service, job.id) if p.get("resume") else None
        if found and found[1] == "registered":
            result = service.registration_result(found[0])
        elif found and found[1] in ("processing", "submitting"):
            result = service.resume(found[0], allow_recognizable=allow, progress=progress)[0]
        elif found:
            raise RegistrationStateError(f"registration {found[0]} of this job was aborted")
        else:
            result = service.register(
                paths,
                name=p["name"],
                method=p["method"],
                epsilon=p["method_params"].get("epsilon"),
                seed=p["method_params"].get("seed"),
                allow_recognizable=allow,
                progress=progress,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    service.keys.delete_keys(cleanup.upload_keyset(job.id), actor="api")
    shutil.rmtree(_spool_dir(ctx.settings, job.id), ignore_errors=True)
    return result.to_dict()


# --- verification jobs ---------------------------------------------------------------------
def submit_verification(
    ctx, session: Session, *, owner: str, dataset_id: int, version: int, attest: bool
) -> jobs.Job:
    _check_dataset(ctx.service, dataset_id)
    _version(ctx.service, dataset_id, version)  # UnknownVersion -> 404 now, not in the job
    job = jobs.create_job(
        session=session,
        kind="verify",
        owner=owner,
        params={"dataset_id": dataset_id, "version": version, "attest": attest},
    )
    ctx.worker.notify()
    return job


def _run_verification(ctx, job: jobs.Job, progress: jobs.Progress) -> dict:
    p = job.params
    report = ctx.service.verify(p["dataset_id"], p["version"], progress=progress)
    out = S.VerificationReport(
        dataset_id=report.dataset_id,
        version=report.version,
        passed=report.ok,
        root_matches=report.computed_root == report.chain_root,
        problems=report.problems,
        images=[
            S.ImageVerdict(index=c.index, image_id=c.image_id, ok=c.ok, problems=c.problems)
            for c in report.images
        ],
    )
    if p.get("attest"):
        progress(len(report.images), len(report.images), "attest")
        att = ctx.service.attest(report)
        out.report_cid, out.attest_tx = att["report_cid"], att["tx_hash"]
    return out.model_dump()


def abort_job(ctx, session: Session, job_id: str, user: Principal) -> S.JobPublic:
    """DELETE /jobs/{id}: stop a job and shred its uploads. A queued or failed job is shredded
    now; a running one stops at its next step, then is shredded; a succeeded job is 409."""
    from sqlalchemy import update

    job = jobs.get_job(session=session, job_id=job_id)
    if job.owner != user.address and not user.has("admin"):
        raise JobNotFoundError(f"no job {job_id!r}; list jobs with GET /jobs")
    if job.status == "succeeded":
        raise RegistrationStateError(f"job {job_id} already succeeded; nothing to abort")
    reason = f"aborted by {user.address}"
    if job.status == "running":
        cleanup.request_abort(job_id)
    else:
        if job.status == "queued":
            session.execute(
                update(jobs.Job)
                .where(jobs.Job.id == job_id, jobs.Job.status == "queued")
                .values(status="failed", error=reason, stage="failed")
            )
            session.commit()
        if job.kind == "register":
            cleanup.shred_job(ctx.service, ctx.settings.data_dir, job_id, reason=reason,
                              actor=user.address)  # fmt: skip
    session.refresh(job)
    return S.JobPublic.model_validate(job)


def job_handlers(ctx) -> dict:
    return {
        "register": lambda job, progress: _run_registration(ctx, job, progress),
        "verify": lambda job, progress: _run_verification(ctx, job, progress),
    }


# --- grants ------------------------------------------------------------------------------
def _owner_of(service, session: Session, dataset_id: int) -> set[str]:
    """Who may grant: the on-chain owner, and the institution that uploaded it here."""
    _check_dataset(service, dataset_id)
    owners = {service.chain.get_dataset(dataset_id).owner}
    uploader = _uploader(session, dataset_id)
    if uploader:
        owners.add(uploader)
    return owners


def _require_owner(service, session: Session, dataset_id: int, user: Principal) -> None:
    owners = _owner_of(service, session, dataset_id)
    chain_owner = service.chain.get_dataset(dataset_id).owner
    if user.address == chain_owner or (user.address in owners and user.has("institution")):
        return
    raise AccessDeniedError(f"only the owner of data set {dataset_id} may change its grants")


def _ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _grant_public(g) -> S.GrantPublic:
    state = "revoked" if g.revoked else ("live" if g.active else "expired")
    return S.GrantPublic(
        dataset_id=g.dataset_id,
        grantee=g.grantee,
        expires_at=_ts(g.expires_at),
        granted_at=_ts(g.granted_at) if g.granted_at else None,
        state=state,
    )


def list_grants(service, session: Session, dataset_id: int, user: Principal) -> list:
    owners = _owner_of(service, session, dataset_id)
    grants = [_grant_public(g) for g in service.chain.list_grants(dataset_id)]
    if user.address in owners or user.has("admin", "auditor"):
        return grants
    return [g for g in grants if g.grantee == user.address]


def grant(service, session: Session, dataset_id: int, user: Principal, body) -> S.GrantPublic:
    _require_owner(service, session, dataset_id, user)
    if body.expires_at is not None:
        expires = int(body.expires_at.timestamp())
    else:
        expires = grant_expiry_from_ttl(body.ttl_s, chain_now=service.chain.block_timestamp())
    from eth_utils import to_checksum_address

    grantee = to_checksum_address(body.grantee)
    done = service.grant(dataset_id, grantee, expires_at=expires)
    g = service.chain.get_grant(dataset_id, grantee)
    return _grant_public(g).model_copy(update={"tx_hash": done["tx_hash"]})


def revoke(service, session: Session, dataset_id: int, user: Principal, grantee: str):
    from eth_utils import to_checksum_address

    _require_owner(service, session, dataset_id, user)
    grantee = to_checksum_address(grantee)
    if service.chain.get_grant(dataset_id, grantee) is None:
        raise HTTPException(404, f"{grantee} holds no grant on data set {dataset_id}")
    done = service.revoke(dataset_id, grantee)
    g = service.chain.get_grant(dataset_id, grantee)
    return _grant_public(g).model_copy(update={"tx_hash": done["tx_hash"]})


# --- key release and content ---------------------------------------------------------------
SEAL_SCHEME = "x25519-xsalsa20-poly1305 (libsodium sealed box)"


def release_key(
    service, dataset_id: int, version: int, index: int, user: Principal, public_key_b64: str
) -> S.SealedKeyPublic:
    try:
        recipient = base64.b64decode(public_key_b64, validate=True)
    except ValueError as exc:
        raise InputError("public_key must be 32 bytes of standard base64") from exc
    if len(recipient) != 32:
        raise InputError("public_key must be a 32-byte X25519 key")
    rec = _record_obj(service, dataset_id, version, index)[3]
    sealed = service.release_key_for(user.address, dataset_id, version, rec.image_id, recipient)
    return S.SealedKeyPublic(
        dataset_id=dataset_id,
        version=version,
        index=index,
        image_id=rec.image_id,
        cid=rec.cid,
        scheme=SEAL_SCHEME,
        sealed_key=base64.b64encode(sealed).decode(),
    )


def fetch_image(
    service, dataset_id: int, version: int, index: int, user: Principal
) -> tuple[bytes, str]:
    """Decrypted bytes for a grantee (grant check and audit happen in the service)."""
    plain = service.fetch_for(user.address, dataset_id, index, version=version)
    media = "image/png" if plain.startswith(b"\x89PNG") else "application/octet-stream"
    return plain, media


# --- audit ---------------------------------------------------------------------------------
def _entry(e) -> S.AuditEntryPublic:
    return S.AuditEntryPublic(
        seq=e.seq,
        ts=e.ts,
        event=e.event,
        actor=e.actor,
        subject=e.subject,
        details=e.details,
        entry_hash=e.entry_hash,
    )


def audit_query(service, *, event, subject, since_seq, limit) -> list[S.AuditEntryPublic]:
    if since_seq is None and event is None and subject is None:
        since_seq = max(service.audit.head()[0] - limit, 0)  # the newest page
    rows = service.audit.query(event=event, subject=subject, since_seq=since_seq, limit=limit)
    return [_entry(e) for e in rows]


def audit_verify(service) -> S.AuditVerificationPublic:
    v = service.audit.verify()
    anchor = service.chain.latest_audit_anchor()
    anchored = None
    if anchor is not None:
        anchored = service.audit.verify_anchor(anchor.root, anchor.entry_count)
    return S.AuditVerificationPublic(
        ok=v.ok and anchored is not False,
        entries=v.entries,
        head=v.head_hash,
        broken_at=v.first_bad_seq,
        reason=v.reason or (None if anchored is not False else "on-chain anchor differs"),
        anchored=anchored,
    )


def audit_anchor(service, *, actor: str) -> S.AuditAnchorPublic:
    done = service.anchor_audit()
    return S.AuditAnchorPublic(root=done["root"], count=done["count"], tx_hash=done["tx_hash"])


def audit_latest_anchor(service) -> S.AuditAnchorPublic | None:
    a = service.chain.latest_audit_anchor()
    if a is None:
        return None
    return S.AuditAnchorPublic(
        root="0x" + bytes(a.root).hex(),
        count=a.entry_count,
        block_number=a.block_number,
        anchored_at=a.anchored_at,
    )
