"""The shared timer thread: keyed timers delivered to real pykka actors, and its test double.

No test sleeps to wait for something: each waits on a condition with a timeout, or flushes an
actor's inbox with an ``ask`` (its inbox is FIFO, so a reply means every earlier tell was handled).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import pykka
import pytest

from golem_actors.actors.scheduler import ManualScheduler, Scheduler, Tick, jittered_first_delay

WAIT_S = 5.0


@pytest.fixture(autouse=True)
def no_leftover_actors() -> Iterator[None]:
    yield
    leftover = pykka.ActorRegistry.get_all()
    pykka.ActorRegistry.stop_all(timeout=WAIT_S)
    assert leftover == []


class Log:
    """What an actor did with each tick, in its own order, with bounded waits for tests."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.events: list[tuple[str, Any]] = []

    def add(self, kind: str, item: Any) -> None:
        with self._cond:
            self.events.append((kind, item))
            self._cond.notify_all()

    def ticks(self, kind: str = "accepted", key: Hashable | None = None) -> list[Tick]:
        with self._cond:
            return [
                t
                for k, t in self.events
                if k == kind and isinstance(t, Tick) and (key is None or t.key == key)
            ]

    def wait(self, predicate: Callable[[], bool]) -> None:
        with self._cond:
            assert self._cond.wait_for(predicate, WAIT_S), f"timed out; saw {self.events}"

    def wait_accepted(self, count: int, key: Hashable | None = None) -> list[Tick]:
        self.wait(lambda: len(self.ticks("accepted", key)) >= count)
        return self.ticks("accepted", key)


class Collector(pykka.ThreadingActor):
    """Accepts a tick only if the scheduler says it is current, as every runtime actor does."""

    def __init__(self, scheduler: Scheduler, log: Log, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.scheduler = scheduler
        self.log = log
        self.gate = gate

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Tick):
            current = self.scheduler.is_current(self.actor_ref, message)
            self.log.add("accepted" if current else "stale", message)
        elif message == "block":
            assert self.gate is not None
            self.gate.wait(WAIT_S)
        elif isinstance(message, tuple) and message[0] == "cancel":
            self.scheduler.cancel(self.actor_ref, message[1])
            self.log.add("cancelled", message[1])
        elif message == "ping":
            return "pong"
        return None

    def on_stop(self) -> None:
        self.scheduler.cancel_all(self.actor_ref)


@pytest.fixture
def scheduler() -> Iterator[Scheduler]:
    s = Scheduler()
    s.start()
    yield s
    assert s.stop(timeout=WAIT_S)


@pytest.fixture
def manual() -> ManualScheduler:
    return ManualScheduler()


Spawn = Callable[..., pykka.ActorRef[Collector]]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    refs: list[pykka.ActorRef[Collector]] = []

    def start(s: Scheduler, log: Log, gate: threading.Event | None = None) -> Any:
        ref = Collector.start(s, log, gate)
        refs.append(ref)
        return ref

    yield start
    for ref in refs:
        ref.stop(timeout=WAIT_S)


def flush(ref: pykka.ActorRef[Any]) -> None:
    assert ref.ask("ping", timeout=WAIT_S) == "pong"


# -- the real timer thread ---------------------------------------------------------------------


def test_ticks_reach_a_real_actor_in_due_order(scheduler: Scheduler, spawn: Spawn) -> None:
    log = Log()
    ref = spawn(scheduler, log)
    scheduler.schedule(ref, "third", 0.03, key="c")
    scheduler.schedule(ref, "first", 0.0, key="a")
    scheduler.schedule(ref, "second", 0.01, key="b")
    ticks = log.wait_accepted(3)
    assert [t.payload for t in ticks] == ["first", "second", "third"]
    assert log.ticks("stale") == []
    assert scheduler.delivered == 3
    assert scheduler.pending == 0


