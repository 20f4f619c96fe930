"""Daemons localnet starts die with the process that started them, even on SIGKILL.

``LocalNet.stop()`` stops them in order; this is the safety net for when it never runs (the
owner killed with SIGKILL or SIGTERM without a handler): Linux's parent-death signal, set in the
child between fork and exec. The "parent" is the *thread* that started the child, so localnet
is started from a thread that lives as long as the network (the main thread, in practice).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from collections.abc import Callable

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks for ``sig`` when the parent dies (None where unsupported)."""
    name = ctypes.util.find_library("c")
    if name is None or not hasattr(os, "getppid"):
        return None
    libc = ctypes.CDLL(name, use_errno=True)
    parent = os.getpid()

    def arm() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), sig)

    return arm
