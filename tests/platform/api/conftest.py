"""API test fixtures: the real service on embedded defaults (py-evm chain, block store, SQLite)
in a temp dir behind a TestClient, and one registered data set. The sign-in and upload
helpers are in tests/factories.py."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from tests.factories import Stack, api_settings, upload, wait_job
from veilchain.platform.api import create_app


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One app per test module on a fresh data dir (the py-evm chain persists in it)."""
    data_dir = tmp_path_factory.mktemp("api")
    settings = api_settings(data_dir, login_rate_per_minute=10_000)
    app = create_app(settings)
    with TestClient(app) as client:
        yield Stack(client, app, app.state.ctx.service)
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def dataset(stack) -> dict:
    """A registered data set of the sample photos: {dataset_id, version, ...}."""
    h = stack.headers("institution")
    job = upload(stack.client, h)
    done = wait_job(stack.client, job["id"], h)
    assert done["status"] == "succeeded", done["error"]
    return done["result"]