def test_periodic_ticks_stay_on_their_grid_and_stop_on_cancel(
    scheduler: Scheduler, spawn: Spawn
) -> None:
    log = Log()
    ref = spawn(scheduler, log)
    period = 0.02
    handle = scheduler.schedule(ref, "beat", 0.0, key="beat", period_s=period)
    ticks = log.wait_accepted(5, "beat")
    first = ticks[0].due
    for n, tick in enumerate(ticks[:5]):
        # Re-armed from the due time, never from when it ran: lateness does not accumulate.
        assert tick.due == pytest.approx(first + n * period, abs=1e-9)
        assert tick.generation == handle.generation
    # Cancelled from inside the actor: nothing after that point is processed, even ticks
    # already in the inbox.
    ref.tell(("cancel", "beat"))
    scheduler.schedule(ref, "marker", 3 * period, key="marker")
    log.wait_accepted(1, "marker")
    kinds = [(kind, getattr(item, "key", item)) for kind, item in log.events]
    cancelled_at = kinds.index(("cancelled", "beat"))
    assert ("accepted", "beat") not in kinds[cancelled_at:]
    assert not handle.active
    assert scheduler._heap == []  # the cancelled entry came up before the marker, not re-armed


def test_cancel_prevents_delivery(scheduler: Scheduler, spawn: Spawn) -> None:
    log = Log()
    ref = spawn(scheduler, log)
    handle = scheduler.schedule(ref, "never", 0.05, key="k")
    assert scheduler.cancel(ref, "k")
    assert not scheduler.cancel(ref, "k")
    assert not handle.active
    scheduler.schedule(ref, "marker", 0.1, key="marker")
    log.wait_accepted(1)
    flush(ref)
    assert [item for _, item in log.events] == log.ticks("accepted", "marker")
    assert scheduler.delivered == 1


def test_rescheduling_the_same_key_supersedes(scheduler: Scheduler, spawn: Spawn) -> None:
    log = Log()
    ref = spawn(scheduler, log)
    old = scheduler.schedule(ref, "old", 0.02, key="k")
    new = scheduler.schedule(ref, "new", 0.05, key="k")
    assert new.generation > old.generation
    assert not old.active
    assert new.active
    assert not old.cancel()  # an old handle never cancels the newer timer
    assert new.active
    log.wait_accepted(1, "k")
    scheduler.schedule(ref, "marker", 0.05, key="marker")
    log.wait_accepted(1, "marker")
    assert [t.payload for t in log.ticks("accepted", "k")] == ["new"]
    assert log.ticks("stale") == []  # the old one never even left the heap


def test_ticks_for_a_dead_actor_are_dead_letters(scheduler: Scheduler, spawn: Spawn) -> None:
    log = Log()
    dead = spawn(scheduler, log)
    dead.stop(timeout=WAIT_S)
    scheduler.schedule(dead, "tick", 0.0, key="beat", period_s=0.01)
    scheduler.schedule(dead, "later", 0.02, key="other")
    live = spawn(scheduler, log)
    scheduler.schedule(live, "marker", 0.05, key="marker")
    log.wait_accepted(1, "marker")  # the thread delivers in due order: the dead one came first
    assert scheduler.dead_letters == 1
    assert not scheduler.is_active(dead, "beat")
    assert not scheduler.is_active(dead, "other")  # all of a dead actor's timers go at once
    assert scheduler.pending == 0


def test_a_thousand_timers_share_one_thread(spawn: Spawn) -> None:
    log = Log()
    s = Scheduler()
    refs = [spawn(s, log) for _ in range(4)]
    baseline = threading.active_count()
    s.start()
    try:
        assert threading.active_count() == baseline + 1
        for n in range(1000):
            key = f"timer-{n}"
            s.schedule(refs[n % 4], n, jittered_first_delay(0.2, key), key=key)
        assert threading.active_count() == baseline + 1
        ticks = log.wait_accepted(1000)
        assert sorted(t.payload for t in ticks) == list(range(1000))
        assert threading.active_count() == baseline + 1
        assert s.delivered == 1000
    finally:
        assert s.stop(timeout=WAIT_S)
    assert threading.active_count() == baseline


