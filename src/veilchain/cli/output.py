"""How the CLI speaks: one error style and exit code per error, full values, human times.

Every command runs its work inside :func:`errors_to_exit`, the one place that turns a
``VeilchainError`` into ``error: <one line>`` on stderr and the exit code documented below.
Tables print every value in full (a CID, a hash or a path is there to be copied); ``--json``
prints the same data as JSON on stdout.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from veilchain.errors import (
    AnonymizationError,
    AuthError,
    ChainError,
    ConfigError,
    ContractRevertedError,
    DatasetNotFoundError,
    GrantNotFoundError,
    ImageDecodeError,
    ImageNotFoundError,
    InputError,
    JobNotFoundError,
    KeyManagementError,
    PrivacyBudgetError,
    RegistrationStateError,
    StorageError,
    VeilchainError,
)

console = Console(stderr=True, soft_wrap=True, highlight=False)
out = Console(soft_wrap=True, highlight=False)

EXIT_HELP = (
    "Exit codes: 0 ok; 1 verification or identity check failed; 2 bad input or configuration;"
    " 3 chain; 4 storage; 5 keys or sign-in; 6 anonymization; 7 not found; 8 wrong state"
    " (e.g. nothing to resume); 10 other."
)
# Checked in order: leaves before their bases.
EXIT_CODES: list[tuple[type[VeilchainError], int]] = [
    (DatasetNotFoundError, 7),
    (ImageNotFoundError, 7),
    (GrantNotFoundError, 7),
    (JobNotFoundError, 7),
    (RegistrationStateError, 8),
    (ImageDecodeError, 2),  # the input is not a readable image: bad input
    (PrivacyBudgetError, 2),
    (InputError, 2),
    (ConfigError, 2),
    (ChainError, 3),
    (StorageError, 4),
    (KeyManagementError, 5),
    (AuthError, 5),
    (AnonymizationError, 6),
    (VeilchainError, 10),
]
_REVERT_EXIT = {
    "UnknownDataset": 7,
    "UnknownVersion": 7,
    "NoGrant": 7,
    "ExpiryInPast": 2,
    "ZeroAddress": 2,
}


def exit_code(err: VeilchainError) -> int:
    if isinstance(err, ContractRevertedError) and err.name in _REVERT_EXIT:
        return _REVERT_EXIT[err.name]
    return exit_code_of(type(err))


def exit_code_of(kind: type[VeilchainError] | str) -> int:
    """The exit code of an error class (or its name, as a per-file result records it)."""
    if isinstance(kind, str):
        from veilchain import errors

        found = getattr(errors, kind, VeilchainError)
        kind = found if isinstance(found, type) else VeilchainError
    return next(code for cls, code in EXIT_CODES if issubclass(kind, cls))


def message(err: VeilchainError) -> str:
    """The one line a person reads: a contract's refusal as a sentence, never raw."""
    if isinstance(err, ContractRevertedError) and err.reason:
        return f"{err.reason} (contract error {err.name})"
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def fail(err: VeilchainError, *, as_json: bool = False) -> NoReturn:
    """``error: <one line>`` on stderr (with ``--json``: a JSON object) and the exit code."""
    code = exit_code(err)
    if as_json:
        doc = {"error": message(err), "code": type(err).__name__, "exit_code": code}
        console.print(json.dumps(doc), markup=False)
    else:
        console.print(f"[red]error:[/red] {message(err)}", markup=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def errors_to_exit(as_json: bool = False) -> Iterator[None]:
    """Run a command's work: a VeilchainError becomes one line and its exit code."""
    try:
        yield
    except VeilchainError as err:
        fail(err, as_json=as_json)


# --- values ----------------------------------------------------------------------
_TIME_KEYS = ("expires_at", "granted_at", "registered_at", "anchored_at", "created_at")


def human_time(value: int | float | str | datetime) -> str:
    """One way to show a time: UTC, to the second, with the zone."""
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def human(value: Any, key: str = "") -> str:
    """A value as a person reads it: yes/no, '-', times, lists and dicts without Python
    syntax. Nothing is shortened."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if (key in _TIME_KEYS or key.endswith("_at")) and value and not isinstance(value, bool):
        return human_time(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={human(v, k)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(human(v) for v in value) or "-"
    return str(value)


def emit_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


def show(
    title: str,
    data: dict,
    *,
    as_json: bool = False,
    quiet_key: str | None = None,
    quiet: bool = False,
) -> None:
    """A record as a two-column table (or JSON; or with ``-q`` just ``data[quiet_key]``)."""
    if as_json:
        emit_json(data)
    elif quiet and quiet_key:
        out.print(str(data[quiet_key]))
    else:
        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column(no_wrap=True, style="bold")
        table.add_column(overflow="fold")
        for k, v in data.items():
            table.add_row(k.replace("_", " "), Text(human(v, k)))  # literally: no markup
        out.print(table)


def show_rows(
    rows: list[dict],
    columns: list[str],
    *,
    as_json: bool = False,
    quiet_key: str | None = None,
    quiet: bool = False,
    empty: str = "none",
) -> None:
    """Records as a table with every value in full (wrapped, never cut)."""
    if as_json:
        emit_json(rows)
        return
    if quiet and quiet_key:
        for r in rows:
            out.print(str(r[quiet_key]))
        return
    if not rows:
        console.print(empty)
        return
    table = Table(*(c.replace("_", " ") for c in columns))
    for c in table.columns:
        c.overflow = "fold"
    for r in rows:
        table.add_row(*(Text(human(r.get(c), c)) for c in columns))
    out.print(table)


def progress_bar(as_json: bool) -> tuple[Any, Callable[[int, int, str], None]]:
    """A progress bar on a terminal (silent in pipes and with --json) and its update hook."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=as_json or not console.is_terminal,
    )
    task = bar.add_task("working", total=None)

    def update(done: int, total: int, stage: str) -> None:
        bar.update(task, completed=done, total=total, description=stage)

    return bar, update
