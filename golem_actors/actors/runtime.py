"""What every actor of one run shares: the timer thread, the I/O pool, the yagna client, events.

One ``Runtime`` per run. Actors reach yagna only through ``client`` from I/O workers, never from
their own threads. Counters here are cheap (plain ints under the GIL); the metrics module reads
them at scrape time instead of putting a Prometheus call on every message.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pykka

from golem_actors.actors.io import Io
from golem_actors.actors.scheduler import Scheduler
from golem_actors.costs import CostBook
from golem_actors.events import Event, EventBus
from golem_actors.journal import Journal
from golem_actors.yagna import ApiConfig, YagnaClient

__all__ = ["Runtime", "RuntimeStats"]

log = logging.getLogger(__name__)


@dataclass
class RuntimeStats:
    """Actor-level counters, keyed by role (a bounded set), read by the metrics collector."""

    live: Counter[str] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)
    message_seconds: dict[str, float] = field(default_factory=dict)
    failures: Counter[tuple[str, str]] = field(default_factory=Counter)
    unhandled: Counter[str] = field(default_factory=Counter)
    observers: list[Callable[[str, float], None]] = field(default_factory=list)


class Runtime:
    """The shared services of one run; ``close()`` stops the timer thread and the I/O pool."""

    def __init__(
        self,
        config: ApiConfig,
        *,
        scheduler: Scheduler | None = None,
        io: Io | None = None,
        events: EventBus | None = None,
        client: YagnaClient | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.config = config
        self.journal = journal  # where decisions are written before they are sent (or None)
        self.scheduler = scheduler or Scheduler()
        self.io = io or Io()
        self.events = events or EventBus()
        self.costs = CostBook()  # per agreement, from the payment events: ctx.cost(), snapshots
        self.events.subscribe(self.costs.on_event)
        self.client = client or YagnaClient(config, pool_maxsize=2048)
        self.stats = RuntimeStats()
        self._lock = threading.Lock()
        self._actors: set[pykka.ActorRef[Any]] = set()
        self.scheduler.start()

    def emit(self, event: Event) -> None:
        self.events.emit(event)

    def track(self, ref: pykka.ActorRef[Any]) -> None:
        with self._lock:
            self._actors.add(ref)

    def untrack(self, ref: pykka.ActorRef[Any]) -> None:
        with self._lock:
            self._actors.discard(ref)

    def actor_refs(self) -> list[pykka.ActorRef[Any]]:
        """The run's live actors now (for scrape-time metrics such as mailbox depth)."""
        with self._lock:
            return list(self._actors)

    def stop_actors(self, timeout: float = 10.0) -> int:
        """Stop every actor of this run still alive (e.g. one still cleaning up after a dead
        provider); returns how many had to be stopped."""
        with self._lock:
            left = list(self._actors)
        futures = []
        for ref in left:
            try:
                futures.append(ref.stop(block=False))
            except pykka.ActorDeadError:
                continue
        deadline = time.monotonic() + timeout
        for future in futures:
            with contextlib.suppress(pykka.Timeout, pykka.ActorDeadError):
                future.get(timeout=max(0.0, deadline - time.monotonic()))
        return len(left)

    def close(self) -> None:
        self.stop_actors()
        self.scheduler.stop()
        self.io.close()
        self.client.close()

    # -- actor bookkeeping (called from the actors' own threads) ----------------------------

    def actor_started(self, role: str) -> None:
        with self._lock:
            self.stats.live[role] += 1

    def actor_stopped(self, role: str) -> None:
        with self._lock:
            if self.stats.live[role] > 0:
                self.stats.live[role] -= 1

    def actor_failed(self, role: str, phase: str) -> None:
        with self._lock:
            self.stats.failures[role, phase] += 1

    def unhandled(self, role: str, message: Any) -> None:
        with self._lock:
            self.stats.unhandled[role] += 1
        log.warning("%s: unhandled message %s", role, type(message).__name__)

    @contextlib.contextmanager
    def timed_message(self, role: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                self.stats.messages[role] += 1
                self.stats.message_seconds[role] = (
                    self.stats.message_seconds.get(role, 0.0) + elapsed
                )
            for observer in self.stats.observers:
                observer(role, elapsed)
