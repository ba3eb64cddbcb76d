"""Fixtures that several test packages use; plain builders are in tests/factories.py."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column  # module level: the mapper resolves them here

from tests.factories import SAMPLE_INPUT_NAMES, Deployed, deploy_with_roles
from veilchain.platform.db import Base

# Real servers the suite starts itself (ganache, js-ipfs, PostgreSQL); each module owns one.
pytest_plugins = [
    "tests.servers.ganache",
    "tests.servers.ipfs",
    "tests.servers.postgres",
]


# `make test` runs the suite in parallel (pytest-xdist, `-n auto --dist loadgroup`). Each test
# file runs whole on one worker, so module fixtures are built once; every test that uses the
# Ray cluster fixture is grouped on one worker too, since two local Ray clusters started at
# once on one machine would share Ray's session files. Files with the most slow tests go
# first (a file's tests stay together and in order), so that no long file starts last.
@pytest.hookimpl(tryfirst=True)  # before xdist appends the group names to the test ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    slow: dict[str, int] = {}
    for item in items:
        if "ray_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("ray"))
        file = item.nodeid.split("::")[0]
        slow[file] = slow.get(file, 0) + bool(item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.nodeid.split("::")[0]])


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    from xdist.scheduler import LoadGroupScheduling

    class ByFileOrGroup(LoadGroupScheduling):
        """A test's unit of work is its xdist group if it has one, else its file."""

        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return scope if scope != nodeid else nodeid.split("::", 1)[0]

    return ByFileOrGroup(config, log)


@pytest.fixture(scope="session")
def sample_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real photos that ship with the package (see data/samples/SOURCES.md)."""
    from veilchain.platform.demo import samples_dir

    d = tmp_path_factory.mktemp("inputs")
    for name in SAMPLE_INPUT_NAMES:
        shutil.copy(samples_dir() / name, d / name)
    return d


@pytest.fixture(
    scope="module",
    params=["embedded", pytest.param("ganache", marks=pytest.mark.integration)],
)
def chain(request) -> Iterator[Deployed]:
    """A fresh VeilRegistry with all roles appointed, on the embedded chain and on ganache."""
    from veilchain.chain import ChainBackend, EthTesterBackend, JsonRpcBackend

    if request.param == "embedded":
        backend: ChainBackend = EthTesterBackend(None)
    else:
        backend = JsonRpcBackend(request.getfixturevalue("ganache_url"))
    try:
        yield deploy_with_roles(backend)
    finally:
        backend.close()


@pytest.fixture(scope="module")
def widget_model():
    """A scratch table on the shared Base, removed again so no other test (e.g. the
    migration drift check) ever sees it."""

    class _Widget(Base):
        __tablename__ = "test_db_widgets"

        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        name: Mapped[str] = mapped_column(String(50))

    yield _Widget
    Base.metadata.remove(_Widget.__table__)  # the class stays mapped; nothing else uses it
