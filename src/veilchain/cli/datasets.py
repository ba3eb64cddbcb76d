"""Data set commands: register, list, show, verify, grant, revoke, grants, fetch, account."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from veilchain.anonymizer.methods import METHODS
from veilchain.anonymizer.sources import iter_uri_list
from veilchain.cli import app, settings
from veilchain.cli.output import (
    console,
    emit_json,
    errors_to_exit,
    out,
    progress_bar,
    show,
    show_rows,
)
from veilchain.errors import InputError, RegistrationStateError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
QuietOpt = Annotated[
    bool, typer.Option("-q", "--quiet", help="Print only the ID (or CID, or hash).")
]
DatasetArg = Annotated[int, typer.Argument(metavar="DATASET", show_default=False)]
VersionOpt = Annotated[int | None, typer.Option(metavar="N", help="Version (default: the newest).")]


def open_service(*, read_only: bool = False, **sections: dict) -> Any:
    """The service over the data directory. Read-only commands refuse to create one.
    ``sections``: a command's own options over settings sections (``executor={...}``)."""
    from veilchain.platform.wiring import build_service

    cfg = settings(**sections)
    if read_only and not Path(cfg.data_dir).is_dir():
        raise InputError(
            f"no Veilchain data directory at {cfg.data_dir}; run `veilchain demo` or"
            " `veilchain register`, or point --data-dir at one"
        )
    with console.status("opening chain, keys and storage"):
        return build_service(cfg)


