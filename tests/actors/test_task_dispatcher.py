"""The task dispatcher alone: messages in, messages and events out, in milliseconds.

The test plays its workers (stand-ins that keep what they are told) and moves time with a
``ManualScheduler``; yagna is a ``MockYagna`` that must see no call at all (the dispatcher only
decides: its workers talk to yagna).
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

import pykka
import pytest

from golem_actors.actors.context import WorkContext
from golem_actors.actors.runtime import Runtime
from golem_actors.actors.scheduler import ManualScheduler
from golem_actors.actors.task_attempts import AttemptReport, Outcome
from golem_actors.actors.task_dispatcher import StopRun, TaskDispatcher
from golem_actors.actors.task_worker import (
    AttemptsDone,
    Retire,
    RunAttempts,
    WorkerConfig,
    WorkerExited,
    WorkerReady,
)
from golem_actors.events import Event, TaskAttemptFailed, TaskFinished, TaskStarted
from golem_actors.tasks.model import Task, TaskResult
from golem_actors.tasks.options import TaskOptions
from golem_actors.tasks.run import TaskRun
from golem_actors.yagna.testing import MockYagna
from tests.actors.test_activity import Inbox
from tests.waiting import wait_for

WAIT = 10.0  # a bound on every wait; each test takes milliseconds
E = TypeVar("E", bound=Event)


def never_called(ctx: WorkContext, task: Task[object]) -> object:
    raise AssertionError("the stand-in workers never run tasks")


class Dispatch:
    """A dispatcher started on ``tasks``, whose workers are the test's stand-ins."""

    def __init__(self, tasks: list[Task[object]], *, declarative: bool = False, **options: Any):
        self.yagna = MockYagna()
        self.scheduler = ManualScheduler()
        client = self.yagna.client()
        self.rt = Runtime(client.config, client=client, scheduler=self.scheduler)
        self.events: list[Event] = []
        self.rt.events.subscribe(self.events.append)  # called in the dispatcher's thread
        self.inboxes: dict[str, queue.Queue[Any]] = {}
        self.spawned: queue.Queue[tuple[str, frozenset[str]]] = queue.Queue()
        sink = Inbox.start(queue.Queue())  # market, agreement events, payments: unused here
        config = WorkerConfig(
            demand_key="demand",
            group="run",
            market=sink,
            agreement_events=sink,
            payments=sink,
            storage=None,
            worker_fn=None if declarative else never_called,
        )
        self.run: TaskRun[object, object] = TaskRun(tasks, lambda _: None)
        self.ref = TaskDispatcher.start(
            self.rt,
            tasks=tasks,
            config=config,
            options=TaskOptions(progress=False, **options),
            run=self.run,
            start_worker=self._start_worker,
        )

    def _start_worker(
        self,
        rt: Runtime,
        parent: pykka.ActorRef[Any],
        /,
        *,
        name: str,
        config: WorkerConfig,
        exclude: frozenset[str],
    ) -> pykka.ActorRef[Any]:
        self.inboxes[name] = queue.Queue()
        self.spawned.put((name, exclude))
        return Inbox.start(self.inboxes[name])

    # -- the test as the workers ----------------------------------------------------------------

    def worker_started(self) -> tuple[str, frozenset[str]]:
        """The next worker the dispatcher started, and the providers it must not use."""
        return self.spawned.get(timeout=WAIT)

    def told(self, worker: str) -> Any:
        """The next message the dispatcher told ``worker``."""
        return self.inboxes[worker].get(timeout=WAIT)

    def ready(self, worker: str, provider: str) -> None:
        self.ref.tell(WorkerReady(worker, provider, f"name-{provider}", f"ag-{provider}"))

    def done(self, worker: str, *reports: AttemptReport) -> None:
        self.ref.tell(AttemptsDone(worker, reports))

    def exited(self, worker: str, provider: str | None, *, fault: bool = False) -> None:
        self.ref.tell(WorkerExited(worker, provider, fault=fault, reason="exited"))

    def settle(self) -> None:
        """Return once the dispatcher handled everything told it so far (timer ticks too)."""
        self.ref.ask("sync", timeout=WAIT)  # unhandled, answered None: a round trip

    # -- what came out ----------------------------------------------------------------------------

    def result(self) -> TaskResult[object, object]:
        result = self.run.next_result(timeout=WAIT)
        assert result is not None, "the run ended without this result"
        return result

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in list(self.events) if isinstance(e, kind)]

    def close(self) -> None:
        self.rt.close()
        pykka.ActorRegistry.stop_all(timeout=5)


