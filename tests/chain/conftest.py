"""Chain fixtures: the embedded-only deployment (the ``chain`` fixture on both backends is in
the top-level conftest.py, the builders in tests/factories.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.factories import Deployed, deploy_with_roles
from veilchain.chain import EthTesterBackend


@pytest.fixture(scope="module")
def embedded_chain() -> Iterator[Deployed]:
    """The same deployment on an in-memory embedded chain only."""
    backend = EthTesterBackend(None)
    try:
        yield deploy_with_roles(backend)
    finally:
        backend.close()
