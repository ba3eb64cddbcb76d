"""A throwaway PostgreSQL cluster on 127.0.0.1: ``start_postgres`` (a context manager, also
used by bench/api.py) and the pytest fixture ``pg_url`` built on it.

The cluster lives in a temp dir, made with ``initdb`` and run with ``pg_ctl`` from
``/usr/lib/postgresql/*/bin``. As root both run as the ``postgres`` user (PostgreSQL refuses
root). In CI (env ``CI`` set) a missing PostgreSQL is a failure; locally the tests skip.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port, server_missing

INSTALL_HINT = "run `apt-get install -y postgresql` (.ci/run does)"


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries (or no user to run them as root)."""


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _run(cmd: list[str], user: str | None) -> subprocess.CompletedProcess:
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@contextlib.contextmanager
def start_postgres(*, durable: bool = False) -> Iterator[str]:
    """Yield a SQLAlchemy URL ``postgresql+psycopg://...`` to an empty database on a free port.

    ``durable=False`` (tests) turns fsync off; the benchmark keeps PostgreSQL's defaults.
    Raises :class:`PostgresMissing`, or RuntimeError with the server's words on a failed start.
    """
    bindir = _pg_bin()
    if bindir is None:
        raise PostgresMissing("PostgreSQL server binaries not found under /usr/lib/postgresql")
    user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresMissing(
                "running as root and no `postgres` user to run the server as"
            ) from None
        user = "postgres"
    tmp = Path(tempfile.mkdtemp(prefix="veilchain-pg-"))
    if user:
        shutil.chown(tmp, user=user)
    data, port = tmp / "data", free_port()
    res = _run(
        [str(bindir / "initdb"), "-D", str(data), "-U", "veilchain", "-A", "trust", "-E", "UTF8"],
        user,
    )
    if res.returncode != 0:
        raise RuntimeError(f"initdb failed: {res.stderr.strip().splitlines()[-1:]}")
    opts = f"-h 127.0.0.1 -p {port} -k {tmp}"
    if not durable:
        opts += " -c fsync=off -c full_page_writes=off"
    ctl = [str(bindir / "pg_ctl"), "-D", str(data)]
    res = _run([*ctl, "-o", opts, "-l", str(tmp / "log"), "-w", "start"], user)
    if res.returncode != 0:
        raise RuntimeError(f"pg_ctl start failed: {(tmp / 'log').read_text()[-500:]}")
    try:
        res = _run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "veilchain",
             "veilchain"],
            user,
        )  # fmt: skip
        if res.returncode != 0:
            raise RuntimeError(f"createdb failed: {res.stderr.strip()}")
        yield f"postgresql+psycopg://veilchain@127.0.0.1:{port}/veilchain"
    finally:
        _run([*ctl, "-m", "fast", "-w", "stop"], user)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    try:
        with start_postgres() as url:
            yield url
    except PostgresMissing as exc:
        server_missing(f"{exc}; {INSTALL_HINT}")
    except RuntimeError as exc:
        pytest.fail(str(exc))