@pytest.fixture
def dispatch() -> Iterator[list[Dispatch]]:
    made: list[Dispatch] = []
    yield made
    for each in made:
        assert each.yagna.calls == []  # deciding needs no yagna
        each.close()


def start(made: list[Dispatch], tasks: list[Task[object]], **options: Any) -> Dispatch:
    made.append(Dispatch(tasks, **options))
    return made[-1]


def tasks(n: int, **fields: Any) -> list[Task[object]]:
    return [Task(id=f"t{i}", data=i, **fields) for i in range(n)]


def ok(attempt_id: int, result: object = None) -> AttemptReport:
    return AttemptReport(attempt_id, Outcome.OK, result, seconds=0.5)


def test_a_joining_worker_is_handed_tasks_until_all_are_done(dispatch: list[Dispatch]) -> None:
    d = start(dispatch, tasks(2), max_workers=2, task_timeout=30)
    assert [d.worker_started(), d.worker_started()] == [
        ("worker-1", frozenset()),
        ("worker-2", frozenset()),
    ]
    d.ready("worker-1", "p1")
    first = d.told("worker-1")
    assert isinstance(first, RunAttempts)
    assert [task.id for _, task in first.items] == ["t0"]
    assert first.timeout_s == 30.0
    started = d.of(TaskStarted)
    assert [(e.task_id, e.attempt, e.provider_id, e.provider_name) for e in started] == [
        ("t0", 1, "p1", "name-p1")
    ]

    d.done("worker-1", ok(first.items[0][0], "zero"))
    result = d.result()
    assert (result.task.id, result.ok, result.result, result.attempts) == ("t0", True, "zero", 1)
    assert (result.provider_id, result.provider_name, result.seconds) == ("p1", "name-p1", 0.5)
    second = d.told("worker-1")  # the ready worker takes the next one
    assert [task.id for _, task in second.items] == ["t1"]
    d.done("worker-1", ok(second.items[0][0], "one"))
    assert d.result().result == "one"

    # Every task final: each worker is retired, and the dispatcher ends once they left.
    assert d.told("worker-1") == Retire("all tasks are done", fault=False)
    assert d.told("worker-2") == Retire("all tasks are done", fault=False)
    assert not d.ref.actor_stopped.is_set()
    d.exited("worker-1", "p1")
    d.exited("worker-2", None)
    assert d.ref.actor_stopped.wait(WAIT)
    assert d.run.next_result(timeout=WAIT) is None  # the end: no result twice
    assert [(e.task_id, e.ok) for e in d.of(TaskFinished)] == [("t0", True), ("t1", True)]


def test_a_failed_attempt_goes_back_for_another_provider(dispatch: list[Dispatch]) -> None:
    d = start(dispatch, tasks(2), max_workers=2)
    d.worker_started()
    d.worker_started()
    d.ready("worker-1", "p1")
    first = d.told("worker-1")
    assert [task.id for _, task in first.items] == ["t0"]
    d.done("worker-1", AttemptReport(first.items[0][0], Outcome.TASK_ERROR, error=ValueError("x")))

    # p1 failed t0: it gets t1 instead, and t0 waits for another provider.
    again = d.told("worker-1")
    assert [task.id for _, task in again.items] == ["t1"]
    (failed,) = d.of(TaskAttemptFailed)
    assert (failed.task_id, failed.provider_id, failed.kind, failed.retried) == (
        "t0",
        "p1",
        "task",
        True,
    )
    d.ready("worker-2", "p2")
    retry = d.told("worker-2")
    assert [task.id for _, task in retry.items] == ["t0"]
    assert retry.items[0][0] != first.items[0][0]  # a new attempt
    d.done("worker-2", ok(retry.items[0][0], "zero"))
    result = d.result()
    assert (result.task.id, result.ok, result.attempts, result.provider_id) == ("t0", True, 2, "p2")


