"""Commands that work on image files without the chain: anonymize, evaluate, train."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from veilchain.anonymizer.methods import METHODS
from veilchain.cli import app, settings
from veilchain.cli.output import console, emit_json, errors_to_exit, exit_code_of, human, out
from veilchain.errors import InputError

METHOD_HELP = "Anonymization method: " + " | ".join(METHODS) + "."


def _csv(value: str | None, cast=str) -> list | None:
    return None if value is None else [cast(v.strip()) for v in value.split(",") if v.strip()]


def _sign_outputs(results, config, anonymizer, epsilon: float | None) -> None:
    """Content Credentials on every output written (a format the signer does not take is
    left unsigned, and the report says so)."""
    from veilchain.platform.provenance import CredentialsSigner, load_signing_identity, sign_file

    signer = CredentialsSigner(load_signing_identity(config))
    for r in results:
        if r.output is None:
            continue
        params = anonymizer.privacy_params()
        done = sign_file(
            Path(r.output), signer, method=params.get("method", config.anonymizer.method),
            epsilon=params.get("epsilon", epsilon), model_hash=anonymizer.model_hash(),
        )  # fmt: skip
        r.report["content_credentials"] = "signed" if done else "format not signed"


# Over 80 lines because typer declares every option in the signature (about 60 lines);
# the body is short.
@app.command()
def anonymize(
    inputs: Annotated[
        list[Path],
        typer.Argument(metavar="PATH", show_default=False),
    ],
    outdir: Annotated[Path, typer.Option("-o", "--out", metavar="DIR", help="Output folder.")],
    method: Annotated[str | None, typer.Option(metavar="METHOD", help=METHOD_HELP)] = None,
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
    identifiers: Annotated[
        str | None,
        typer.Option(
            metavar="LIST",
            help="What to anonymize: faces, plates (licence plates, redrawn with "
            "epsilon-DP text) or both, comma-separated (default: faces,plates).",
        ),
    ] = None,
    features: Annotated[
        str | None,
        typer.Option(
            metavar="LIST",
            help="Generators only: regenerate just these features (eyes, nose, mouth; any "
            "subset, comma-separated) and keep the rest of each face.",
        ),
    ] = None,
    gallery: Annotated[
        list[Path] | None,
        typer.Option(
            help="Photos (file or folder; repeatable) of known people: every output face must "
            "also be at least the identity threshold from each face in them."
        ),
    ] = None,
    credentials: Annotated[
        bool,
        typer.Option(
            "--credentials",
            help="Sign each output (PNG, JPEG, MP4, AVI) with Content Credentials (C2PA), as the "
            "data directory's institution (docs/provenance.md).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Anonymize every face in PATH (image files, folders, .mp4/.avi videos) into a folder.

    Exit 1 when a face still matches its original (see the table).

    Examples:

        veilchain anonymize photos/ -o out/ --method ciagan

        veilchain anonymize street.jpg -o out/ --method dp --epsilon 2 --json

        veilchain anonymize faces/ -o out/ --method ciagan --features eyes,nose

        veilchain anonymize street.jpg -o out/ --identifiers faces,plates
    """
    from rich.progress import Progress

    from veilchain.anonymizer.files import anonymize_paths
    from veilchain.anonymizer.wiring import build_anonymizer
    from veilchain.platform.local_secrets import anonymizer_secret

    with errors_to_exit(as_json):
        config = settings(
            anonymizer={
                "method": method, "seed": seed, "weights_dir": weights_dir,
                "detector": detector, "detector_threshold": detector_threshold,
                "second_look": second_look, "sweep_threshold": sweep_threshold,
                "upsample": upsample, "features": features, "identifiers": identifiers,
            }
        )  # fmt: skip
        cfg = config.anonymizer
        anonymizer = build_anonymizer(
            cfg.method,
            epsilon=epsilon,
            seed=cfg.seed,
            strict=strict,
            gallery=gallery or (),
            secret=anonymizer_secret(config.data_dir),
            **cfg.builder_options(),
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
        if credentials:
            _sign_outputs(results, config, anonymizer, epsilon)
    if as_json:
        emit_json([r.to_dict() for r in results])
    else:
        _print_results(results)
    errors = [r.error for r in results if r.error]
    for e in errors:
        console.print(f"[red]error:[/red] {e}", soft_wrap=True, highlight=False)
    if errors:
        raise typer.Exit(exit_code_of(next(r.error_kind or "" for r in results if r.error)))
    if any(r.n_failed for r in results):
        console.print("[yellow]some faces still match their original; see 'failed'[/yellow]")
        raise typer.Exit(1)


@app.command()
def evaluate(
    data: Annotated[Path, typer.Argument(metavar="FOLDER", show_default=False)],
    outdir: Annotated[Path, typer.Option("-o", "--out", help="Report folder (JSON, PNG).")],
    methods: Annotated[
        str,
        typer.Option(
            metavar="LIST",
            help="Comma list; 'ciagan:eyes+nose' regenerates only those features.",
        ),
    ] = "blur,pixelate,mask,dppix",
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
    """Measure re-identification, utility and image quality per method (and epsilon) on
    FOLDER, a folder of face photos (one or more faces each).

    Example:

        veilchain evaluate faces/ -o report/ --methods blur,dppix,ciagan --epsilons 1,5

        veilchain evaluate faces/ -o report/ --methods ciagan,ciagan:eyes+nose --check
    """
    from rich.table import Table

    from veilchain.anonymizer.evaluate import SUMMARY_COLUMNS

    with errors_to_exit(as_json):
        try:
            report = _evaluate(data, methods, epsilons, outdir, seed, limit, weights_dir, check,
                               as_json)  # fmt: skip
        except ValueError as err:
            raise InputError(str(err)) from err
    if as_json:
        emit_json(report)
        return
    table = Table(*(h for _, h in SUMMARY_COLUMNS), box=None, pad_edge=False)
    for row in report["results"]:
        table.add_row(*(_fmt_cell(row.get(k)) for k, _ in SUMMARY_COLUMNS))
    out.print(table)
    for line in report.get("unavailable", []):
        console.print(f"[yellow]unavailable:[/yellow] {line}", markup=True)
    console.print(f"report: {report['files']['json']}")


def _evaluate(data, methods, epsilons, outdir, seed, limit, weights_dir, check, as_json) -> dict:
    from rich.progress import Progress

    from veilchain.anonymizer.evaluate import evaluate as run_evaluation

    with Progress(console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task("evaluating", total=None)
        return run_evaluation(
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


def _fmt_cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, list):
        return "+".join(map(str, v))
    return f"{v:.2f}" if isinstance(v, float) else str(v)


@app.command()
def train(
    model: Annotated[str, typer.Argument(metavar="MODEL", show_default=False)],
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
    res: Annotated[
        int | None, typer.Option(help="CIAGAN: 64 (U-Net body) or 128 (with the detail head).")
    ] = None,
    lambda_fm: Annotated[
        float | None, typer.Option(help="CIAGAN: weight of feature matching (default 0).")
    ] = None,
    lambda_edge: Annotated[
        float | None, typer.Option(help="CIAGAN: weight of the mask-edge term (default 0).")
    ] = None,
    jitter: Annotated[
        float | None, typer.Option(help="CIAGAN: colour/gamma jitter strength (default 0).")
    ] = None,
    loss: Annotated[str | None, typer.Option(help="superres: l1, hf (default) or adv.")] = None,
) -> None:
    """Train MODEL (ciagan, dp or superres) on a corpus (needs the 'train' extra).

    Example: veilchain train ciagan --data runs/corpus --max-minutes 60
    """
    from veilchain.anonymizer.training import run_training

    with errors_to_exit():
        if model not in ("ciagan", "dp", "superres"):
            raise InputError(f"unknown model {model!r}; use ciagan, dp or superres")
        if model == "superres":
            from veilchain.anonymizer.superres_train import run_training as run_superres

            sr: dict[str, Any] = {"loss": loss, "steps": steps}
            sr = {k: v for k, v in sr.items() if v is not None}
            emit_json(run_superres(
                data, out_dir / model, resume=resume, seed=seed, threads=threads,
                max_minutes=max_minutes,
                say=lambda m: console.print(m, highlight=False, soft_wrap=True), **sr,
            ))  # fmt: skip
            return
        given = {
            "lambda_id": lambda_id,
            "res": res,
            "lambda_fm": lambda_fm,
            "lambda_edge": lambda_edge,
            "jitter": jitter,
        }
        overrides: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
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
            **overrides,
        )
    emit_json(result)


def _plates_cell(rep: dict) -> str:
    """How many plates an image's report says were redrawn, and how many candidates on
    people were ruled out (not redrawn)."""
    ruled = sum((rep.get("plates_ruled_out") or {}).values())
    return f"{rep.get('n_plates', 0)}" + (f" ({ruled} ruled out)" if ruled else "")


def _print_results(results: list) -> None:
    """One row per input with its full path; one line per face with its distance against
    the threshold (and ε where the method has one); with the plates stage on, the plates
    redrawn."""
    from rich.table import Table

    plates = any("n_plates" in (r.report or {}) for r in results)
    head = ["input", "faces", "failed", "output / error", "distance / threshold, ε"]
    table = Table(*head[:2], *(["plates"] if plates else []), *head[2:])
    for c in table.columns:
        c.overflow = "fold"
    for r in results:
        rep = r.report or {}
        threshold = rep.get("identity_threshold")
        eps = (rep.get("privacy_params") or {}).get("epsilon")
        faces = []
        for f in rep.get("faces", []):
            d = f.get("distance")
            mark = "" if f.get("passed") is not False else " FAIL"
            note = f" ({f['fallback']})" if f.get("fallback") else ""
            faces.append(f"{human(d)} / {human(threshold)}{mark}{note}")
        detail = "; ".join(faces) or "-"
        if eps is not None:
            detail += f"; ε {human(eps)}"
        cells = [r.input, str(r.n_faces), *([_plates_cell(rep)] if plates else [])]
        table.add_row(*cells, str(r.n_failed), r.error or r.output or "", detail)
    out.print(table)