def test_stop_joins_the_thread_and_refuses_new_timers(spawn: Spawn) -> None:
    s = Scheduler(name="test-timers")
    log = Log()
    ref = spawn(s, log)
    s.start()
    with pytest.raises(RuntimeError, match="already started"):
        s.start()
    s.schedule(ref, "pending", 60.0, key="k")
    assert "test-timers" in {t.name for t in threading.enumerate()}
    assert s.stop(timeout=WAIT_S)
    assert "test-timers" not in {t.name for t in threading.enumerate()}
    assert s.pending == 0  # dropped, and the thread that would deliver it is gone
    assert s.stop(timeout=WAIT_S)  # idempotent
    with pytest.raises(RuntimeError, match="stopped"):
        s.schedule(ref, "late", 0.0, key="k")
    with pytest.raises(RuntimeError, match="stopped"):
        s.start()


def test_an_injected_clock_drives_the_thread(spawn: Spawn) -> None:
    now = [0.0]
    s = Scheduler(clock=lambda: now[0])
    log = Log()
    ref = spawn(s, log)
    s.start()
    try:
        s.schedule(ref, "beat", 0.0, key="beat", period_s=1.0)
        log.wait_accepted(1, "beat")
        # The thread falls 2.5 periods behind: one tick for the slot it missed first, then
        # back on the grid at 4.0, with no burst for the slots at 2.0 and 3.0.
        now[0] = 3.5
        s.schedule(ref, "wake", 0.0, key="wake1")  # an earlier head wakes the thread
        log.wait_accepted(1, "wake1")
        now[0] = 4.0
        s.schedule(ref, "wake", 0.0, key="wake2")
        log.wait_accepted(1, "wake2")
        log.wait_accepted(3, "beat")
        assert [t.due for t in log.ticks("accepted", "beat")] == [0.0, 1.0, 4.0]
    finally:
        assert s.stop(timeout=WAIT_S)


# -- the manual scheduler ----------------------------------------------------------------------


def test_manual_periodic_ticks_do_not_drift(manual: ManualScheduler, spawn: Spawn) -> None:
    log = Log()
    ref = spawn(manual, log)
    manual.schedule(ref, "beat", 0.25, key="beat", period_s=0.5)
    manual.schedule(ref, "slow", 1.0, key="slow", period_s=1.5)
    told = [manual.advance(step) for step in (0.1, 0.7, 0.05, 1.6, 0.3, 2.25)]
    assert manual.now() == pytest.approx(5.0)
    flush(ref)
    beats = [t.due for t in log.ticks("accepted", "beat")]
    assert beats == [0.25 + 0.5 * n for n in range(10)]
    assert [t.due for t in log.ticks("accepted", "slow")] == [1.0, 2.5, 4.0]
    assert sum(told) == 13
    dues = [t.due for t in log.ticks()]
    assert dues == sorted(dues)  # every tick in due order, across keys


def test_manual_cancel_stops_an_already_enqueued_tick(
    manual: ManualScheduler, spawn: Spawn
) -> None:
    log = Log()
    gate = threading.Event()
    ref = spawn(manual, log, gate)
    ref.tell("block")  # the actor is busy: what we tell now waits in its inbox
    manual.schedule(ref, "doomed", 1.0, key="k")
    assert manual.advance(1.0) == 1  # told: in the inbox
    assert manual.cancel(ref, "k")
    gate.set()
    flush(ref)
    assert [t.payload for t in log.ticks("stale")] == ["doomed"]
    assert log.ticks("accepted") == []


