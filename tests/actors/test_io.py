"""The io pool: results go back to the asking actor, workers grow only as needed, and a call
still in flight never holds the process's exit."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

import pykka

from golem_actors.actors.io import Io, IoResult
from tests.waiting import wait_for


class _Inbox(pykka.ThreadingActor):
    def __init__(self, got: list[IoResult]) -> None:
        super().__init__()
        self.got = got

    def on_receive(self, message: Any) -> None:
        self.got.append(message)


def test_results_and_errors_go_back_to_the_asker() -> None:
    got: list[IoResult] = []
    inbox = _Inbox.start(got)
    io = Io()
    try:
        io.call(inbox, "sum", sum, [1, 2])
        io.call(inbox, "boom", int, "x")
        wait_for("both results", lambda: len(got) == 2, timeout=10)
    finally:
        io.close()
        inbox.stop(timeout=10)
    by_tag = {r.tag: r for r in got}
    assert by_tag["sum"].ok
    assert by_tag["sum"].value == 3
    assert isinstance(by_tag["boom"].error, ValueError)


def test_blocked_calls_each_get_a_worker_and_idle_ones_are_reused() -> None:
    io = Io(max_workers=8)
    gate = threading.Event()
    started = threading.Semaphore(0)

    def blocked() -> None:
        started.release()
        gate.wait(10)

    try:
        for _ in range(4):  # four at once: four workers, or this never gets past the waits
            io.run(blocked)
        for _ in range(4):
            assert started.acquire(timeout=10)
        gate.set()
        assert io._pool._threads == 4
        idle = io._pool._idle
        wait_for("the 4 workers idle", lambda: idle._value == 4, timeout=5)
        done = threading.Semaphore(0)
        for _ in range(20):  # one after another: the idle workers take them
            io.run(done.release)
            assert done.acquire(timeout=10)
        assert io._pool._threads == 4
    finally:
        io.close()


def test_closing_drops_calls_not_started() -> None:
    io = Io(max_workers=1, name="test-close")
    gate = threading.Event()
    ran: list[int] = []
    io.run(gate.wait, 10)
    io.run(ran.append, 1)  # queued behind the blocked one
    io.close()
    gate.set()

    def worker_ended() -> bool:  # it would have run a surviving call before ending
        return not any(t.name.startswith("test-close") for t in threading.enumerate())

    wait_for("the pool's worker to end", worker_ended, timeout=10)
    assert ran == []
    io.run(ran.append, 2)  # closed: refused quietly
    assert ran == []


def test_a_call_in_flight_does_not_hold_the_exit() -> None:
    code = (
        "import time\n"
        "from golem_actors.actors.io import Io\n"
        "io = Io()\n"
        "io.run(time.sleep, 60)  # a long-poll still waiting\n"
        "time.sleep(0.2)\n"
        "io.close()\n"
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    assert time.monotonic() - started < 15  # the interpreter alone; not the call's 60 s
