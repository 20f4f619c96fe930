"""One shared timer thread for all periodic work, with Akka's keyed-timer semantics.

pykka has no timers, and a ``threading.Timer`` per tick costs a thread each, six times the CPU,
and collapses when ticks line up (``../shared/notes/pykka-scale.md``). So one thread keeps a
heap of ``(due, seq, timer)`` and ``tell``s each due message to its actor.

Timers are keyed per actor (Akka's ``TimerScheduler``): scheduling a key again replaces the old
timer, and every message is delivered wrapped in a :class:`Tick` carrying ``(key, generation)``.
An actor passes each tick to :meth:`Scheduler.is_current` and drops it if that says no, so a
cancelled or superseded timer's message is never *processed*, even if it was already in the
inbox when the timer was cancelled. Periodic timers are re-armed from their due time, not from
when they ran, so they do not drift. A tick for a dead actor is a dead letter: counted, and all
of that actor's timers are dropped.

:class:`ManualScheduler` has the same API on a clock that only moves when a test calls
:meth:`ManualScheduler.advance` (like Akka's ManualTime), delivering due ticks synchronously and
in order.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pykka

from golem_actors import arguments

__all__ = [
    "ManualScheduler",
    "Recipient",
    "Scheduler",
    "Tick",
    "TimerHandle",
    "jittered_first_delay",
]

log = logging.getLogger(__name__)

_MAX_WAIT_S = 1.0  # the timer thread re-checks at least this often, whatever the clock does
_COMPACT_SLACK = 1024  # stale heap entries tolerated beyond twice the live timers


class Recipient(Protocol):
    """What a timer delivers to: a pykka ``ActorRef`` (or a test double shaped like one)."""

    actor_urn: str

    def tell(self, message: Any) -> None: ...


@dataclass(frozen=True)
class Tick:
    """A timer's message as the actor receives it.

    ``due`` is when it was meant to arrive (on the scheduler's clock), so lateness can be
    measured and a periodic timer's phase seen.
    """

    key: Hashable
    generation: int
    payload: Any
    due: float


@dataclass(eq=False)
class _Timer:
    ref: Recipient
    key: Hashable
    generation: int
    payload: Any
    period_s: float | None
    due: float
    pending: bool = True  # False once cancelled, or once a single-shot timer has fired


@dataclass(frozen=True)
class TimerHandle:
    """One scheduled timer; cancelling it never touches a newer timer with the same key."""

    actor_urn: str
    key: Hashable
    generation: int
    _owner: Scheduler = field(repr=False, compare=False)

    def cancel(self) -> bool:
        """Cancel this timer if it is still the current one for its key; True if it was."""
        return self._owner._cancel_generation(self.actor_urn, self.key, self.generation)  # noqa: SLF001

    @property
    def active(self) -> bool:
        """Whether this timer will still fire (a periodic one: fire again)."""
        return self._owner._is_pending(self.actor_urn, self.key, self.generation)  # noqa: SLF001


def jittered_first_delay(period_s: float, key: object) -> float:
    """A first delay in ``[0, period_s)`` derived from ``key``, the same in every process.

    Instances started together would otherwise tick together forever: one shared thread then
    runs a backlog every period (0.5 s at 3,000 aligned ticks, pykka-scale.md table 3).
    """
    arguments.number("period_s", period_s, gt=0)
    digest = hashlib.blake2b(str(key).encode(), digest_size=8).digest()
    return period_s * (int.from_bytes(digest, "big") / 2**64)


class Scheduler:
    """The shared timer thread. ``start()`` it once per run, ``stop()`` it at the end.

    Timers may be scheduled before ``start()``; they fire once it runs. After ``stop()`` nothing
    is delivered and scheduling raises ``RuntimeError``.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, name: str = "golem-timers"
    ) -> None:
        self._clock = clock
        self._name = name
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Timer]] = []
        self._seq = itertools.count()
        self._generations = itertools.count(1)
        self._timers: dict[tuple[str, Hashable], _Timer] = {}
        self._keys_by_actor: dict[str, set[Hashable]] = {}
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._dead_letters = 0
        self._delivered = 0

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the timer thread."""
        with self._cond:
            if self._stopped:
                raise RuntimeError("the scheduler was stopped; make a new one")
            if self._thread is not None:
                raise RuntimeError("the scheduler is already started")
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Drop every timer, end the thread and join it; False if it did not end in time."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._timers.clear()
            self._keys_by_actor.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        if thread.is_alive():
            log.warning("timer thread %s did not end within %.1f s", self._name, timeout)
            return False
        return True

    # -- timers -------------------------------------------------------------------------------

    def now(self) -> float:
        """The scheduler's clock (``time.monotonic`` unless another was injected)."""
        return self._clock()

    def schedule(
        self,
        ref: Recipient,
        message: Any,
        delay_s: float,
        *,
        key: Hashable,
        period_s: float | None = None,
    ) -> TimerHandle:
        """Tell ``ref`` a ``Tick(key, generation, message, due)`` after ``delay_s``.

        With ``period_s``, again every ``period_s`` after that, on a fixed grid. Any timer
        ``ref`` already has under ``key`` is cancelled first.
        """
        arguments.number("delay_s", delay_s, ge=0)
        arguments.optional_number("period_s", period_s, gt=0)
        hash(key)  # an unhashable key fails here, in the caller's thread
        with self._cond:
            if self._stopped:
                raise RuntimeError("the scheduler is stopped")
            urn = ref.actor_urn
            self._drop(urn, key)
            timer = _Timer(
                ref=ref,
                key=key,
                generation=next(self._generations),
                payload=message,
                period_s=period_s,
                due=self._clock() + delay_s,
            )
            self._timers[urn, key] = timer
            self._keys_by_actor.setdefault(urn, set()).add(key)
            self._push(timer)
            if delay_s == 0:
                # Due now: wake the thread even if an earlier (overdue) entry heads the heap,
                # which only happens when the clock jumps (an injected one, or a suspend).
                self._cond.notify()
            return TimerHandle(urn, key, timer.generation, self)

    def cancel(self, ref: Recipient, key: Hashable) -> bool:
        """Cancel ``ref``'s timer under ``key``; True if there was one."""
        with self._cond:
            return self._drop(ref.actor_urn, key)

    def cancel_all(self, ref: Recipient) -> int:
        """Cancel all of ``ref``'s timers (call it when the actor stops); how many there were."""
        with self._cond:
            return self._drop_actor(ref.actor_urn)

    def is_current(self, ref: Recipient, tick: Tick) -> bool:
        """Whether ``tick`` comes from ``ref``'s live timer; if not, the actor must drop it.

        A fired single-shot timer stays current until it is cancelled, replaced, or its actor's
        timers are all cancelled, so its tick is accepted whenever the actor gets to it.
        """
        with self._cond:
            timer = self._timers.get((ref.actor_urn, tick.key))
            return timer is not None and timer.generation == tick.generation

    def is_active(self, ref: Recipient, key: Hashable) -> bool:
        """Whether ``ref`` has a timer under ``key`` that will still fire."""
        with self._cond:
            timer = self._timers.get((ref.actor_urn, key))
            return timer is not None and timer.pending

    @property
    def pending(self) -> int:
        """Timers that will still fire."""
        with self._cond:
            return sum(1 for t in self._timers.values() if t.pending)

    @property
    def dead_letters(self) -> int:
        """Ticks that could not be told because their actor was dead."""
        with self._cond:
            return self._dead_letters

    @property
    def delivered(self) -> int:
        """Ticks told to their actor."""
        with self._cond:
            return self._delivered

    # -- internals (callers hold self._cond unless noted) -------------------------------------

    def _push(self, timer: _Timer) -> None:
        entry = (timer.due, next(self._seq), timer)
        heapq.heappush(self._heap, entry)
        if self._heap[0] is entry:
            self._cond.notify()

    def _drop(self, urn: str, key: Hashable) -> bool:
        timer = self._timers.pop((urn, key), None)
        if timer is None:
            return False
        timer.pending = False  # its heap entry is skipped when it comes up
        keys = self._keys_by_actor.get(urn)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._keys_by_actor[urn]
        self._compact()
        return True

    def _drop_actor(self, urn: str) -> int:
        keys = self._keys_by_actor.pop(urn, set())
        for key in keys:
            timer = self._timers.pop((urn, key), None)
            if timer is not None:
                timer.pending = False
        self._compact()
        return len(keys)

    def _compact(self) -> None:
        # Cancelled entries wait in the heap until their due time; an actor that keeps
        # re-arming a long timer would pile them up, so rebuild once they dominate.
        if len(self._heap) > 2 * len(self._timers) + _COMPACT_SLACK:
            self._heap = [e for e in self._heap if e[2].pending and e[0] == e[2].due]
            heapq.heapify(self._heap)

    def _cancel_generation(self, urn: str, key: Hashable, generation: int) -> bool:
        with self._cond:
            timer = self._timers.get((urn, key))
            if timer is None or timer.generation != generation:
                return False
            return self._drop(urn, key)

    def _is_pending(self, urn: str, key: Hashable, generation: int) -> bool:
        with self._cond:
            timer = self._timers.get((urn, key))
            return timer is not None and timer.generation == generation and timer.pending

    def _pop_due(self, now: float) -> list[tuple[Recipient, Tick]]:
        """Take every tick due by ``now`` off the heap, in order, re-arming periodic timers."""
        out: list[tuple[Recipient, Tick]] = []
        while self._heap and self._heap[0][0] <= now:
            due, _, timer = heapq.heappop(self._heap)
            if not timer.pending or due != timer.due:
                continue  # cancelled or replaced since it was pushed
            out.append((timer.ref, Tick(timer.key, timer.generation, timer.payload, due)))
            if timer.period_s is None:
                timer.pending = False
                continue
            # Fixed grid: the next slot after ``due``. When the thread ran late by whole
            # periods, skip the missed slots rather than fire them in a burst.
            missed = math.floor((now - due) / timer.period_s)
            timer.due = due + timer.period_s * (missed + 1)
            self._push(timer)
        return out

    def _deliver(self, batch: list[tuple[Recipient, Tick]]) -> None:
        """Tell each tick (without holding the lock: a tell may wake another thread)."""
        for ref, tick in batch:
            with self._cond:
                timer = self._timers.get((ref.actor_urn, tick.key))
                if timer is None or timer.generation != tick.generation:
                    continue  # cancelled, replaced or its actor found dead since it was taken
            try:
                ref.tell(tick)
            except pykka.ActorDeadError:
                with self._cond:
                    self._dead_letters += 1
                    self._drop_actor(ref.actor_urn)
                log.debug("timer %r: actor %s is dead; its timers dropped", tick.key, ref)
            else:
                with self._cond:
                    self._delivered += 1

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                now = self._clock()
                batch = self._pop_due(now)
                if not batch:
                    wait = _MAX_WAIT_S
                    if self._heap:
                        wait = min(wait, max(0.0, self._heap[0][0] - now))
                    self._cond.wait(wait)
                    continue
            self._deliver(batch)


