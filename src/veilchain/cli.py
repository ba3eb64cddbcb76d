"""The ``veilchain`` command. Thin: parse arguments, call the service or library, print.

Exit codes: 0 ok; 1 verification found failures; 2 bad input or usage; 3 chain error;
4 storage error; 5 key or auth error; 6 anonymization error; 10 other Veilchain error.
"""

from __future__ import annotations

import gc
import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from veilchain.config import Settings, get_settings
from veilchain.errors import (
    AnonymizationError,
    AuthError,
    ChainError,
    ConfigError,
    InputError,
    KeyManagementError,
    RegistrationStateError,
    StorageError,
    VeilchainError,
)
from veilchain.platform.cleanup import local_pending
from veilchain.platform.limits import grant_expiry_from_ttl
from veilchain.platform.local_secrets import resolve_local_secrets

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.split("\n")[0])
console = Console(stderr=True)
out = Console()

EXIT_CODES: list[tuple[type[VeilchainError], int]] = [
    (InputError, 2),
    (ConfigError, 2),
    (ChainError, 3),
    (StorageError, 4),
    (KeyManagementError, 5),
    (AuthError, 5),
    (AnonymizationError, 6),
    (VeilchainError, 10),
]


class _State:
    overrides: dict = {}


def settings() -> Settings:
    """Settings from the environment with the global CLI flags applied."""
    return get_settings(**_State.overrides)


def fail(err: VeilchainError) -> None:
    """Print a one-line error and exit with the documented code."""
    console.print(f"[red]error:[/red] {err}", soft_wrap=True, highlight=False, markup=True)
    code = next(c for t, c in EXIT_CODES if isinstance(err, t))
    raise typer.Exit(code)


def emit(data, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(data, default=str))


def _print_version(value: bool) -> None:
    if value:
        from veilchain import __version__

        out.print(f"veilchain {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version."
        ),
    ] = False,
    data_dir: Annotated[Path | None, typer.Option(help="Chain, keys, DB and blocks.")] = None,
    rpc: Annotated[str | None, typer.Option(help="Chain node URL (default: embedded).")] = None,
    ipfs: Annotated[str | None, typer.Option(help="IPFS API address (default: embedded).")] = None,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL (default: SQLite).")] = None,
) -> None:
    ov: dict = {"data_dir": data_dir}
    if rpc:
        ov["chain"] = {"rpc_url": rpc}
    if ipfs:
        ov["ipfs"] = {"api_url": ipfs}
    if db:
        ov["db"] = {"url": db}
    _State.overrides = {k: v for k, v in ov.items() if v is not None}


# --- anonymizer commands (anonymize, evaluate, train) -----------------------


def _csv(value: str | None, cast=str) -> list | None:
    return None if value is None else [cast(v.strip()) for v in value.split(",") if v.strip()]


