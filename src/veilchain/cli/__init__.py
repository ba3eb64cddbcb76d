"""The ``veilchain`` command: parse, call the service (or the anonymizer), print.

Commands live by topic: ``anonymize.py`` (anonymize, evaluate, train), ``datasets.py``
(register, list, show, verify), ``access.py`` (grant, revoke, grants, account, fetch),
``operate.py`` (serve, demo, jobs, keys, chain, audit, cid). ``output.py`` holds the one
error style and the exit codes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from veilchain.cli.output import EXIT_HELP, out
from veilchain.config import Settings, get_settings

HELP = f"""Publish anonymized face data sets with proof.

Anonymize faces (and plates) in images, encrypt each output, pin it to IPFS and record the
data set on Ethereum; auditors verify it without any key, grantees fetch what a grant allows.

Start with `veilchain demo`, then `veilchain register photos/ --name my-set`.

{EXIT_HELP}
"""

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help=HELP,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
GLOBAL_OPTIONS = ("--data-dir", "--rpc", "--ipfs", "--db")


def _plain_metavars() -> None:
    """Typer labels values with Python types (``<list[Path]>``, ``<float>``); show the words
    people read in help instead (PATH..., NUMBER), and nothing after a named argument."""
    from typer import core

    words = {"float": "NUMBER", "int": "INTEGER", "str": "TEXT", "path": "PATH", "Path": "PATH"}
    typed = core.TyperArgument.display_type

    def display_type(self, ctx) -> str | None:
        if isinstance(self, core.TyperArgument) and self.metavar is not None:
            return None
        label = str(typed(self, ctx)).strip("<>")
        many = label.startswith("list[")
        label = label.removeprefix("list[").removesuffix("]")
        word = words.get(label, label.upper())
        return f"{word}..." if many else word

    # typer types the hook "-> str"; None (no label after a named argument) works at run time.
    core.TyperArgument.display_type = display_type  # type: ignore[method-assign, assignment]
    core.TyperOption.display_type = display_type  # type: ignore[method-assign, assignment]


_plain_metavars()


class _State:
    overrides: dict = {}


def settings(**sections: dict) -> Settings:
    """Settings from the environment with the global options and a command's own options
    (``anonymizer={...}``: flags that override that section's fields) applied."""
    given = {name: {k: v for k, v in fields.items() if v is not None}
             for name, fields in sections.items()}  # fmt: skip
    return get_settings(**_State.overrides, **given)


def _print_version(value: bool) -> None:
    if value:
        from veilchain import __version__

        out.print(f"veilchain {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version."
        ),
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="Chain, keys, database and blocks (default .veilchain)."),
    ] = None,
    rpc: Annotated[
        str | None, typer.Option(metavar="URL", help="A JSON-RPC chain node (default: embedded).")
    ] = None,
    ipfs: Annotated[
        str | None, typer.Option(metavar="ADDR", help="An IPFS API (default: embedded store).")
    ] = None,
    db: Annotated[
        str | None, typer.Option(metavar="URL", help="A database URL (default: SQLite).")
    ] = None,
) -> None:
    ov: dict = {"data_dir": data_dir}
    if rpc:
        ov["chain"] = {"rpc_url": rpc}
    if ipfs:
        ov["ipfs"] = {"api_url": ipfs}
    if db:
        ov["db"] = {"url": db}
    _State.overrides = {k: v for k, v in ov.items() if v is not None}


def _global_options_first(argv: list[str]) -> list[str]:
    """Let ``--data-dir`` and the other global options come after the subcommand too."""
    front, rest, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS:
            if "=" in arg or i + 1 >= len(argv):
                front.append(arg)
                i += 1
            else:
                front += argv[i : i + 2]
                i += 2
            continue
        if arg == "--":
            rest += argv[i:]
            break
        rest.append(arg)
        i += 1
    return front + rest


def main(argv: list[str] | None = None) -> None:
    """The console script."""
    app(_global_options_first(list(sys.argv[1:] if argv is None else argv)), prog_name="veilchain")


from veilchain.cli import access, anonymize, datasets, operate  # noqa: E402,F401  (register commands)

__all__ = ["app", "main", "settings"]
