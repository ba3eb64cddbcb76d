"""``veilchain serve`` that SIGKILLs itself at a chosen step of the first registration job.

Used by test_api_exactly_once.py: ``python -m tests.security.serve_driver KILL_AT PORT`` with
VEILCHAIN_DATA_DIR set. KILL_AT: image:N (after N images are stored), after-pin:N (ciphertext
pinned, not recorded), before-tx, after-tx (transaction mined, not recorded), after-record
(registration recorded, the job not yet marked succeeded), none.
"""

from __future__ import annotations

import sys

from tests.kill_points import die, die_after_call
from veilchain.chain import ChainClient
from veilchain.platform.registration import Registrar
from veilchain.platform.storage import IpfsStorage
from veilchain.platform.submission import Submitter


def main(kill_at: str, port: str) -> None:
    where, _, n = kill_at.partition(":")
    if where == "image":
        original = Registrar._process_images

        def process(self, reg, allow, progress):
            def dying(done, total, stage):
                progress(done, total, stage)
                if done == int(n):
                    die()

            return original(self, reg, allow, dying)

        Registrar._process_images = process
    elif where == "after-pin":
        # the spool is not pinned; pins start with the first anonymized image
        die_after_call(IpfsStorage, "add", int(n))
    elif where == "before-tx":
        ChainClient.register_dataset = lambda self, **kw: die()
    elif where == "after-tx":
        die_after_call(ChainClient, "register_dataset", 1)
    elif where == "after-record":
        die_after_call(Submitter, "submit", 1)
    from veilchain.cli import app

    app(["serve", "--host", "127.0.0.1", "--port", port])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
