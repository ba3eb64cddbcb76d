"""Exactly-once on a node that mines on its own schedule: a registration killed after its
transaction reached the node but before it was mined used to be sent again on resume (the
chain did not show it yet), and both copies were mined. The resume now waits for the
transaction whose hash it recorded before sending."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.servers import stop_process_group
from tests.servers.ganache import require_ganache, start_ganache
from veilchain.platform.registrations import SUBMITTING

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
GANACHE_KEY0 = "0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d"


def test_resume_waits_for_the_pending_registration_tx(tmp_path, sample_inputs) -> None:
    from veilchain.config import Settings
    from veilchain.platform.wiring import build_service

    require_ganache()
    proc, url = start_ganache(tmp_path / "ganache.log")
    try:
        data_dir = tmp_path / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("VEILCHAIN_")}
        env.update(VEILCHAIN_DATA_DIR=str(data_dir), VEILCHAIN_ENV="test",
                   VEILCHAIN_CHAIN__RPC_URL=url, VEILCHAIN_CHAIN__PRIVATE_KEY=GANACHE_KEY0,
                   PYTHONWARNINGS="ignore",
                   PYTHONPATH=str(ROOT / "src") + os.pathsep + str(ROOT))  # fmt: skip
        run = subprocess.run(
            [sys.executable, "-m", "tests.security.pending_tx_driver", str(sample_inputs)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]
        settings = Settings(env="test", data_dir=data_dir,
                            chain={"rpc_url": url, "private_key": GANACHE_KEY0})  # fmt: skip
        svc = build_service(settings)
        (pending,) = svc.pending_registrations()
        assert pending.status == SUBMITTING and pending.tx_hash  # recorded before it was sent
        assert svc.chain.dataset_count() == 0  # still pending: the miner is stopped
        w3 = svc.chain.backend.w3
        threading.Timer(3.0, lambda: w3.provider.make_request("miner_start", [])).start()
        (result,) = svc.resume(allow_recognizable=True)  # mining resumes while it waits
        time.sleep(1)  # a second transaction, had one been sent, is mined by now too
        assert svc.chain.dataset_count() == 1, "the registration reached the chain twice"
        assert result.tx_hash == pending.tx_hash
    finally:
        stop_process_group(proc)
