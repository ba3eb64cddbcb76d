"""Security tests: attacks against the real service on embedded defaults (py-evm chain,
block store, SQLite in a temp dir), through the real FastAPI app or a `veilchain serve`
subprocess. Nothing here is mocked: each test reproduces a finding of issue 18."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from tests.factories import Stack, api_settings, upload, wait_job
from veilchain.platform.api import create_app


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One app per test module on a fresh data dir."""
    data_dir = tmp_path_factory.mktemp("sec")
    app = create_app(api_settings(data_dir, login_rate_per_minute=10_000))
    with TestClient(app) as client:
        yield Stack(client, app, app.state.ctx.service)
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def dataset(stack) -> dict:
    """A registered data set of the sample photos: {dataset_id, version, ...}."""
    h = stack.headers("institution")
    job = upload(stack.client, h, names=("obama.jpg",))
    done = wait_job(stack.client, job["id"], h)
    assert done["status"] == "succeeded", done["error"]
    return done["result"]
