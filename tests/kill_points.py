"""Kill points for the crash tests' driver processes: SIGKILL at a chosen step."""

from __future__ import annotations

import os
import signal


def die() -> None:
    """SIGKILL this process: no cleanup, no flush, as a crash would."""
    os.kill(os.getpid(), signal.SIGKILL)


def die_after_call(cls, name: str, nth: int) -> None:
    """Patch ``cls.name`` so that the process dies right after its ``nth`` call returns."""
    original = getattr(cls, name)
    calls = {"n": 0}

    def wrapper(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == nth:
            die()
        return result

    setattr(cls, name, wrapper)