class ManualScheduler(Scheduler):
    """The scheduler on a clock that moves only in :meth:`advance`; no thread at all.

    For deterministic tests: ``advance(s)`` steps the clock from one due time to the next and
    tells each due tick in order, in the caller's thread, as if the timer thread had been
    exactly on time.
    """

    def __init__(self, *, start_at: float = 0.0) -> None:
        arguments.number("start_at", start_at)
        self._manual_now = start_at
        super().__init__(clock=self._read_manual_clock, name="manual-timers")

    def _read_manual_clock(self) -> float:
        return self._manual_now

    def start(self) -> None:
        """Nothing to start; kept so a ManualScheduler stands in for a Scheduler."""
        with self._cond:
            if self._stopped:
                raise RuntimeError("the scheduler was stopped; make a new one")

    def advance(self, seconds: float) -> int:
        """Move the clock ``seconds`` forward, telling every tick that falls due; how many fell due.

        A tick whose actor turned out dead counts too (as a dead letter).
        """
        arguments.number("seconds", seconds, ge=0)
        told = 0
        with self._cond:
            target = self._manual_now + seconds
        while True:
            with self._cond:
                if self._stopped:
                    raise RuntimeError("the scheduler is stopped")
                while self._heap and not self._heap[0][2].pending:
                    heapq.heappop(self._heap)
                if not self._heap or self._heap[0][0] > target:
                    self._manual_now = target
                    return told
                self._manual_now = max(self._manual_now, self._heap[0][0])
                batch = self._pop_due(self._manual_now)
            self._deliver(batch)
            told += len(batch)