# Over 80 lines because typer declares every option in the signature; the body is short.
@app.command()
def register(
    inputs: Annotated[
        list[Path] | None,
        typer.Argument(metavar="PATH", show_default=False),
    ] = None,
    uri_list: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Also register the images at these URIs: one file:// or http(s):// URI a"
            " line (- for standard input; blank lines and # comments skipped), read lazily;"
            " each is fetched where it is anonymized.",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Data set name (required to register)."),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            metavar="METHOD",
            help=f"{' | '.join(METHODS)} (default: VEILCHAIN_ANONYMIZER__METHOD, pixelate).",
        ),
    ] = None,
    epsilon: Annotated[
        float | None, typer.Option(metavar="EPS", help="Privacy budget ε (dp, dppix).")
    ] = None,
    seed: Annotated[int | None, typer.Option(metavar="N", help="Anonymizer seed.")] = None,
    features: Annotated[
        str | None,
        typer.Option(
            metavar="LIST",
            help="ciagan/dp only: regenerate just these features (eyes,nose,mouth).",
        ),
    ] = None,
    description: Annotated[
        str | None,
        typer.Option(metavar="TEXT", help="What the data set holds (published in its manifest)."),
    ] = None,
    licence: Annotated[
        str | None,
        typer.Option(metavar="LICENCE", help="Its licence: an SPDX id (CC-BY-4.0) or one line."),
    ] = None,
    consent: Annotated[
        str | None,
        typer.Option(
            metavar="TEXT",
            help='How the people shown consented (published); long: --consent "$(cat FILE)".',
        ),
    ] = None,
    allow_recognizable: Annotated[
        bool, typer.Option(help="Publish faces that failed the identity check (reported).")
    ] = False,
    resume: Annotated[
        bool, typer.Option(help="Finish this directory's interrupted registrations.")
    ] = False,
    abort: Annotated[
        bool, typer.Option(help="Give up interrupted registrations: shred their keys, unpin.")
    ] = False,
    executor: Annotated[
        str | None,
        typer.Option(
            metavar="KIND",
            help="local (worker processes, the default) | ray (a Ray cluster; docs/scale.md)."
            " Default: VEILCHAIN_EXECUTOR__KIND.",
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            metavar="ADDR",
            help="The Ray cluster (host:port of its head); default: a local Ray instance.",
        ),
    ] = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Anonymize, encrypt, pin and register PATH (image files or folders) and the images
    of a --uri-list as a data set.

    One transaction records the data set on chain. --name is required to register;
    --description, --licence and --consent are published in the manifest, shown on the data
    set card and verified with it. An input that cannot be read (a 404, an image over
    50 MiB) gives the registration up; a server that does not answer (timeout, 5xx) leaves
    it to --resume, which fetches only what is not done.

    Examples:

        veilchain register photos/ --name clinic-2026 --method ciagan

        veilchain register photos/ --name staff --licence CC-BY-4.0 --description "Staff
        portraits" --consent "$(cat consent.txt)"

        veilchain register a.jpg b.png --name test --method dp --epsilon 2 -q

        veilchain register --uri-list urls.txt --name web-2026 --executor ray

        veilchain register photos/ --name big --executor ray --ray-address 10.0.0.5:6379

        veilchain register --resume
    """
    with errors_to_exit(as_json):
        if resume and abort:
            raise InputError("--resume and --abort exclude each other; pick one")
        if not (resume or abort) and (not (inputs or uri_list) or not name):
            raise InputError(
                "give image files, folders or --uri-list, and --name (or --resume / --abort)"
            )
        if (resume or abort) and any(x is not None for x in (description, licence, consent)):
            raise InputError(
                "--description, --licence and --consent describe a new registration;"
                " a resumed one keeps what it was started with"
            )
        if executor not in (None, "local", "ray"):
            raise InputError(f"--executor must be local or ray, not {executor!r}")
        if ray_address and executor == "local":
            raise InputError("--ray-address needs --executor ray")
        svc = open_service(
            anonymizer={"features": features},
            executor={"kind": "ray" if ray_address else executor, "address": ray_address},
        )
        if abort:
            aborted = [r.uid for r in svc.pending_registrations(local_only=True)]
            if not aborted:
                raise RegistrationStateError("no interrupted registration to abort")
            for uid in aborted:
                svc.abort(uid)
            if as_json:
                emit_json({"aborted": aborted})
            else:
                out.print(f"aborted {len(aborted)} registration(s): data keys deleted, unpinned")
            return
        bar, update = progress_bar(as_json or quiet)
        with bar:
            if resume:  # the CLI's own: an API job's leftovers are the server's to resume
                results = svc.resume(
                    allow_recognizable=allow_recognizable, progress=update, local_only=True
                )
            else:
                results = [
                    svc.register(
                        _inputs(inputs or [], uri_list),
                        name=name or "",
                        method=method or settings().anonymizer.method,
                        epsilon=epsilon,
                        seed=seed,
                        allow_recognizable=allow_recognizable,
                        progress=update,
                        description=description,
                        licence=licence,
                        consent=consent,
                    )
                ]
    if as_json:
        emit_json([r.to_dict() for r in results])
        return
    for r in results:
        show(f"registered data set {r.dataset_id} v{r.version}", r.to_dict(),
             quiet=quiet, quiet_key="dataset_id")  # fmt: skip
    if not quiet and results:
        ds = results[-1].dataset_id
        console.print(
            f"next: veilchain verify {ds}   veilchain show {ds} --version"
            f" {results[-1].version}   veilchain grant {ds} --to ADDRESS"
        )


def _inputs(paths: list[Path], uri_list: str | None) -> Iterator[str | Path]:
    """The paths, then the URIs of ``uri_list`` (read lazily, as registration consumes them)."""
    yield from paths
    if uri_list is not None:
        yield from iter_uri_list(uri_list)


@app.command("list")
def list_datasets(
    limit: Annotated[int, typer.Option(metavar="N", help="At most this many.")] = 100,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List the data sets on the contract (id, name, owner, versions, images, method).

    Example: veilchain list -q | xargs -n1 veilchain verify
    """
    with errors_to_exit(as_json):
        rows, _count = open_service(read_only=True).list_datasets(limit=limit)
    data = [
        {"id": d.dataset_id, "name": d.name, "owner": d.owner, "versions": d.versions,
         "images": d.latest.get("record_count"), "method": d.latest.get("method"),
         "epsilon": (d.latest.get("epsilon_milli") or 0) / 1000 or None}
        for d in rows
    ]  # fmt: skip
    show_rows(data, ["id", "name", "owner", "versions", "images", "method", "epsilon"],
              as_json=as_json, quiet=quiet, quiet_key="id", empty="no data sets yet")  # fmt: skip


