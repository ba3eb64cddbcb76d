"""The ``veilchain`` command. Thin: parse arguments, call the service or library, print.

Exit codes: 0 ok; 1 verification found failures; 2 bad input or usage; 3 chain error;
4 storage error; 5 key or auth error; 6 anonymization error; 10 other Veilchain error.
"""

from __future__ import annotations

import json
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
    StorageError,
    VeilchainError,
)

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
    console.print(f"[red]error:[/red] {err}")
    code = next(c for t, c in EXIT_CODES if isinstance(err, t))
    raise typer.Exit(code)


def emit(data, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(data, default=str))


@app.callback()
def main(
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
            progress=lambda m: console.print(m, highlight=False),
        )
    except VeilchainError as err:
        fail(err)
    out.print_json(json.dumps(result))


# --- trust pipeline commands (register, verify, grant, revoke, fetch, keys, chain, cid, demo)


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
        api = create_app(settings(), worker=not workers_off)
    except VeilchainError as err:
        fail(err)
    uvicorn.run(api, host=host, port=port, log_level="info", access_log=False)


if __name__ == "__main__":
    app()