def test_manual_rescheduling_supersedes_an_enqueued_tick(
    manual: ManualScheduler, spawn: Spawn
) -> None:
    log = Log()
    gate = threading.Event()
    ref = spawn(manual, log, gate)
    ref.tell("block")
    manual.schedule(ref, "old", 1.0, key="k")
    manual.advance(1.0)
    manual.schedule(ref, "new", 1.0, key="k")
    gate.set()
    flush(ref)
    manual.advance(1.0)
    flush(ref)
    assert [t.payload for t in log.ticks("stale")] == ["old"]
    assert [t.payload for t in log.ticks("accepted")] == ["new"]


def test_a_fired_single_shot_stays_current_until_cancelled(
    manual: ManualScheduler, spawn: Spawn
) -> None:
    log = Log()
    ref = spawn(manual, log)
    manual.schedule(ref, "once", 1.0, key="k")
    manual.advance(5.0)
    flush(ref)
    [tick] = log.ticks("accepted")
    assert not manual.is_active(ref, "k")  # will not fire again...
    assert manual.is_current(ref, tick)  # ...but its tick is still honoured
    assert manual.cancel_all(ref) == 1
    assert not manual.is_current(ref, tick)


def test_manual_dead_actor_is_dropped(manual: ManualScheduler, spawn: Spawn) -> None:
    log = Log()
    ref = spawn(manual, log)
    manual.schedule(ref, "beat", 1.0, key="beat", period_s=1.0)
    assert manual.advance(1.0) == 1
    ref.stop(timeout=WAIT_S)
    manual.schedule(ref, "beat", 1.0, key="beat", period_s=1.0)  # re-armed after on_stop
    assert manual.advance(1.0) == 1  # attempted, and failed
    assert manual.dead_letters == 1
    assert manual.pending == 0
    assert manual.advance(10.0) == 0


def test_cancel_all_cancels_only_that_actor(manual: ManualScheduler, spawn: Spawn) -> None:
    log = Log()
    a, b = spawn(manual, log), spawn(manual, log)
    for key in ("x", "y", "z"):
        manual.schedule(a, key, 1.0, key=key, period_s=1.0)
    manual.schedule(b, "b", 1.0, key="x")
    assert manual.cancel_all(a) == 3
    assert manual.cancel_all(a) == 0
    assert manual.advance(3.0) == 1
    flush(b)
    assert [t.payload for t in log.ticks()] == ["b"]
    assert manual._heap == []  # cancelled periodic timers are not re-armed


def test_many_reschedules_do_not_pile_up(manual: ManualScheduler, spawn: Spawn) -> None:
    log = Log()
    ref = spawn(manual, log)
    for n in range(10_000):
        manual.schedule(ref, n, 60.0, key="deadline")
    assert len(manual._heap) < 2 * 1 + 1024 + 1
    manual.advance(60.0)
    flush(ref)
    assert [t.payload for t in log.ticks()] == [9_999]


# -- inputs ------------------------------------------------------------------------------------


def test_jittered_first_delay_is_stable_and_spread() -> None:
    delays = [jittered_first_delay(10.0, f"instance-{n}") for n in range(1000)]
    assert delays == [jittered_first_delay(10.0, f"instance-{n}") for n in range(1000)]
    assert all(0 <= d < 10.0 for d in delays)
    buckets = {int(d) for d in delays}
    assert buckets == set(range(10))
    with pytest.raises(ValueError, match="period_s"):
        jittered_first_delay(0.0, "k")


@pytest.mark.parametrize(
    ("delay_s", "period_s", "field"),
    [(-1.0, None, "delay_s"), (float("nan"), None, "delay_s"), (0.0, 0.0, "period_s")],
)
def test_bad_timer_arguments_name_the_field(
    manual: ManualScheduler, spawn: Spawn, delay_s: float, period_s: float | None, field: str
) -> None:
    ref = spawn(manual, Log())
    with pytest.raises(ValueError, match=field):
        manual.schedule(ref, "x", delay_s, key="k", period_s=period_s)
    with pytest.raises(TypeError):
        manual.schedule(ref, "x", 1.0, key=["unhashable"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seconds"):
        manual.advance(-1.0)
