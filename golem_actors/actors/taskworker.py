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

import datetime as dt
import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pykka

from golem_actors.actors.activity import (
    ActivityActor,
    ActivityClosed,
    ActivityFailed,
    ActivityGone,
    ActivityReady,
    Destroy,
    ExecBatch,
)
from golem_actors.actors.agreement import (
    AgreementActor,
    AgreementEnded,
    AgreementFailed,
    AgreementReady,
    Terminate,
)
from golem_actors.actors.base import ChildDied, RuntimeActor, handles
from golem_actors.actors.context import WorkContext
from golem_actors.actors.io import IoResult
from golem_actors.actors.market import (
    CancelRequest,
    ProposalGranted,
    ProviderFailed,
    ReleaseProvider,
    RequestProposal,
)
from golem_actors.actors.payments import AgreementClosed, RegisterActivity, RegisterAgreement
from golem_actors.actors.runtime import Runtime
from golem_actors.actors.taskexec import AttemptReport, PackedBatch, run_user_task
from golem_actors.storage.http import Storage
from golem_actors.tasks import Task, Worker

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
    worker_fn: Worker | None
    setup_timeout_s: float = 120.0
    teardown_timeout_s: float = 20.0
    max_agreement_attempts: int = 5


# -- messages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunAttempts:
    """Run these attempts: ``(attempt_id, task)`` pairs; several only for declarative tasks."""

    items: tuple[tuple[int, Task], ...]
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


@dataclass(frozen=True)
class _TeardownDeadline:
    pass