@app.command()
def anonymize(
    inputs: Annotated[list[Path], typer.Argument(help="Image files, folders, .mp4/.avi videos.")],
    outdir: Annotated[Path, typer.Option("-o", "--out", help="Output folder.")],
    method: Annotated[
        str | None, typer.Option(help="ciagan | dp | dppix | blur | pixelate | mask.")
    ] = None,
    epsilon: Annotated[float | None, typer.Option(help="Privacy budget (dp, dppix).")] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Random seed (same seed and data directory, same bytes)."),
    ] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Image format (default png).")] = None,
    weights_dir: Annotated[Path | None, typer.Option(help="CIAGAN / DP weights.")] = None,
    strict: Annotated[
        bool,
        typer.Option(
            help="Stop if a face stays recognizable or the second look finds a face that "
            "detection missed."
        ),
    ] = False,
    identifiers: Annotated[
        str | None,
        typer.Option(
            help="What to anonymize: faces, plates or faces,plates (default: the settings', "
            "faces,plates). Plates get epsilon-DP text (VEILCHAIN_ANONYMIZER__PLATE_EPSILON)."
        ),
    ] = None,
    detector: Annotated[
        str | None,
        typer.Option(help="centerface (default: a CNN, finds profiles) | hog (frontal only)."),
    ] = None,
    detector_threshold: Annotated[
        float | None, typer.Option(help="CenterFace score a face must reach (default 0.4).")
    ] = None,
    second_look: Annotated[
        bool | None,
        typer.Option(
            "--second-look/--no-second-look",
            help="Sweep each output for faces detection missed and cover them (default on).",
        ),
    ] = None,
    sweep_threshold: Annotated[
        float | None,
        typer.Option(
            help="Second look: cover candidates down to this CenterFace score (default 0.15; "
            "lower finds more faces and blurs more non-faces)."
        ),
    ] = None,
    upsample: Annotated[
        int | None,
        typer.Option(
            help="HOG only: upsampling. Default: auto, which stops at the first level that "
            "finds a face; 1 finds faces down to ~40 px (~4x slower detection)."
        ),
    ] = None,
    gallery: Annotated[
        list[Path] | None,
        typer.Option(
            help="Photos (file or folder; repeatable) of known people: every output face must "
            "also be at least the identity threshold from each face in them."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Anonymize every face. Exit 1 when a face still matches its original (see the table)."""
    from rich.progress import Progress
    from rich.table import Table

    from veilchain.anonymizer.files import anonymize_paths
    from veilchain.anonymizer.pipeline import build_anonymizer
    from veilchain.platform.local_secrets import anonymizer_secret

    config = settings()
    cfg = config.anonymizer
    try:
        given = {
            "weights_dir": weights_dir,
            "detector_name": detector,
            "detector_threshold": detector_threshold,
            "second_look": second_look,
            "sweep_threshold": sweep_threshold,
            "upsample": upsample,
            "identifiers": identifiers,
        }
        options = {**cfg.builder_options(), **{k: v for k, v in given.items() if v is not None}}
        options["secret"] = anonymizer_secret(config.data_dir)
        anonymizer = build_anonymizer(
            method or cfg.method,
            epsilon=epsilon,
            seed=cfg.seed if seed is None else seed,
            strict=strict,
            gallery=gallery or (),
            **options,
        )
        with Progress(console=console, transient=True, disable=as_json) as bar:
            task = bar.add_task("anonymizing", total=None)
            results = anonymize_paths(
                inputs,
                outdir,
                fmt=fmt,
                strict=strict,
                anonymizer=anonymizer,
                progress=lambda path, done, total: bar.update(task, completed=done, total=total),
            )
    except VeilchainError as err:
        fail(err)
    rows = [r.to_dict() for r in results]
    if as_json:
        emit(rows, True)
    else:
        table = Table("input", "faces", "failed", "output / error")
        for r in results:
            table.add_row(r.input, str(r.n_faces), str(r.n_failed), r.error or r.output or "")
        out.print(table)
    errors = [r.error for r in results if r.error]
    for e in errors:
        console.print(f"[red]error:[/red] {e}", soft_wrap=True, highlight=False)
    if errors:
        raise typer.Exit(6)
    if any(r.n_failed for r in results):
        console.print("[yellow]some faces still match their original; see 'failed'[/yellow]")
        raise typer.Exit(1)


@app.command()
def evaluate(
    data: Annotated[Path, typer.Argument(help="Folder of face photos (one or more faces each).")],
    outdir: Annotated[Path, typer.Option("-o", "--out", help="Report folder (JSON, PNG).")],
    methods: Annotated[str, typer.Option(help="Comma list.")] = "blur,pixelate,mask,dppix",
    epsilons: Annotated[
        str | None, typer.Option(help="Comma list for dp/dppix (default 0.1,0.5,1,2,5,10).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Use at most this many images.")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    weights_dir: Annotated[Path | None, typer.Option(help="CIAGAN / DP weights.")] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Measure what the pipeline publishes (identity and face checks, retries) "
            "instead of each method's first output.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Measure re-identification, utility and image quality per method (and epsilon)."""
    from rich.progress import Progress
    from rich.table import Table

    from veilchain.anonymizer.evaluate import SUMMARY_COLUMNS
    from veilchain.anonymizer.evaluate import evaluate as run_evaluation

    try:
        with Progress(console=console, transient=True, disable=as_json) as bar:
            task = bar.add_task("evaluating", total=None)
            report = run_evaluation(
                data,
                _csv(methods),
                _csv(epsilons, float),
                outdir,
                seed=seed,
                limit=limit,
                weights_dir=weights_dir,
                check=check,
                progress=lambda msg, done, total: bar.update(
                    task, description=msg, completed=done, total=total
                ),
            )
    except (VeilchainError, ValueError) as err:
        fail(err if isinstance(err, VeilchainError) else InputError(str(err)))
    if as_json:
        emit(report, True)
        return
    table = Table(*(h for _, h in SUMMARY_COLUMNS), box=None, pad_edge=False)
    for row in report["results"]:
        table.add_row(*(_fmt_cell(row.get(k)) for k, _ in SUMMARY_COLUMNS))
    out.print(table)
    for line in report.get("unavailable", []):
        console.print(f"[yellow]unavailable:[/yellow] {line}")
    console.print(f"report: {report['files']['json']}")


def _fmt_cell(v) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


@app.command()
def train(
    model: Annotated[str, typer.Argument(help="ciagan or dp")],
    data: Annotated[Path, typer.Option(help="Corpus dir (corpus.npz) or CelebA-layout folder.")],
    steps: Annotated[int | None, typer.Option(help="Total steps (default 10000).")] = None,
    max_minutes: Annotated[float | None, typer.Option(help="Stop after this long.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/checkpoint.pt.")] = False,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Checkpoints in OUT/MODEL, weights in OUT/MODEL/weights.")
    ] = Path("runs/train"),
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[int | None, typer.Option(help="torch threads.")] = None,
    init_from: Annotated[
        Path | None,
        typer.Option(help="Warm-start from exported weights in this dir (e.g. the shipped ones)."),
    ] = None,
    lambda_id: Annotated[
        float | None, typer.Option(help="CIAGAN: weight of the identity loss (default 1).")
    ] = None,
) -> None:
    """Train CIAGAN or the DP latent autoencoder (needs the 'train' extra)."""
    from veilchain.anonymizer.training import run_training

    try:
        if model not in ("ciagan", "dp"):
            raise InputError(f"unknown model {model!r}; use ciagan or dp")
        result = run_training(
            model,
            data,
            out_dir / model,
            steps=steps,
            max_minutes=max_minutes,
            resume=resume,
            seed=seed,
            threads=threads,
            init_from=init_from,
            progress=lambda m: console.print(m, highlight=False, soft_wrap=True),
            **({} if lambda_id is None else {"lambda_id": lambda_id}),
        )
    except VeilchainError as err:
        fail(err)
    out.print_json(json.dumps(result))


# --- trust pipeline commands (register, verify, grant, revoke, fetch, keys, chain, cid, demo)
keys_app = typer.Typer(no_args_is_help=True, help="The key service: master key versions.")
chain_app = typer.Typer(no_args_is_help=True, help="The VeilRegistry contract.")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log.")
app.add_typer(keys_app, name="keys")
app.add_typer(chain_app, name="chain")
app.add_typer(audit_app, name="audit")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _service():
    from veilchain.platform.service import build_service

    with console.status("opening chain, keys and storage"):
        return build_service(settings())


def _progress_bar(as_json: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=as_json,
    )
    task = bar.add_task("working", total=None)

    def update(done: int, total: int, stage: str) -> None:
        bar.update(task, completed=done, total=total, description=stage)

    return bar, update


def _kv_table(title: str, data: dict) -> None:
    from rich.table import Table

    table = Table(title=title, show_header=False)
    for k, v in data.items():
        table.add_row(str(k), str(v))
    out.print(table)


@app.command()
def register(
    inputs: Annotated[list[Path] | None, typer.Argument(help="Image files or folders.")] = None,
    name: Annotated[str | None, typer.Option(help="Data set name.")] = None,
    method: Annotated[str | None, typer.Option(help="Anonymization method.")] = None,
    epsilon: Annotated[float | None, typer.Option(help="Privacy budget (dp, dppix).")] = None,
    seed: Annotated[int | None, typer.Option(help="Anonymizer seed.")] = None,
    allow_recognizable: Annotated[
        bool, typer.Option(help="Publish faces that failed the identity check (reported).")
    ] = False,
    resume: Annotated[bool, typer.Option(help="Finish interrupted registrations.")] = False,
    abort: Annotated[
        bool, typer.Option(help="Give up interrupted registrations: shred their keys, unpin.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Anonymize, encrypt, pin and register images as a data set (one transaction)."""
    try:
        if resume and abort:
            raise InputError("--resume and --abort exclude each other; pick one")
        if not (resume or abort) and (not inputs or not name):
            raise InputError("give image files or folders and --name (or --resume / --abort)")
        svc = _service()
        if abort:
            aborted = [r.uid for r in local_pending(svc)]
            if not aborted:
                raise RegistrationStateError("no interrupted registration to abort")
            for uid in aborted:
                svc.abort(uid)
            emit({"aborted": aborted}, True) if as_json else out.print(
                f"aborted {len(aborted)} registration(s): data keys deleted, pins removed"
            )
            return
        bar, update = _progress_bar(as_json)
        with bar:
            if resume:  # the CLI's own: an API job's leftovers are the server's to resume
                pending = local_pending(svc)
                if not pending:
                    raise RegistrationStateError("no interrupted registration")
                results = [
                    r
                    for reg in pending
                    for r in svc.resume(
                        reg.uid, allow_recognizable=allow_recognizable, progress=update
                    )
                ]
            else:
                results = [
                    svc.register(
                        inputs,
                        name=name,
                        method=method or settings().anonymizer.method,
                        epsilon=epsilon,
                        seed=seed,
                        allow_recognizable=allow_recognizable,
                        progress=update,
                    )
                ]
    except VeilchainError as err:
        fail(err)
    if as_json:
        emit([r.to_dict() for r in results], True)
        return
    for r in results:
        _kv_table(f"registered data set {r.dataset_id} v{r.version}", r.to_dict())


@app.command()
def verify(
    dataset_id: Annotated[int, typer.Argument(help="On-chain data set id.")],
    version: Annotated[int | None, typer.Option(help="Version (default latest).")] = None,
    attest: Annotated[bool, typer.Option(help="Record the verdict on chain (auditor).")] = False,
    institution: Annotated[
        str | None, typer.Option(help="Fail unless this address registered the version.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify a data set against the chain without any key. Exit 1 if anything fails."""
    try:
        if institution is not None and not re.fullmatch(r"0x[0-9a-fA-F]{40}", institution):
            raise InputError("--institution must be an address (0x + 40 hex)")
        svc = _service()
        bar, update = _progress_bar(as_json)
        with bar:
            report = svc.verify(dataset_id, version, progress=update, institution=institution)
        attestation = svc.attest(report) if attest else None
    except VeilchainError as err:
        fail(err)
    data = report.to_dict()
    if attestation:
        data["attestation"] = attestation
    if as_json:
        emit({k: v for k, v in data.items() if k != "images"}, True)
    else:
        verdict = "[green]PASS[/green]" if report.ok else "[red]FAIL[/red]"
        out.print(
            f"data set {dataset_id} v{report.version}: {verdict} - {report.record_count} records,"
            f" {len(report.failing)} failing, {report.seconds:.2f} s"
        )
        for p in report.problems:
            out.print(f"  [red]x[/red] {p}")
        for img in report.failing:
            out.print(f"  [red]x[/red] image {img.image_id} ({img.cid}): {'; '.join(img.problems)}")
        if attestation:
            out.print(f"  attested on chain: tx {attestation['tx_hash']}")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def grant(
    dataset_id: Annotated[int, typer.Argument()],
    to: Annotated[str, typer.Option("--to", help="Grantee Ethereum address.")],
    days: Annotated[float, typer.Option(help="Grant lifetime in days.")] = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """Grant an address access to a data set until now + DAYS (on chain)."""
    try:
        svc = _service()
        expires = grant_expiry_from_ttl(int(days * 86400), chain_now=svc.chain.block_timestamp())
        result = svc.grant(dataset_id, to, expires_at=expires)
    except VeilchainError as err:
        fail(err)
    emit(result, True) if as_json else _kv_table("grant", result)


@app.command()
def revoke(
    dataset_id: Annotated[int, typer.Argument()],
    grantee: Annotated[str, typer.Option("--from", help="Grantee Ethereum address.")],
    reencrypt: Annotated[
        bool, typer.Option(help="Also re-encrypt under new keys as a new version.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a grant (stops future key releases; --reencrypt for true revocation)."""
    try:
        svc = _service()
        result = svc.revoke(dataset_id, grantee)
        if reencrypt:
            bar, update = _progress_bar(as_json)
            with bar:
                result["new_version"] = svc.add_reencrypted_version(
                    dataset_id, progress=update
                ).to_dict()
    except VeilchainError as err:
        fail(err)
    emit(result, True) if as_json else _kv_table("revoked", result)


@app.command()
def account(
    name: Annotated[str, typer.Argument(help="Keystore account name, e.g. a grantee.")],
    as_json: JsonOpt = False,
) -> None:
    """Create (on first use) and show a local account: Ethereum and X25519 public keys."""
    from veilchain.chain import Keystore
    from veilchain.platform.service import x25519_keypair_for

    cfg = resolve_local_secrets(settings())
    try:
        acct = Keystore(cfg.data_dir / "keystore", cfg.chain.keystore_passphrase).get_or_create(
            name
        )
    except VeilchainError as err:
        fail(err)
    data = {"name": name, "address": acct.address, "x25519": x25519_keypair_for(acct)[1].hex()}
    emit(data, True) if as_json else _kv_table("account", data)


@app.command()
def fetch(
    dataset_id: Annotated[int, typer.Argument()],
    image: Annotated[int, typer.Option(help="Image index in the manifest.")],
    as_account: Annotated[str, typer.Option("--as", help="Keystore account of the grantee.")],
    output: Annotated[Path, typer.Option("-o", "--out", help="Where to write the PNG.")],
    version: Annotated[int | None, typer.Option(help="Version (default latest).")] = None,
) -> None:
    """As a grantee: get the data key under your on-chain grant, fetch, decrypt, check."""
    from veilchain.chain import Keystore

    cfg = resolve_local_secrets(settings())
    try:
        acct = Keystore(cfg.data_dir / "keystore", cfg.chain.keystore_passphrase).load(as_account)
        data = _service().fetch(acct, dataset_id, image, version=version)
    except VeilchainError as err:
        fail(err)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(data)
    out.print(f"wrote {output} ({len(data)} bytes, sha256 matches the manifest)")


@app.command()
def cid(file: Annotated[Path, typer.Argument(help="Any file.")]) -> None:
    """Print the CIDv1 Kubo gives for `ipfs add --cid-version=1 --raw-leaves FILE`."""
    from veilchain.platform.storage import compute_cid_file

    if not file.is_file():
        fail(InputError(f"{file} is not a file"))
    out.print(compute_cid_file(file), highlight=False)


@keys_app.command("rotate")
def keys_rotate(as_json: JsonOpt = False) -> None:
    """New master key version; rewrap every data key under it."""
    try:
        result = _service().rotate_keys()
    except VeilchainError as err:
        fail(err)
    emit(result, True) if as_json else _kv_table("master key rotated", result)


@keys_app.command("status")
def keys_status(as_json: JsonOpt = False) -> None:
    """Master key versions and how many data keys each wraps."""
    try:
        status = _service().keys.status().to_dict()
    except VeilchainError as err:
        fail(err)
    emit(status, True) if as_json else _kv_table("key service", status)


@chain_app.command("deploy")
def chain_deploy(as_json: JsonOpt = False) -> None:
    """Deploy (or attach to) VeilRegistry and appoint this instance's roles."""
    try:
        svc = _service()
        data = {
            "chain_id": svc.chain_id,
            "contract": svc.chain.address,
            "deploy_block": svc.chain.deploy_block,
            **{role: svc.accounts.address(role) for role in svc.accounts},
        }
    except VeilchainError as err:
        fail(err)
    emit(data, True) if as_json else _kv_table("VeilRegistry", data)


@chain_app.command("info")
def chain_info(as_json: JsonOpt = False) -> None:
    """The deployment record an auditor pins: chain, contract, code hash, admin, institutions."""
    from veilchain.platform.trust import deployment_record

    try:
        svc = _service()
        data = deployment_record(svc.chain, svc.accounts)
    except VeilchainError as err:
        fail(err)
    emit(data, True) if as_json else _kv_table("VeilRegistry deployment", data)


@audit_app.command("verify")
def audit_verify(as_json: JsonOpt = False) -> None:
    """Check the audit log's hash chain. Exit 1 if broken."""
    try:
        result = _service().audit.verify()
    except VeilchainError as err:
        fail(err)
    data = asdict(result)
    emit(data, True) if as_json else _kv_table("audit log", data)
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("anchor")
def audit_anchor(as_json: JsonOpt = False) -> None:
    """Anchor the audit log's head hash on chain (key service)."""
    try:
        data = _service().anchor_audit()
    except VeilchainError as err:
        fail(err)
    emit(data, True) if as_json else _kv_table("audit anchored", data)


@app.command()
def demo(
    method: Annotated[str | None, typer.Option(help="Method (default: best available).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The main job on embedded defaults: register -> verify -> grant -> fetch -> tamper."""
    from veilchain.platform.demo import run_demo

    try:
        summary = run_demo(
            _service(), method=method, say=(lambda m: None) if as_json else out.print
        )
    except VeilchainError as err:
        fail(err)
    if as_json:
        emit(summary, True)
    if not summary["ok"]:
        raise typer.Exit(1)


# --- platform commands (serve) ----------------------------------------------
@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers_off: Annotated[
        bool, typer.Option("--no-worker", help="Leave queued jobs to another process.")
    ] = False,
) -> None:
    """Run the HTTP API and dashboard (FastAPI + uvicorn)."""
    import uvicorn

    from veilchain.platform.api import create_app

    try:
        cfg = settings()
        api = create_app(cfg, worker=not workers_off)
    except VeilchainError as err:
        fail(err)
    proxies = cfg.auth.trusted_proxies.strip()
    # What exists now (modules, the app, the chain, ~200k objects) lives as long as the
    # process. Frozen, it is left out of the collector's full passes, each of which paused
    # every request for 100-300 ms (docs/api.md, "Load").
    gc.collect()
    gc.freeze()
    console.print(
        f"dashboard: http://{host}:{port}/dashboard/  API docs: http://{host}:{port}/docs"
    )
    uvicorn.run(
        api, host=host, port=port, log_level="info", access_log=False,
        # X-Forwarded-For is believed only from the proxies the operator names (uvicorn
        # otherwise trusts it from 127.0.0.1, so a local client could pick its own address).
        proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None,
    )  # fmt: skip


if __name__ == "__main__":
    app()
