"""TaskWorker: one agreement and one activity, reused for many tasks.

It gets a provider the way a service instance does (proposal from the market → agreement →
activity → deploy and start), tells the dispatcher it is ready, then runs whatever the dispatcher
hands it: one task at a time through the user's ``worker(ctx, task)`` in a worker thread, or a
packed batch of declarative tasks as one ExeScript (the dispatcher may keep a second batch in
flight). Each hand-out is answered with one ``AttemptsDone``. Whatever ends it — a ``Retire``, the
activity gone, the provider ending the agreement — it destroys the activity, terminates the
agreement, and tells the dispatcher ``WorkerExited`` (at once when a fault ended it, so a
replacement does not wait for the cleanup).
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pykka

from golem_actors.actors.activity import ExecBatch
from golem_actors.actors.base import handles
from golem_actors.actors.context import WorkContext
from golem_actors.actors.io import IoResult
from golem_actors.actors.lease import LeaseActor, LeaseLoss
from golem_actors.actors.market import ProviderFailed
from golem_actors.actors.runtime import Runtime
from golem_actors.actors.task_attempts import AttemptReport, PackedBatch, Worker, run_user_task
from golem_actors.storage.http import Storage
from golem_actors.tasks.model import Task
from golem_actors.yagna.models import CommandResult

__all__ = [
    "AttemptsDone",
    "Retire",
    "RunAttempts",
    "TaskWorker",
    "WorkerConfig",
    "WorkerExited",
    "WorkerReady",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerConfig:
    """Shared by the workers of one run."""

    demand_key: str
    group: str  # the run: the market spreads its workers over providers
    market: pykka.ActorRef[Any]
    agreement_events: pykka.ActorRef[Any]
    payments: pykka.ActorRef[Any]
    storage: Storage | None
    worker_fn: Worker[object, object] | None
    setup_timeout_s: float = 120.0
    teardown_timeout_s: float = 20.0
    max_agreement_attempts: int = 5
    stream_output: bool = False  # every command's output, as it comes, to the log


# -- messages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunAttempts:
    """Run these attempts: ``(attempt_id, task)`` pairs; several only for declarative tasks."""

    items: tuple[tuple[int, Task[object]], ...]
    timeout_s: float  # per task


@dataclass(frozen=True)
class Retire:
    reason: str
    fault: bool = False  # the provider misbehaved: terminate with "Cancelled"


@dataclass(frozen=True)
class WorkerReady:
    worker: str
    provider_id: str
    provider_name: str
    agreement_id: str


@dataclass(frozen=True)
class AttemptsDone:
    worker: str
    reports: tuple[AttemptReport, ...]


@dataclass(frozen=True)
class WorkerExited:
    worker: str
    provider_id: str | None
    fault: bool
    reason: str


class TaskWorker(LeaseActor):
    """Deploys once, then runs hand-out after hand-out until retired; ``LeaseActor`` holds the
    provider."""

    role = "taskworker"

    def __init__(
        self,
        rt: Runtime,
        parent: pykka.ActorRef[Any],
        *,
        name: str,
        config: WorkerConfig,
        exclude: frozenset[str],
    ) -> None:
        super().__init__(rt, parent, terms=config, group=config.group, exclude=exclude)
        self.name = name
        self.config = config
        self._ready = False
        self._batches = 0
        self._retire: Retire | None = None
        self._reported = False

    @property
    def label(self) -> str:
        return self.name

    # -- the lease ----------------------------------------------------------------------------

    def on_leased(self, ctx: WorkContext) -> None:
        self.io("setup", ctx.deploy_and_start, timeout=self.config.setup_timeout_s)

    def on_lease_lost(self, loss: LeaseLoss, detail: str) -> None:
        if loss is LeaseLoss.ENDED_BY_PROVIDER:
            detail = f"the provider ended the agreement: {detail}"
        self._end(Retire(detail, fault=True))

    def provider_at_fault(self) -> bool:
        return self._retire is not None and self._retire.fault

    def io_setup(self, result: IoResult) -> None:
        if self._retire is not None:
            return
        if not result.ok:
            self._end(Retire(f"deploy/start failed: {result.error}", fault=True))
            return
        assert self.provider is not None
        self._ready = True
        self.tell_parent(
            WorkerReady(self.name, self.provider[0], self.provider[1], self.agreement_id or "")
        )

    # -- work ---------------------------------------------------------------------------------

    @handles(RunAttempts)
    def on_run(self, message: RunAttempts) -> None:
        ctx = self.ctx
        if self._retire is not None or ctx is None or not self._ready:
            reports = tuple(AttemptReport.not_run(a) for a, _ in message.items)
            self.tell_parent(AttemptsDone(self.name, reports))
            return
        self._batches += 1
        number = self._batches
        if message.items[0][1].declarative:
            name = self.name if self.config.stream_output else None
            batch = PackedBatch(message.items, self.config.storage, message.timeout_s, log_as=name)
            future: Future[list[CommandResult]] = Future()
            stream = batch.output.push if batch.output is not None else None
            self._tell_activity(ExecBatch(batch.script_json(), batch.timeout_s, future, stream))

            def collected(done: Future[list[CommandResult]]) -> None:
                # Parsing may run user code (``parse``): never in an actor's thread.
                self.rt.io.call(self.actor_ref, ("done", number), batch.collect, done)

            future.add_done_callback(collected)
            return
        attempt_id, task = message.items[0]
        fn = self.config.worker_fn
        assert fn is not None
        self.io(("done", number), run_user_task, fn, ctx, attempt_id, task)

    def _tell_activity(self, message: ExecBatch) -> None:
        try:
            assert self.activity is not None
            self.activity.tell(message)
        except (pykka.ActorDeadError, AssertionError):
            message.future.set_exception(RuntimeError("the activity actor is gone"))

    def io_done(self, result: IoResult) -> None:
        reports = result.value if result.ok else ()
        if not result.ok:
            log.error("%s: collecting results failed: %r", self.name, result.error)
        self.tell_parent(AttemptsDone(self.name, tuple(reports)))

    # -- ending -------------------------------------------------------------------------------

    @handles(Retire)
    def on_retire(self, message: Retire) -> None:
        self._end(message)

    def _end(self, why: Retire) -> None:
        if self._retire is not None:
            return
        self._retire = why
        self.stop_leasing()  # wakes the user's code; no new agreement or activity
        if why.fault:
            self._report_exit()  # the replacement must not wait for this cleanup
        self.release_lease(why.reason, fault=why.fault)

    def on_lease_closed(self) -> None:
        self._report_exit()

    def _report_exit(self) -> None:
        if self._reported:
            return
        self._reported = True
        assert self._retire is not None
        provider = self.release_provider()
        if provider is not None and self._retire.fault:
            self.config.market.tell(ProviderFailed(provider))
        self.tell_parent(WorkerExited(self.name, provider, self._retire.fault, self._retire.reason))

    def stopping(self) -> None:
        super().stopping()
        if not self._reported:
            self._reported = True
            provider = self.held_provider
            self.tell_parent(WorkerExited(self.name, provider, fault=False, reason="stopped"))