class TaskWorker(RuntimeActor):
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
        super().__init__(rt, parent)
        self.name = name
        self.config = config
        self._exclude = set(exclude)
        self._request_id = rt.io.next_id()
        self._agreement_attempts = 0
        self._provider: tuple[str, str] | None = None
        self._agreement: pykka.ActorRef[Any] | None = None
        self._agreement_id: str | None = None
        self._activity: pykka.ActorRef[Any] | None = None
        self._activity_requested = dt.datetime.now(dt.UTC)
        self._ctx: WorkContext | None = None
        self._stop_event = threading.Event()
        self._ready = False
        self._batches = 0
        self._ending: Retire | None = None
        self._waiting: set[str] = set()
        self._reported = False

    # -- getting a provider (as a service instance does) --------------------------------------

    def started(self) -> None:
        self._request()

    def _request(self) -> None:
        self.config.market.tell(
            RequestProposal(
                self.config.demand_key,
                self._request_id,
                self.actor_ref,
                exclude=frozenset(self._exclude),
                group=self.config.group,
            )
        )

    @handles(ProposalGranted)
    def on_granted(self, granted: ProposalGranted) -> None:
        if self._ending is not None or self._agreement is not None:
            return
        self._provider = (granted.provider_id, granted.provider_name)
        self._agreement = AgreementActor.start(
            self.rt,
            self.actor_ref,
            proposal_id=granted.proposal.proposal_id,
            provider_id=granted.provider_id,
            provider_name=granted.provider_name,
            events=self.config.agreement_events,
        )

    @handles(AgreementFailed)
    def on_agreement_failed(self, failed: AgreementFailed) -> None:
        self._agreement = None
        if self._ending is not None:
            self._closed("agreement")
            return
        self._agreement_attempts += 1
        self._exclude.add(failed.provider_id)
        self.config.market.tell(ProviderFailed(failed.provider_id))
        self.config.market.tell(ReleaseProvider(self.config.group, failed.provider_id))
        self._provider = None
        if self._agreement_attempts >= self.config.max_agreement_attempts:
            self._end(Retire(f"{self._agreement_attempts} agreements failed", fault=True))
            return
        self._request_id = self.rt.io.next_id()
        self._request()

    @handles(AgreementReady)
    def on_agreement(self, ready: AgreementReady) -> None:
        self._agreement_id = ready.agreement.agreement_id
        self.config.payments.tell(RegisterAgreement(ready.agreement))
        if self._ending is not None:
            return  # Terminate was already sent
        self._activity_requested = dt.datetime.now(dt.UTC)
        self._activity = ActivityActor.start(self.rt, self.actor_ref, self._agreement_id)

    @handles(ActivityFailed)
    def on_activity_failed(self, failed: ActivityFailed) -> None:
        self._activity = None
        self._end(Retire(f"creating the activity failed: {failed.error}", fault=True))

    @handles(ActivityReady)
    def on_activity(self, ready: ActivityReady) -> None:
        # Registered first, even when ending: the provider bills every activity it made.
        self.config.payments.tell(
            RegisterActivity(self._agreement_id or "", ready.activity_id, self._activity_requested)
        )
        if self._ending is not None or self._activity is None or self._provider is None:
            return
        self._ctx = WorkContext(
            self._activity,
            storage=self.config.storage,
            provider_id=self._provider[0],
            provider_name=self._provider[1],
            agreement_id=self._agreement_id or "",
            activity_id=ready.activity_id,
            stop=self._stop_event,
        )
        self.io("setup", self._ctx.deploy_and_start, timeout=self.config.setup_timeout_s)

    def io_setup(self, result: IoResult) -> None:
        if self._ending is not None:
            return
        if not result.ok:
            self._end(Retire(f"deploy/start failed: {result.error}", fault=True))
            return
        assert self._provider is not None
        self._ready = True
        self.tell_parent(
            WorkerReady(self.name, self._provider[0], self._provider[1], self._agreement_id or "")
        )

    # -- work ---------------------------------------------------------------------------------

    @handles(RunAttempts)
    def on_run(self, message: RunAttempts) -> None:
        ctx = self._ctx
        if self._ending is not None or ctx is None or not self._ready:
            reports = tuple(AttemptReport.not_run(a) for a, _ in message.items)
            self.tell_parent(AttemptsDone(self.name, reports))
            return
        self._batches += 1
        number = self._batches
        if message.items[0][1].declarative:
            batch = PackedBatch(message.items, self.config.storage, message.timeout_s)
            future: Future[list[Any]] = Future()
            self._tell_activity(ExecBatch(batch.script_json(), batch.timeout_s, future))

            def collected(done: Future[list[Any]]) -> None:
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
            assert self._activity is not None
            self._activity.tell(message)
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

    @handles(ActivityGone)
    def on_gone(self, gone: ActivityGone) -> None:
        self._end(Retire(gone.reason, fault=True))

    @handles(AgreementEnded)
    def on_agreement_ended(self, ended: AgreementEnded) -> None:
        self._agreement = None
        failed = not ended.by_provider and self._ending is not None and self._ending.fault
        self.config.payments.tell(AgreementClosed(ended.agreement_id, expect_invoice=not failed))
        if self._ending is None:
            self._end(Retire(f"the provider ended the agreement: {ended.reason}", fault=True))
        self._closed("agreement")

    @handles(ActivityClosed)
    def on_activity_closed(self, _: ActivityClosed) -> None:
        self._activity = None
        self._closed("activity")

    @handles(ChildDied)
    def on_child_died(self, died: ChildDied) -> None:
        if died.role == "activity":
            self._activity = None
        elif died.role == "agreement":
            self._agreement = None
        if self._ending is None:
            self._end(Retire(f"the {died.role} actor died: {died.error!r}", fault=True))
        self._closed(died.role)

    def _end(self, why: Retire) -> None:
        if self._ending is not None:
            return
        self._ending = why
        self._stop_event.set()  # wakes the user's code
        self.config.market.tell(CancelRequest(self.config.demand_key, self._request_id))
        if why.fault:
            self._report_exit()  # the replacement must not wait for this cleanup
        if self._activity is not None:
            self._waiting.add("activity")
            self._activity.tell(Destroy())
        if self._agreement is not None:
            self._waiting.add("agreement")
            code = "Cancelled" if why.fault else "Success"
            self._agreement.tell(Terminate(why.reason[:200], code))
        self.after(self.config.teardown_timeout_s, _TeardownDeadline(), key="teardown")
        self._maybe_finish()

    def _closed(self, what: str) -> None:
        self._waiting.discard(what)
        self._maybe_finish()

    @handles(_TeardownDeadline)
    def on_deadline(self, _: _TeardownDeadline) -> None:
        log.warning("%s: teardown timed out waiting for %s", self.name, self._waiting)
        self._waiting.clear()
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self._ending is None or self._waiting:
            return
        self._report_exit()
        self.stop()

    def _report_exit(self) -> None:
        if self._reported:
            return
        self._reported = True
        assert self._ending is not None
        provider = self._provider[0] if self._provider else None
        if provider is not None:
            self.config.market.tell(ReleaseProvider(self.config.group, provider))
            if self._ending.fault:
                self.config.market.tell(ProviderFailed(provider))
        self.tell_parent(WorkerExited(self.name, provider, self._ending.fault, self._ending.reason))

    def stopping(self) -> None:
        self._stop_event.set()
        if not self._reported:
            self._reported = True
            provider = self._provider[0] if self._provider else None
            self.tell_parent(WorkerExited(self.name, provider, fault=False, reason="stopped"))
