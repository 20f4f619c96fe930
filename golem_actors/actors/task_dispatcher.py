"""TaskDispatcher: owns a run's task book, its workers, and the queue the caller reads results from.

A thin loop around the pure ``policy.task_book.TaskBook``: it keeps up to ``max_workers`` workers
(one agreement each; a worker whose provider fails is replaced by one on another provider), hands
each ready worker tasks (a packed batch of declarative tasks, or one task for a worker function),
enforces the per-task timeout (the worker is retired — a command cannot be cancelled on the
provider any other way — and the task moves on), duplicates stragglers onto idle workers near
the end, bans providers that keep failing or overcharge, and has each task's one result reported
(``task_reports``). Once every task is final it retires the workers, waits for them, and stops.

Its messages in: ``WorkerReady``, ``AttemptsDone``, ``WorkerExited`` (from its workers),
``StopRun``, its own timers; out: ``RunAttempts`` and ``Retire`` to its workers.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

import pykka

from golem_actors.actors.base import ChildDied, RuntimeActor, handles
from golem_actors.actors.runtime import Runtime
from golem_actors.actors.task_attempts import AttemptReport, Outcome
from golem_actors.actors.task_reports import TaskReports
from golem_actors.actors.task_worker import (
    AttemptsDone,
    Retire,
    RunAttempts,
    TaskWorker,
    WorkerConfig,
    WorkerExited,
    WorkerReady,
)
from golem_actors.events import DebitNoteRefused, Event, InvoiceRefused
from golem_actors.policy.task_book import Attempt, Completion, FailureKind, TaskBook
from golem_actors.tasks.model import Task
from golem_actors.tasks.options import TaskOptions
from golem_actors.tasks.run import TaskRun

__all__ = ["PIPELINE", "TICK_S", "StopRun", "TaskDispatcher", "WorkerStarter"]

log = logging.getLogger(__name__)

_KIND = {
    Outcome.TASK_ERROR: FailureKind.TASK,
    Outcome.TIMEOUT: FailureKind.TIMEOUT,
    Outcome.PROVIDER: FailureKind.PROVIDER,
}


PIPELINE = 1  # batches in flight per activity; exe-units refuse a second ("Busy")
TICK_S = 0.5  # how often idle workers look for stragglers


@dataclass(frozen=True)
class StopRun:
    reason: str
    future: Future[None]


@dataclass(frozen=True)
class _Tick:
    pass


@dataclass(frozen=True)
class _AttemptTimeout:
    attempt_id: int


@dataclass(frozen=True)
class _RunTimeout:
    pass


@dataclass(frozen=True)
class _Misbehaved:
    agreement_id: str
    reason: str


class WorkerStarter(Protocol):
    """How the dispatcher starts a worker: ``TaskWorker.start`` (tests give a stand-in)."""

    def __call__(
        self,
        rt: Runtime,
        parent: pykka.ActorRef[Any],
        /,
        *,
        name: str,
        config: WorkerConfig,
        exclude: frozenset[str],
    ) -> pykka.ActorRef[Any]: ...


@dataclass
class _Worker:
    ref: pykka.ActorRef[Any]
    provider_id: str | None = None
    provider_name: str = ""
    agreement_id: str = ""
    ready: bool = False
    retiring: bool = False
    inflight: int = 0  # hand-outs not yet answered
    attempts: set[int] = field(default_factory=set)


class TaskDispatcher(RuntimeActor):
    role = "dispatcher"

    def __init__(
        self,
        rt: Runtime,
        *,
        tasks: Sequence[Task[object]],
        config: WorkerConfig,
        options: TaskOptions,
        run: TaskRun[object, object],
        start_worker: WorkerStarter = TaskWorker.start,
    ) -> None:
        super().__init__(rt, None)
        self._start_worker = start_worker
        self.tasks = tasks
        self.config = config
        self.options = options
        self.run = run
        self.book = TaskBook(len(tasks), options.task_policy())
        self._task_timeout_s = float(options.task_timeout)
        self._declarative = bool(tasks) and tasks[0].declarative
        self._workers: dict[str, _Worker] = {}
        self._spawned = 0
        self.reports = TaskReports(rt, tasks, run)
        self._stopping: str | None = None
        self._stop_futures: list[Future[None]] = []
        self._done = False

    # -- start and stop -------------------------------------------------------------------------

    def started(self) -> None:
        self.rt.events.subscribe(self._on_payment_event, DebitNoteRefused, InvoiceRefused)
        self.after(TICK_S, _Tick(), key="tick", period_s=TICK_S)
        if self.options.timeout is not None:
            self.after(self.options.timeout, _RunTimeout(), key="run-timeout")
        if self.book.finished:
            self._check_done()
            return
        self._replenish(None)

    def stopping(self) -> None:
        self.rt.events.unsubscribe(self._on_payment_event)
        self.run.end()

    def _on_payment_event(self, event: Event) -> None:
        """From the payment actor's thread: a refused note or invoice means overcharging."""
        if isinstance(event, DebitNoteRefused | InvoiceRefused):
            with contextlib.suppress(pykka.ActorDeadError):
                self.actor_ref.tell(_Misbehaved(event.agreement_id, event.reason))

    @handles(StopRun)
    def on_stop_run(self, message: StopRun) -> None:
        self._stop_futures.append(message.future)
        self._abandon(message.reason)

    @handles(_RunTimeout)
    def on_run_timeout(self, _: _RunTimeout) -> None:
        self._abandon(f"the run did not finish within {self.options.timeout:g} s")

    def _abandon(self, reason: str) -> None:
        if self._stopping is None:
            self._stopping = reason
            for completion in self.book.abandon():
                self._completed(completion, None, cancelled=reason)
        for name in list(self._workers):
            self._retire(name, reason, fault=False)
        self._check_done()

    # -- workers --------------------------------------------------------------------------------

    def _live(self) -> list[_Worker]:
        return [w for w in self._workers.values() if not w.retiring]

    def _replenish(self, avoid: str | None) -> None:
        """Keep ``max_workers`` workers while tasks remain, never on a banned provider."""
        if self._stopping is not None or self.book.finished:
            return
        remaining = self.book.count - self.book.succeeded - self.book.failed
        wanted = min(self.options.max_workers, remaining)
        while len(self._live()) < wanted:
            exclude = set(self.book.blacklist)
            exclude.update(w.provider_id for w in self._live() if w.provider_id)
            if avoid is not None:
                exclude.add(avoid)
            self._spawned += 1
            name = f"worker-{self._spawned}"
            ref = self._start_worker(
                self.rt, self.actor_ref, name=name, config=self.config, exclude=frozenset(exclude)
            )
            self._workers[name] = _Worker(ref)

    @handles(WorkerReady)
    def on_ready(self, ready: WorkerReady) -> None:
        worker = self._workers.get(ready.worker)
        if worker is None or worker.retiring:
            return
        worker.ready = True
        worker.provider_id = ready.provider_id
        worker.provider_name = ready.provider_name
        worker.agreement_id = ready.agreement_id
        if ready.provider_id in self.book.blacklist:
            self._retire(ready.worker, "the provider is banned for this run", fault=False)
            return
        self._feed(ready.worker)

    def _retire(self, name: str, reason: str, *, fault: bool) -> None:
        worker = self._workers.get(name)
        if worker is None or worker.retiring:
            return
        worker.retiring = True
        for attempt_id in sorted(worker.attempts):
            self.cancel_timer(f"timeout:{attempt_id}")
            self.book.requeue(attempt_id)
        worker.attempts.clear()
        try:
            worker.ref.tell(Retire(reason, fault=fault))
        except pykka.ActorDeadError:
            self._workers.pop(name, None)

    @handles(WorkerExited)
    def on_exited(self, exited: WorkerExited) -> None:
        worker = self._workers.pop(exited.worker, None)
        if worker is None:
            return
        outstanding = sorted(worker.attempts)
        for attempt_id in outstanding:
            self.cancel_timer(f"timeout:{attempt_id}")
        if exited.fault and outstanding:
            # The task that was running takes the blame; the ones queued behind it never ran.
            first = outstanding.pop(0)
            error = RuntimeError(f"the provider failed: {exited.reason}")
            self._attempt_ended(AttemptReport(first, Outcome.PROVIDER, error=error), worker)
        for attempt_id in outstanding:
            self.book.requeue(attempt_id)
        if exited.fault and exited.provider_id:
            if self.book.provider_fault(exited.provider_id):
                log.warning("provider %s banned for this run", worker.provider_name)
            log.info("%s on %s failed: %s", exited.worker, worker.provider_name, exited.reason)
        self._replenish(exited.provider_id if exited.fault else None)
        self._feed_idle()
        self._check_done()

    @handles(ChildDied)
    def on_child_died(self, died: ChildDied) -> None:
        name = next((n for n, w in self._workers.items() if w.ref == died.ref), None)
        if name is not None:
            self.on_exited(
                WorkerExited(name, self._workers[name].provider_id, fault=True, reason="crashed")
            )

    @handles(_Misbehaved)
    def on_misbehaved(self, message: _Misbehaved) -> None:
        for name, worker in list(self._workers.items()):
            if worker.agreement_id == message.agreement_id and worker.provider_id:
                log.warning("banning %s: %s", worker.provider_name, message.reason)
                self.book.ban(worker.provider_id)
                self._retire(name, f"payment refused: {message.reason}", fault=True)
        self._replenish(None)

    # -- handing out tasks ---------------------------------------------------------------------

    @handles(_Tick)
    def on_tick(self, _: _Tick) -> None:
        self._replenish(None)
        self._feed_idle()

    def _feed_idle(self) -> None:
        for name, worker in list(self._workers.items()):
            if worker.ready and not worker.retiring and worker.inflight == 0:
                self._feed(name)

    def _feed(self, name: str) -> None:
        worker = self._workers[name]
        if not worker.ready or worker.retiring or self._stopping is not None:
            return
        assert worker.provider_id is not None
        depth = PIPELINE if self._declarative else 1
        while worker.inflight < depth:
            limit = 1
            if self._declarative:
                # Shared with the workers still starting too: a few tasks must not all go to
                # whichever worker was ready first while the others are a second away.
                sharing = max(1, len(self._live()))
                limit = max(1, min(self.options.batch_size, math.ceil(self.book.pending / sharing)))
            attempts = self.book.take(name, worker.provider_id, time.monotonic(), limit)
            if not attempts:
                return
            self._hand_out(worker, attempts)

    def _hand_out(self, worker: _Worker, attempts: list[Attempt]) -> None:
        timeout = self._task_timeout_s
        ahead = len(worker.attempts)
        worker.inflight += 1
        for i, attempt in enumerate(attempts):
            worker.attempts.add(attempt.attempt_id)
            self.reports.started(attempt, worker.provider_name)
            delay = timeout * (ahead + i + 1)
            self.after(
                delay, _AttemptTimeout(attempt.attempt_id), key=f"timeout:{attempt.attempt_id}"
            )
        items = tuple((a.attempt_id, self.tasks[a.task]) for a in attempts)
        worker.ref.tell(RunAttempts(items, timeout))

    # -- attempts ending -----------------------------------------------------------------------

    @handles(AttemptsDone)
    def on_done(self, done: AttemptsDone) -> None:
        worker = self._workers.get(done.worker)
        if worker is not None:
            worker.inflight = max(0, worker.inflight - 1)
        stuck = False
        for report in done.reports:
            self.cancel_timer(f"timeout:{report.attempt_id}")
            if worker is not None:
                worker.attempts.discard(report.attempt_id)
            stuck |= report.outcome is Outcome.TIMEOUT
            self._attempt_ended(report, worker)
        if worker is not None and stuck:
            # A command still runs there: the activity is of no further use.
            assert worker.provider_id is not None
            self.book.provider_fault(worker.provider_id)
            self._retire(done.worker, "a task timed out", fault=True)
            self._replenish(worker.provider_id)
        elif worker is not None:
            self._feed(done.worker)
        self._feed_idle()
        self._check_done()

    @handles(_AttemptTimeout)
    def on_timeout(self, message: _AttemptTimeout) -> None:
        attempt = self.book.attempt(message.attempt_id)
        if attempt is None:
            return
        worker = self._workers.get(attempt.worker)
        limit = self._task_timeout_s
        error = TimeoutError(f"no result within the task timeout of {limit:g} s")
        if worker is not None:
            worker.attempts.discard(attempt.attempt_id)
        self._attempt_ended(AttemptReport(attempt.attempt_id, Outcome.TIMEOUT, error=error), worker)
        if worker is not None:
            self.book.provider_fault(attempt.provider)
            self._retire(attempt.worker, "a task timed out", fault=True)
        self._replenish(attempt.provider)
        self._feed_idle()
        self._check_done()

    def _attempt_ended(self, report: AttemptReport, worker: _Worker | None) -> None:
        attempt = self.book.attempt(report.attempt_id)
        if attempt is None:
            return  # stale: the task is final, or this attempt was already written off
        now = time.monotonic()
        if report.outcome is Outcome.NOT_RUN:
            self.book.requeue(report.attempt_id)
            return
        if report.outcome is Outcome.OK:
            completion = self.book.succeed(report.attempt_id, now)
            self._completed(completion, attempt, report)
            return
        kind = _KIND[report.outcome]
        completion = self.book.fail(report.attempt_id, kind, now)
        name = worker.provider_name if worker else attempt.provider[:10]
        self.reports.failed(attempt, report, kind, retried=completion.retry, provider_name=name)
        self._completed(completion, attempt)

    def _completed(
        self,
        completion: Completion,
        attempt: Attempt | None,
        report: AttemptReport | None = None,
        *,
        cancelled: str | None = None,
    ) -> None:
        """Apply what an attempt's end means for its task: the speculative losers stop; a final
        task is reported (``cancelled``: why a run stopped before the task finished)."""
        for loser in completion.cancel:
            self.cancel_timer(f"timeout:{loser.attempt_id}")
            other = self._workers.get(loser.worker)
            if other is not None:
                other.attempts.discard(loser.attempt_id)
                if attempt is not None and loser.worker != attempt.worker:
                    self._retire(loser.worker, "another attempt finished first", fault=False)
        if not completion.final:
            return
        worker = self._workers.get(attempt.worker) if attempt else None
        self.reports.final(
            completion,
            attempt,
            report,
            provider_name=worker.provider_name if worker else None,
            cancelled=cancelled,
        )
        if self.book.finished:
            for name in list(self._workers):
                self._retire(name, "all tasks are done", fault=False)

    def _check_done(self) -> None:
        finished = self.book.finished or self._stopping is not None
        if not finished or self._workers or self._done:
            return
        self._done = True
        self.run.end()
        for future in self._stop_futures:
            if not future.done():
                future.set_result(None)
        self.stop()
