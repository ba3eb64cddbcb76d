"""``veilchain serve`` that SIGKILLs itself at a chosen step of the first registration job.

Used by test_api_exactly_once.py: ``python -m tests.security.serve_driver KILL_AT PORT`` with
VEILCHAIN_DATA_DIR set. KILL_AT: image:N (after N images are stored), after-pin:N (ciphertext
pinned, not recorded), before-tx, after-tx (transaction mined, not recorded), after-record
(registration recorded, the job not yet marked succeeded), none.
"""

from __future__ import annotations

import os
import signal
import sys

from veilchain.chain import ChainClient
from veilchain.platform.service import VeilchainService
from veilchain.platform.storage import IpfsStorage


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _after_call(cls, name: str, nth: int) -> None:
    original = getattr(cls, name)
    calls = {"n": 0}

    def wrapper(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == nth:
            _die()
        return result

    setattr(cls, name, wrapper)


def main(kill_at: str, port: str) -> None:
    where, _, n = kill_at.partition(":")
    if where == "image":
        original = VeilchainService._process_images

        def process(self, reg, allow, progress):
            def dying(done, total, stage):
                progress(done, total, stage)
                if done == int(n):
                    _die()

            return original(self, reg, allow, dying)

        VeilchainService._process_images = process
    elif where == "after-pin":
        # the spool is not pinned; pins start with the first anonymized image
        _after_call(IpfsStorage, "add", int(n))
    elif where == "before-tx":
        ChainClient.register_dataset = lambda self, **kw: _die()
    elif where == "after-tx":
        _after_call(ChainClient, "register_dataset", 1)
    elif where == "after-record":
        _after_call(VeilchainService, "_submit", 1)
    from veilchain.cli import app

    app(["serve", "--host", "127.0.0.1", "--port", port])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
