"""Register on a node of its own; SIGKILL right after the node accepted the registration
transaction, before it is mined (ganache's miner is stopped first).

``python -m tests.security.pending_tx_driver INPUT`` with VEILCHAIN_DATA_DIR and
VEILCHAIN_CHAIN__RPC_URL set. Used by test_pending_tx.py."""

from __future__ import annotations

import os
import signal
import sys

from veilchain.chain import ChainBackend
from veilchain.config import get_settings
from veilchain.platform.wiring import build_service


def main(inputs: str) -> None:
    original = ChainBackend.send_raw_transaction

    def send(self, raw: bytes, *, action: str) -> bytes:
        if not action.startswith("registerDataset"):
            return original(self, raw, action=action)
        self.w3.provider.make_request("miner_stop", [])  # ganache: the tx stays pending
        original(self, raw, action=action)
        os.kill(os.getpid(), signal.SIGKILL)

    ChainBackend.send_raw_transaction = send
    service = build_service(get_settings())
    service.register([inputs], name="pending", method="blur", allow_recognizable=True)


if __name__ == "__main__":
    main(sys.argv[1])