@app.command("show")
def show_dataset(
    dataset_id: DatasetArg,
    version: VersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a data set: its versions (root, manifest CID, model hash, method, ε) and their
    attestations; with --version, that version's images and privacy reports.

    Example: veilchain show 1 --version 2
    """
    with errors_to_exit(as_json):
        svc = open_service(read_only=True)
        detail = svc.dataset_detail(dataset_id)
        images = None
        if version is not None:
            images = [r.to_dict() for r in svc.records(dataset_id, version)]
    versions = [
        {
            "version": v.version.version,
            "registered_at": v.version.registered_at,
            "images": v.version.record_count,
            "method": v.version.method,
            "epsilon": v.version.epsilon,
            "merkle_root": "0x" + bytes(v.version.merkle_root).hex(),
            "manifest_cid": v.version.manifest_cid,
            "model_hash": "0x" + bytes(v.version.model_hash).hex(),
            "tx_hash": v.version.tx_hash,
            "attestations": [
                f"{'passed' if a.passed else 'FAILED'} by {a.auditor} (report {a.report_cid})"
                for a in v.attestations
            ],
        }
        for v in detail.versions
        if version is None or v.version.version == version
    ]
    s = detail.summary
    head = {"id": s.dataset_id, "name": s.name, **s.statements.to_dict(), "owner": s.owner,
            "uploader": detail.uploader, "versions": s.versions}  # fmt: skip
    if as_json:
        emit_json({**head, "versions": versions, **({"images": images} if images else {})})
        return
    given = s.statements.to_dict()
    not_given = {k: "not given at registration" for k, v in given.items() if v is None}
    show(f"data set {dataset_id}", {**head, **not_given})
    for v in versions:
        show(f"version {v['version']}", v)
    if images is not None:
        rows = [_image_row(r) for r in images]
        show_rows(rows, ["index", "image_id", "cid", "faces", "failed", "distances", "warnings"])


def _image_row(r: dict) -> dict:
    rep = r.get("report") or {}
    faces = rep.get("faces", [])
    warnings = []
    if rep.get("n_unverified"):
        warnings.append(f"{rep['n_unverified']} face(s) not checked")
    if rep.get("n_fallback"):
        warnings.append(f"{rep['n_fallback']} face(s) covered by the fallback")
    low = [f for f in faces if f.get("low_confidence")]
    if low:
        warnings.append(f"{len(low)} low-confidence detection(s)")
    threshold = rep.get("identity_threshold")
    return {
        "index": r["index"],
        "image_id": r["image_id"],
        "cid": r["cid"],
        "faces": len(faces),
        "failed": sum(1 for f in faces if f.get("passed") is False),
        "distances": ", ".join(
            f"{f['distance']:.2f}/{threshold}" for f in faces if f.get("distance") is not None
        ),
        "warnings": "; ".join(warnings),
    }


@app.command()
def verify(
    dataset_id: DatasetArg,
    version: VersionOpt = None,
    attest: Annotated[bool, typer.Option(help="Record the verdict on chain (auditor).")] = False,
    institution: Annotated[
        str | None,
        typer.Option(metavar="ADDRESS", help="Fail unless this address registered the version."),
    ] = None,
    images: Annotated[
        bool,
        typer.Option(
            "--images",
            help="Also decrypt every image under a grant (--as) and check its Content "
            "Credentials against its record.",
        ),
    ] = False,
    as_account: Annotated[
        str | None,
        typer.Option("--as", metavar="NAME", help="Keystore account with a grant (--images)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify a data set against the chain without any key. Exit 1 if anything fails.

    Examples:

        veilchain verify 1

        veilchain verify 1 --version 2 --institution 0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1

        veilchain verify 1 --images --as alice
    """
    with errors_to_exit(as_json):
        if institution is not None and not re.fullmatch(r"0x[0-9a-fA-F]{40}", institution):
            raise InputError("--institution must be an address (0x + 40 hex)")
        if images and not as_account:
            raise InputError(
                "--images decrypts every image: add --as NAME, a keystore account with a grant"
            )
        grantee = grantee_for(as_account) if images and as_account else None
        svc = open_service(read_only=True)
        bar, update = progress_bar(as_json)
        with bar:
            report = svc.verify(dataset_id, version, progress=update, institution=institution)
            if grantee is not None:
                checked = grantee(svc).check_images(
                    dataset_id, report.version, report.record_count, update
                )
                report.add_credential_checks(checked)
        attestation = svc.attest(report) if attest else None
    data = report.to_dict()
    if attestation:
        data["attestation"] = attestation
    if as_json:
        emit_json({k: v for k, v in data.items() if k != "images"})
    else:
        verdict = "[green]PASS[/green]" if report.ok else "[red]FAIL[/red]"
        out.print(
            f"data set {dataset_id} v{report.version}: {verdict} - {report.record_count} images,"
            f" {len(report.failing)} failing, {report.seconds:.2f} s",
            markup=True,
        )
        if report.credentials_checked:
            out.print(
                f"  Content Credentials of {report.credentials_checked} decrypted image(s) checked"
            )
        for p in report.problems:
            out.print(f"  x {p}")
        for img in report.failing:
            out.print(f"  x image {img.image_id} ({img.cid}): {'; '.join(img.problems)}")
        if attestation:
            out.print(f"  attested on chain: tx {attestation['tx_hash']}")
    if not report.ok:
        raise typer.Exit(1)


def grantee_for(name: str) -> Any:
    """``service -> Grantee`` for a keystore account (loaded before the service opens)."""
    from functools import partial

    from veilchain.client import Grantee
    from veilchain.platform.wiring import open_keystore

    return partial(Grantee, account=open_keystore(settings()).load(name))
