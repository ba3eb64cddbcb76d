"""A registration SIGKILLed at any point resumes to exactly one data set on chain, every
image pinned, no key without its image; before resuming, the chain never holds a data set
whose images are not all pinned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import make_settings
from tests.platform.register_driver import STATEMENTS
from veilchain.platform.registrations import REGISTERED
from veilchain.platform.statements import DatasetStatements
from veilchain.platform.wiring import build_service

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _kill_run(data_dir: Path, inputs: Path, kill_at: str) -> int:
    env = {**os.environ, "VEILCHAIN_DATA_DIR": str(data_dir), "VEILCHAIN_ENV": "test"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.platform.register_driver", str(inputs), kill_at],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return proc.returncode


@pytest.mark.parametrize(
    "kill_at",
    ["image:1", "after-encrypt:2", "after-pin:2", "after-manifest", "before-tx", "after-tx"],
)
def test_sigkill_then_resume(tmp_path, sample_inputs, kill_at):
    data_dir = tmp_path / "data"
    assert _kill_run(data_dir, sample_inputs, kill_at) == -signal.SIGKILL

    svc = build_service(make_settings(data_dir))
    # Invariant at the moment of the crash: anything on chain is complete and verifies.
    for ds in range(1, svc.chain.dataset_count() + 1):
        assert svc.verify(ds).ok
    pending = svc.pending_registrations()
    assert len(pending) == 1
    uid = pending[0].uid

    results = svc.resume(allow_recognizable=True)
    assert len(results) == 1 and results[0].records == 3
    assert svc.chain.dataset_count() == 1, "resume must not register twice"
    assert svc.verify(results[0].dataset_id).ok
    assert not svc.pending_registrations()
    manifest = svc.manifest(results[0].dataset_id)
    assert manifest.statements == DatasetStatements(**STATEMENTS)
    ids = {r.image_id for r in manifest.records}
    assert svc.keys.images_with_keys(uid) == ids, "a key without its image, or the reverse"
    for rec in manifest.records:
        assert svc.storage.has(rec.cid)
    with svc.session_factory() as s:
        from veilchain.platform.registrations import RegistrationRow

        assert s.get(RegistrationRow, uid).status == REGISTERED


def test_abort_leaves_no_key(tmp_path, sample_inputs):
    data_dir = tmp_path / "data"
    assert _kill_run(data_dir, sample_inputs, "image:2") == -signal.SIGKILL
    svc = build_service(make_settings(data_dir))
    uid = svc.pending_registrations()[0].uid
    assert svc.keys.images_with_keys(uid)
    svc.abort(uid)
    assert svc.keys.images_with_keys(uid) == set()
    assert not svc.pending_registrations() and svc.chain.dataset_count() == 0
