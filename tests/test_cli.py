"""The veilchain command's own options, and a quiet start."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from veilchain import __version__


def test_version():
    out = subprocess.run(
        [sys.executable, "-m", "veilchain.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == f"veilchain {__version__}"


def test_the_auth_module_loads_without_grammar_warnings():
    """siwe's grammar used to print four abnf GrammarWarnings at every server start."""
    code = (
        "import veilchain.platform.auth; "
        "from siwe import SiweMessage; "
        "SiweMessage.from_message("
        "'localhost wants you to sign in with your Ethereum account:\\n"
        "0x0000000000000000000000000000000000000001\\n\\n\\nURI: http://localhost\\n"
        "Version: 1\\nChain ID: 1\\nNonce: 12345678abcd\\n"
        "Issued At: 2026-01-01T00:00:00Z')"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", code], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "GrammarWarning" not in out.stderr


# --- help text: every command, at 80 columns ---------------------------------------------
def _commands():
    import typer.main

    from veilchain.cli import app

    root = typer.main.get_command(app)

    def walk(cmd, path):
        yield path
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, [*path, name])

    return [p for p in walk(root, []) if p]


def test_every_help_is_complete_at_80_columns():
    from typer.testing import CliRunner

    from veilchain.cli import app

    runner = CliRunner(env={"COLUMNS": "80"})
    commands = _commands()
    assert {("register",), ("list",), ("show",), ("verify",), ("jobs",)} <= {
        tuple(c) for c in commands
    }
    for path in commands:
        res = runner.invoke(app, [*path, "--help"])
        text = res.output
        assert res.exit_code == 0, (path, text)
        assert "<list[" not in text and "<Path>" not in text, (path, text)
        assert "…" not in text, f"{' '.join(path)} --help truncates: {text}"
        assert "Example" in text, f"{' '.join(path)} --help has no example"
        assert max(len(line) for line in text.splitlines()) <= 80, path


# --- errors: one line, the README's exit code --------------------------------------------
README = Path(__file__).resolve().parents[1] / "README.md"


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILCHAIN_")}
    env.update(VEILCHAIN_ENV="test", PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, "-m", "veilchain.cli", *args, "--data-dir", str(data_dir)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def _readme_codes() -> dict[str, int]:
    text = " ".join(README.read_text().split())
    found = dict(re.findall(r"(\d+) (not found|wrong state|bad input|chain|storage)", text))
    return {name: int(code) for code, name in found.items()}


def test_readme_documents_the_codes_the_cli_uses():
    from veilchain.cli.output import EXIT_HELP

    codes = _readme_codes()
    assert codes["bad input"] == 2 and codes["not found"] == 7 and codes["wrong state"] == 8
    for code, name in [(7, "not found"), (8, "wrong state"), (2, "bad input")]:
        assert f"{code} {name}" in EXIT_HELP


@pytest.mark.slow
def test_error_cases_exit_with_the_documented_code(tmp_path):
    codes = _readme_codes()
    empty = tmp_path / "nothing-here"
    r = _cli(empty, "verify", "1")
    assert r.returncode == codes["bad input"] and r.stderr.startswith("error: "), r.stderr
    assert not empty.exists(), "a read-only command created a data directory"

    home = tmp_path / "home"
    csv = tmp_path / "table.csv"
    csv.write_text("a,b\n1,2\n")
    r = _cli(home, "register", str(csv), "--name", "x", "--method", "blur")
    assert r.returncode == codes["bad input"] and "table.csv" in r.stderr, r.stderr
    r = _cli(home, "register", str(csv), "--name", "x", "--method", "dp", "--epsilon", "-1")
    assert r.returncode == codes["bad input"], r.stderr
    r = _cli(home, "register", "--resume")
    assert r.returncode == codes["wrong state"], r.stderr
    r = _cli(home, "show", "99")
    assert r.returncode == codes["not found"] and "no data set 99" in r.stderr, r.stderr
    r = _cli(home, "verify", "99", "--json")
    doc = json.loads(r.stderr)  # --json: the error as JSON on stderr
    assert r.returncode == doc["exit_code"] == codes["not found"], r.stderr
    assert doc["code"] == "DatasetNotFoundError" and r.stdout == ""
    for r in (_cli(home, "grant", "99", "--to", "0x" + "ab" * 20),):
        assert r.returncode == codes["not found"], r.stderr
        assert "reverted" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


# --- the data set statements: given to register, shown by show -----------------------------
@pytest.mark.slow
def test_register_publishes_the_statements_and_show_prints_them(tmp_path, sample_inputs):
    home = tmp_path / "home"
    consent = "Every person shown signed the form of 2026-11-02.\nWithdrawal: privacy@x.org"
    r = _cli(home, "register", str(sample_inputs), "--name", "staff", "--method", "blur",
             "--allow-recognizable", "--description", "Staff [bold]portraits[/bold]",
             "--licence", "CC-BY-4.0", "--consent", consent, "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    ds = r.stdout.strip()
    r = _cli(home, "show", ds, "--json")
    shown = json.loads(r.stdout)
    assert shown["description"] == "Staff [bold]portraits[/bold]"
    assert (shown["licence"], shown["consent"]) == ("CC-BY-4.0", consent)
    r = _cli(home, "show", ds)
    text = " ".join(r.stdout.split())
    assert r.returncode == 0 and "Staff [bold]portraits[/bold]" in text, r.stdout  # no markup
    assert "CC-BY-4.0" in text and "Withdrawal: privacy@x.org" in text
    r = _cli(home, "verify", ds)
    assert r.returncode == 0, r.stdout + r.stderr

    r = _cli(home, "register", str(sample_inputs), "--name", "plain", "--method", "blur",
             "--allow-recognizable", "-q")  # fmt: skip
    r = _cli(home, "show", r.stdout.strip())
    assert r.stdout.count("not given at registration") == 3, r.stdout

    codes = _readme_codes()
    for bad, words in [(["--licence", "MIT\nand more"], "the licence must be one line"),
                       (["--consent", "bell \x07"], "control character U+0007")]:  # fmt: skip
        r = _cli(home, "register", str(sample_inputs), "--name", "x", "--method", "blur", *bad)
        assert r.returncode == codes["bad input"], r.stderr
        assert r.stderr.startswith("error: ") and words in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = _cli(home, "list", "--json")
    assert len(json.loads(r.stdout)) == 2  # the refused ones registered nothing