def test_an_attempt_past_the_task_timeout_moves_on_and_its_provider_is_avoided(
    dispatch: list[Dispatch],
) -> None:
    d = start(dispatch, tasks(1), max_workers=1, task_timeout=10)
    d.worker_started()
    d.ready("worker-1", "p1")
    first = d.told("worker-1")
    d.scheduler.advance(9.5)
    d.settle()
    assert d.inboxes["worker-1"].empty()  # not yet
    d.scheduler.advance(0.5)

    # A command cannot be cancelled on the provider: its worker goes, a new one avoids p1.
    assert d.told("worker-1") == Retire("a task timed out", fault=True)
    name, exclude = d.worker_started()
    assert (name, exclude) == ("worker-2", frozenset({"p1"}))
    failed = wait_for("the failed attempt", lambda: d.of(TaskAttemptFailed))
    assert [(e.task_id, e.kind, e.retried) for e in failed] == [("t0", "timeout", True)]
    d.exited("worker-1", "p1", fault=True)
    d.done("worker-1", ok(first.items[0][0]))  # a late answer from the retired worker: stale
    d.ready("worker-2", "p2")
    retry = d.told("worker-2")
    d.done("worker-2", ok(retry.items[0][0], "late but fine"))
    result = d.result()
    assert (result.ok, result.result, result.attempts, result.provider_id) == (
        True,
        "late but fine",
        2,
        "p2",
    )


def test_a_worker_whose_provider_fails_fails_its_task_there(dispatch: list[Dispatch]) -> None:
    d = start(dispatch, tasks(1), max_workers=1)
    d.worker_started()
    d.ready("worker-1", "p1")
    d.told("worker-1")
    d.exited("worker-1", "p1", fault=True)
    name, exclude = d.worker_started()
    assert (name, exclude) == ("worker-2", frozenset({"p1"}))
    failed = wait_for("the failed attempt", lambda: d.of(TaskAttemptFailed))
    assert [(e.task_id, e.kind, e.provider_id) for e in failed] == [("t0", "provider", "p1")]


def test_declarative_tasks_are_packed_and_shared_among_the_live_workers(
    dispatch: list[Dispatch],
) -> None:
    d = start(
        dispatch, tasks(6, commands=[["/bin/true"]]), declarative=True, max_workers=2, batch_size=10
    )
    d.worker_started()
    d.worker_started()
    d.ready("worker-1", "p1")
    batch = d.told("worker-1")
    # One ExeScript for three tasks: half of them, as the other worker is about to be ready.
    assert [task.id for _, task in batch.items] == ["t0", "t1", "t2"]
    assert batch.timeout_s == 300.0  # per task; the worker scales it to the batch
    d.ready("worker-2", "p2")
    second = d.told("worker-2")
    assert [task.id for _, task in second.items] == ["t3", "t4"]  # half of what is left
    d.done("worker-1", *(ok(attempt_id) for attempt_id, _ in batch.items))
    assert [task.id for _, task in d.told("worker-1").items] == ["t5"]
    assert [e.task_id for e in d.of(TaskStarted)] == [f"t{i}" for i in range(6)]


def test_stop_cancels_every_task_not_final_and_waits_for_the_workers(
    dispatch: list[Dispatch],
) -> None:
    d = start(dispatch, tasks(3), max_workers=2)
    d.worker_started()
    d.worker_started()
    d.ready("worker-1", "p1")
    running = d.told("worker-1")
    stopped: Future[None] = Future()
    d.ref.tell(StopRun("the run was stopped", stopped))

    for worker in ("worker-1", "worker-2"):
        retire = d.told(worker)
        assert isinstance(retire, Retire)
        assert not retire.fault  # a stop is no provider's fault
    results = [d.result() for _ in range(3)]
    assert sorted(r.task.id for r in results) == ["t0", "t1", "t2"]
    assert all(not r.ok and str(r.error) == "the run was stopped" for r in results)
    assert all(e.cancelled and not e.ok for e in d.of(TaskFinished))
    assert not stopped.done()  # the workers are still ending their agreements

    d.done("worker-1", ok(running.items[0][0], "too late"))  # stale: t0 is already final
    d.exited("worker-1", "p1")
    d.exited("worker-2", None)
    assert stopped.result(timeout=WAIT) is None
    assert d.ref.actor_stopped.wait(WAIT)
    assert d.run.next_result(timeout=WAIT) is None  # three results, each once


def test_a_run_timeout_stops_the_run(dispatch: list[Dispatch]) -> None:
    d = start(dispatch, tasks(1), max_workers=1, timeout=60)
    d.worker_started()
    d.scheduler.advance(59.5)
    d.settle()
    assert d.inboxes["worker-1"].empty()  # not yet
    assert not d.of(TaskFinished)
    d.scheduler.advance(0.5)
    retire = d.told("worker-1")
    assert isinstance(retire, Retire)
    assert not retire.fault
    result = d.result()
    assert (result.ok, str(result.error)) == (False, "the run did not finish within 60 s")
    d.exited("worker-1", None)
    assert d.ref.actor_stopped.wait(WAIT)
