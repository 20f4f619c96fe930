"""When a failed yagna call may be sent again, and how long to wait first.

Pure policy, no I/O. The rule: retry only what cannot double an effect. A connection that was never
opened can always be retried; anything else only when the call is idempotent (reads, PUT of a
state, DELETE). Creating, confirming or accepting is never retried blindly: a lost answer does not
mean the action did not happen.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from golem_actors import arguments

__all__ = ["Failure", "RetryPolicy"]


class Failure(enum.Enum):
    """What went wrong with one attempt."""

    CONNECT = "connect"  # the request never left: refused, DNS, connect timeout
    BROKEN = "broken"  # the connection broke after the request may have been sent
    READ_TIMEOUT = "read_timeout"  # no answer in time; yagna may still be acting on it
    STATUS = "status"  # yagna answered with an HTTP error status


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded in attempts and delay."""

    attempts: int = 4
    base_delay: float = 0.1
    max_delay: float = 2.0
    jitter: float = 0.5
    retry_statuses: frozenset[int] = field(default=frozenset({502, 503, 504}))

    def __post_init__(self) -> None:
        arguments.whole("RetryPolicy.attempts", self.attempts, ge=1)
        arguments.number("RetryPolicy.base_delay", self.base_delay, ge=0)
        arguments.number("RetryPolicy.max_delay", self.max_delay, ge=self.base_delay)
        arguments.number("RetryPolicy.jitter", self.jitter, ge=0, le=1)

    def should_retry(
        self,
        attempt: int,
        failure: Failure,
        *,
        idempotent: bool,
        status: int | None = None,
    ) -> bool:
        """Whether attempt number ``attempt`` (1-based) that failed so may be tried again."""
        if attempt >= self.attempts:
            return False
        if failure is Failure.CONNECT:
            return True
        if not idempotent:
            return False
        if failure is Failure.STATUS:
            return status in self.retry_statuses
        # A broken connection on a read is safe to repeat; a read timeout is the caller's
        # deadline, and repeating it would silently double the wait.
        return failure is Failure.BROKEN

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after attempt ``attempt`` failed: base * 2^(n-1), capped, jittered."""
        raw = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return float(raw * (1 - self.jitter * rand()))
