"""One bounded wait for every test: poll a probe until it answers, or fail naming what."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 20.0) -> T:
    """Call ``probe`` until it returns something other than None (or False), within a deadline.

    Probes here are long-polls or cheap reads; the short pause only keeps a cheap probe from
    spinning a core.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None and value is not False:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
