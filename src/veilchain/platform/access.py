"""Whether a grant is live now: on the chain's clock AND on this host's clock.

The contract judges expiry on ``block.timestamp`` of the block a call reads. The embedded
chain mines an empty block before an access check when its head is older than
``CLOCK_MAX_LAG_S`` (chain/client.py), but a node of its own (ganache, anvil, a testnet)
mines on its own schedule, so its head block can be seconds (a dev node idling: minutes)
old. Refusing when either clock says expired closes that window on this side; the window
left is this host's clock error (see docs/api.md, "Expiry").
"""

from __future__ import annotations

import time

__all__ = ["live_grant_until"]


def live_grant_until(chain, dataset_id: int, address: str) -> int | None:
    """The grant's ``expires_at`` if both the chain and this host's clock say it is live."""
    until = chain.access_until(dataset_id, address)
    if until is None or time.time() >= until:
        return None
    return until
