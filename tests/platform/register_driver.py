"""Run one registration in a fresh process and SIGKILL it at a chosen point.

Used by test_service_resume.py: ``python -m tests.platform.register_driver INPUT KILL_AT``
with VEILCHAIN_DATA_DIR set. KILL_AT is one of: image:N (after N images are stored),
after-encrypt:N (a data key stored, ciphertext not pinned), after-pin:N (ciphertext pinned,
not recorded), after-manifest (the manifest pinned, not recorded), before-tx, after-tx
(transaction mined, not recorded), none.
"""

from __future__ import annotations

import sys

from tests.kill_points import die, die_after_call
from veilchain.chain import ChainClient
from veilchain.config import get_settings
from veilchain.platform.keys import KeyManager
from veilchain.platform.storage import IpfsStorage
from veilchain.platform.wiring import build_service

# published in the manifest: a resumed registration must pin them as given
STATEMENTS = {"description": "killed\nand resumed", "licence": "CC0-1.0", "consent": "given"}


def main(inputs: str, kill_at: str) -> None:
    where, _, n = kill_at.partition(":")
    progress = None
    if where == "image":
        progress = lambda done, total, stage: die() if done == int(n) else None  # noqa: E731
    elif where == "after-encrypt":
        die_after_call(KeyManager, "encrypt", int(n))
    elif where == "after-pin":
        die_after_call(IpfsStorage, "add", int(n))
    elif where == "after-manifest":  # the manifest is streamed to a file and pinned from it
        die_after_call(IpfsStorage, "add_file", 1)
    elif where == "before-tx":
        ChainClient.register_dataset = lambda self, **kw: die()
    elif where == "after-tx":
        die_after_call(ChainClient, "register_dataset", 1)
    service = build_service(get_settings())
    kwargs = {"progress": progress} if progress else {}
    service.register([inputs], name="killed", method="blur", allow_recognizable=True,
                     **STATEMENTS, **kwargs)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
