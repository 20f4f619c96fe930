"""``Golem``: one requestor session — budget, market, payments, service clusters, clean exit.

    with Golem(budget="5") as golem:
        cluster = golem.run_service(MyService, instances=3)
        cluster.wait_running(timeout=60)
        ...
    # leaving the block stops the clusters, terminates every agreement, waits (bounded) for the
    # final invoices, accepts them, and releases the allocation

Everything that can be checked before money is committed (the service class, the payload, the
budget, that yagna answers) is checked in ``start()`` and ``run_service()``, with an error that
names the problem.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Self

import pykka

from golem_actors.actors.agreement import AgreementEventsActor
from golem_actors.actors.instance import InstanceConfig
from golem_actors.actors.market import MarketActor
from golem_actors.actors.payment_messages import (
    AgreementClosed,
    GetTotals,
    RegisterAgreement,
    Settle,
)
from golem_actors.actors.payments import PaymentActor
from golem_actors.actors.runtime import Runtime
from golem_actors.actors.supervisor import ClusterState, ClusterSupervisor, StopOne
from golem_actors.cluster import Cluster
from golem_actors.eventlog import EventLog
from golem_actors.journal import Journal, JournalError
from golem_actors.policy.decisions import Totals
from golem_actors.policy.demand import DemandSpec
from golem_actors.policy.payload import ImageResolver, VmPayload, no_resolver
from golem_actors.policy.restart import RestartType, SupervisorPolicy
from golem_actors.policy.scoring import OfferScorer, default_scorer
from golem_actors.recovery import (
    Recovered,
    RecoveryError,
    end_open_agreements,
    recover,
    spent_before,
)
from golem_actors.service import InstanceSnapshot, ServiceActor, ServiceHandle
from golem_actors.session_market import publish_demand
from golem_actors.storage.http import HttpStorage
from golem_actors.taskrun import start_task_run
from golem_actors.tasks import Task, TaskRun, Worker
from golem_actors.yagna import ApiConfig, YagnaClient, YagnaError
from golem_actors.yagna.models import Agreement, Allocation

__all__ = ["Cluster", "Golem", "GolemError"]

log = logging.getLogger(__name__)

ASK_TIMEOUT = 10.0
JOURNAL_NAME = "journal.gaj"  # the journal's name inside a run directory


class GolemError(RuntimeError):
    """The session could not start or do what was asked; the message says why."""


def _journal_path(value: Path | str) -> Path:
    path = Path(value)
    return path / JOURNAL_NAME if path.is_dir() or not path.suffix else path


def _budget(value: Decimal | str | float) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise GolemError(f"budget must be a number of GLM, got {value!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise GolemError(f"budget must be a positive number of GLM, got {value!r}")
    return amount


def _check_settings(
    *,
    subnet: str,
    payment_platform: str,
    expiration: dt.timedelta,
    debit_note_interval_s: int,
    scorer: OfferScorer | None,
    settle_timeout_s: float,
) -> None:
    """The session's own settings, checked when it is made: a bad subnet or platform would
    otherwise surface only at the first ``run_service``, after the budget was reserved."""
    try:
        DemandSpec(
            VmPayload(),
            subnet=subnet,
            expiration=expiration,
            payment_platform=payment_platform,
            debit_note_interval_s=debit_note_interval_s,
        )
    except ValueError as exc:
        raise GolemError(str(exc)) from None
    if scorer is not None and not callable(getattr(scorer, "score", None)):
        raise GolemError(f"scorer must have a score(offer_properties, provider_id), got {scorer!r}")
    if (
        isinstance(settle_timeout_s, bool)
        or not isinstance(settle_timeout_s, int | float)
        or not (math.isfinite(settle_timeout_s) and settle_timeout_s >= 0)
    ):
        raise GolemError(
            f"settle_timeout_s must be a number of seconds >= 0, got {settle_timeout_s!r}"
        )


class Golem:
    """A requestor session against one yagna (localnet's or your own)."""

    def __init__(
        self,
        *,
        config: ApiConfig | None = None,
        budget: Decimal | str | float = "5",
        payment_platform: str = "erc20-holesky-tglm",
        subnet: str = "public",
        scorer: OfferScorer | None = None,
        image_resolver: ImageResolver = no_resolver,
        expiration: dt.timedelta = dt.timedelta(hours=3),
        debit_note_interval_s: int = 120,
        settle_timeout_s: float = 60.0,
        journal: Path | str | None = None,
        events_file: Path | str | None = None,
    ) -> None:
        self.config = config or ApiConfig.from_env()
        self.budget = _budget(budget)
        _check_settings(
            subnet=subnet,
            payment_platform=payment_platform,
            expiration=expiration,
            debit_note_interval_s=debit_note_interval_s,
            scorer=scorer,
            settle_timeout_s=settle_timeout_s,
        )
        self.payment_platform = payment_platform
        self.subnet = subnet
        self.scorer = scorer or default_scorer()
        self.image_resolver = image_resolver
        self.expiration = expiration
        self.debit_note_interval_s = debit_note_interval_s
        self.settle_timeout_s = settle_timeout_s
        self.clusters: list[Cluster] = []
        self.task_runs: list[TaskRun] = []
        self.rt: Runtime | None = None
        self.allocation: Allocation | None = None
        self.final_allocation: Allocation | None = None
        self.final_totals: Totals | None = None
        self._decoration: tuple[dict[str, Any], list[str]] | None = None
        self._refs: dict[str, pykka.ActorRef[Any]] = {}
        self._storage: HttpStorage | None = None
        self._lock = threading.Lock()
        # A run directory (no suffix: its journal.gaj) or a journal file; None: no journal.
        self.journal_path = _journal_path(journal) if journal is not None else None
        self.journal: Journal | None = None
        self.recovered: Recovered | None = None
        self.since: dt.datetime | None = None  # when start() began
        self.events_file = Path(events_file) if events_file is not None else None
        self._event_log: EventLog | None = None  # every event as a JSON line (eventlog.py)

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        """Check yagna, reserve the budget, start the market, payment and event actors.

        With a journal that already holds a run, first recover it (``golem_actors.recovery``):
        end the agreements it left open and pick up the invoices and debit notes it still owes.
        """
        threading.stack_size(256 * 1024)  # thousands of actor threads; RSS is unchanged
        # Agreements created from here on may be this session's (the payment actor adopts them).
        self.since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        if self.events_file is not None:  # EventLogError (a ValueError) names the file
            self._event_log = EventLog(
                self.events_file, budget=self.budget, secret=self.config.app_key
            )
        if self.journal_path is not None:
            try:
                self.journal = Journal.open(self.journal_path)
            except JournalError as exc:
                raise GolemError(str(exc)) from None
        try:
            self._start_with_yagna()
        except BaseException:
            if self.journal is not None:
                self.journal.close()
                self.journal = None
            if self._event_log is not None:
                self._event_log.close()
            raise

    def _start_with_yagna(self) -> None:
        journal = self.journal
        with YagnaClient(self.config) as client:
            try:
                client.identity.me()
            except YagnaError as exc:
                raise GolemError(f"yagna at {self.config.api_url} is not usable: {exc}") from exc
            if journal is not None and journal.resumed:
                journal.reopen()
                try:
                    self.recovered = recover(client, journal)
                except RecoveryError as exc:
                    raise GolemError(f"recovering the run failed, start again: {exc}") from exc
            try:
                self.allocation = self._allocation(client)
                decoration = client.payment.demand_decorations([self.allocation.allocation_id])
            except YagnaError as exc:  # nothing committed yet: the caller may simply retry
                raise GolemError(f"reserving the budget in yagna failed: {exc}") from exc
            self._decoration = (decoration.property_dict(), list(decoration.constraints))
        self.rt = Runtime(self.config, journal=journal)
        if self._event_log is not None:
            self._event_log.attach(self.rt.events)
        self._storage = HttpStorage()
        self._refs["payments"] = PaymentActor.start(
            self.rt, self.allocation, recovered=self.recovered, since=self.since
        )
        self._refs["market"] = MarketActor.start(self.rt)
        self._refs["events"] = AgreementEventsActor.start(self.rt)

    def _allocation(self, client: YagnaClient) -> Allocation:
        """The run's budget in yagna: the journaled allocation if it still exists, else a new
        one for what is left of the budget after what the crashed session spent."""
        journal = self.journal
        if journal is not None and journal.state.allocation_id is not None:
            try:
                return client.payment.get_allocation(journal.state.allocation_id)
            except YagnaError as exc:
                log.info("the run's allocation is gone (%s): reserving a new one", exc)
        budget = self.budget
        if self.recovered is not None:
            budget -= spent_before(self.recovered)
            if budget <= 0:
                raise GolemError(f"the run already spent its whole budget of {self.budget} GLM")
        timeout = dt.datetime.now(dt.UTC) + self.expiration + dt.timedelta(hours=1)
        allocation = client.payment.create_allocation(
            budget, payment_platform=self.payment_platform, timeout=timeout
        )
        if journal is not None:
            journal.allocation(allocation.allocation_id, budget)
        return allocation

    def completed_tasks(self) -> dict[str, Any]:
        """Task id -> result recorded in the journal (tasks with one must not run again)."""
        return self.journal.completed_tasks() if self.journal is not None else {}

    def run_service(
        self,
        service_cls: type[ServiceActor],
        instances: int = 1,
        *,
        params: Sequence[Mapping[str, Any]] | None = None,
        payload: VmPayload | None = None,
        policy: SupervisorPolicy | None = None,
        health_interval_s: float = 5.0,
        health_misses: int = 2,
        stream_output: bool = False,
    ) -> Cluster:
        """Start ``instances`` of ``service_cls`` under a supervisor; returns at once.
        ``stream_output``: every command's output to the ``golem_actors.output`` log."""
        if self.rt is None or self._decoration is None:
            raise GolemError("start the session first (use `with Golem(...) as golem:`)")
        if not (isinstance(service_cls, type) and issubclass(service_cls, ServiceActor)):
            raise GolemError(f"{service_cls!r} is not a ServiceActor subclass")
        service_cls.validate()
        if isinstance(instances, bool) or not isinstance(instances, int) or instances < 1:
            raise GolemError(f"instances must be a whole number >= 1, got {instances!r}")
        if params is not None and len(params) != instances:
            raise GolemError(f"{len(params)} params given for {instances} instances")
        if not (math.isfinite(health_interval_s) and health_interval_s > 0):
            raise GolemError(f"health_interval_s must be positive, got {health_interval_s}")
        name = service_cls.__name__
        key = self._publish_demand(name, payload or service_cls.payload or VmPayload())
        restart_type = service_cls.restart_type or RestartType.PERMANENT
        policy = policy or SupervisorPolicy(restart_type=restart_type, service=name)
        cluster_state = ClusterState()
        children = [f"{name.lower()}-{i}" for i in range(instances)]
        handles: dict[str, ServiceHandle] = {}
        supervisor_box: list[pykka.ActorRef[Any]] = []

        def stop_one(instance: str) -> None:
            supervisor_box[0].tell(StopOne(instance))

        for child in children:
            handles[child] = ServiceHandle(name, child, stopper=stop_one)
        config = InstanceConfig(
            service_cls=service_cls,
            params={},
            demand_key=key,
            market=self._refs["market"],
            agreement_events=self._refs["events"],
            payments=self._refs["payments"],
            storage=self._storage,
            health_interval_s=health_interval_s,
            health_misses=health_misses,
            stream_output=bool(stream_output),
        )
        supervisor = ClusterSupervisor.start(
            self.rt,
            policy=policy,
            config=config,
            instances=handles,
            params={c: dict(params[i]) if params else {} for i, c in enumerate(children)},
            state=cluster_state,
        )
        supervisor_box.append(supervisor)
        cluster = Cluster(name, list(handles.values()), supervisor, cluster_state)
        self.clusters.append(cluster)
        return cluster

    def _publish_demand(self, name: str, payload: VmPayload) -> str:
        """Publish (once per distinct demand) and return the market's key for it."""
        assert self._decoration is not None
        spec = DemandSpec(
            payload,
            subnet=self.subnet,
            expiration=self.expiration,
            payment_platform=self.payment_platform,
            debit_note_interval_s=self.debit_note_interval_s,
        )
        return publish_demand(
            self._refs["market"],
            name,
            spec,
            self._decoration,
            scorer=self.scorer,
            image_resolver=self.image_resolver,
        )

    def execute_tasks(
        self,
        tasks: Sequence[Task],
        worker: Worker | None = None,
        *,
        payload: VmPayload | None = None,
        max_workers: int = 4,
        task_timeout: float = 300.0,
        timeout: float | None = None,
        max_retries: int = 3,
        **options: Any,
    ) -> TaskRun:
        """Run ``tasks`` on up to ``max_workers`` providers at once; iterate the ``TaskRun``
        for results in completion order, each task exactly once. Returns at once; more options
        in ``golem_actors.taskrun.start_task_run``."""
        if self.rt is None or self._decoration is None or self._storage is None:
            raise GolemError("start the session first (use `with Golem(...) as golem:`)")
        run = start_task_run(
            self.rt,
            tasks,
            worker,
            publish=lambda name: self._publish_demand(name, payload or VmPayload()),
            refs=self._refs,
            storage=self._storage,
            max_workers=max_workers,
            task_timeout=task_timeout,
            timeout=timeout,
            max_retries=max_retries,
            **options,
        )
        self.task_runs.append(run)
        return run

    def stop(self) -> Totals | None:
        """Stop every cluster, settle every invoice (bounded), release the budget, stop all."""
        if self.rt is None:
            return None
        running: list[TaskRun | Cluster] = [*self.task_runs, *self.clusters]
        began = time.monotonic()
        for each in running:  # task runs first: their workers end before the clusters'
            each.stop()
        stopped = time.monotonic()
        self._sweep(self.rt)
        swept = time.monotonic()
        self.final_totals = self._settle()
        # Where a slow stop spends its time (each phase is bounded; this says which one ran long).
        log.info(
            "stopping: work %.1f s, agreement sweep %.1f s, settling invoices %.1f s",
            stopped - began,
            swept - stopped,
            time.monotonic() - swept,
        )
        for name in ("market", "events", "payments"):
            ref = self._refs.pop(name, None)
            if ref is not None:
                try:
                    ref.stop(timeout=ASK_TIMEOUT)
                except pykka.Timeout:
                    log.warning("the %s actor did not stop in time", name)
        if self.allocation is not None:
            try:
                # What yagna says was spent, kept for the summary, then the rest goes back.
                self.final_allocation = self.rt.client.payment.get_allocation(
                    self.allocation.allocation_id
                )
                self.rt.client.payment.release_allocation(self.allocation.allocation_id)
            except YagnaError as exc:
                log.warning("releasing the allocation: %s", exc)
        if self._storage is not None:
            self._storage.close()
        self.rt.close()
        self.rt = None
        self._close_files()
        return self.final_totals

    def _close_files(self) -> None:
        """Last, once the actors are gone: their final events are in the events file."""
        if self._event_log is not None:
            self._event_log.close(self.final_totals)
        if self.journal is not None:
            self.journal.mark_closed()
            self.journal.close()

    def _sweep(self, rt: Runtime) -> None:
        """The last word on agreements: any of this run yagna still has live (a terminate lost
        to an API fault, a negotiation cut short) is ended now, not left billing."""
        if self.journal is None:
            return
        billable: list[Agreement] = []
        swept, problems = end_open_agreements(rt.client, self.journal, billable=billable)
        for problem in problems:
            log.warning("%s", problem)
        if swept:
            log.warning("ended %d agreement(s) left open: %s", len(swept), ", ".join(swept))
        payments = self._refs.get("payments")
        if payments is None:
            return
        # Every agreement the provider approved can invoice, even one the runtime gave up on
        # while it was being made: the books learn of it (a no-op for those they know), so
        # settling waits for its invoice and accepts it once. An unknown one is bounded as
        # ending now, which is later than it did: never an honest bill refused.
        for agreement in billable:
            payments.tell(RegisterAgreement(agreement))
            payments.tell(AgreementClosed(agreement.agreement_id))

    def _settle(self) -> Totals | None:
        """Wait (bounded) until every ended agreement's invoice is accepted."""
        payments = self._refs.get("payments")
        if payments is None:
            return self.final_totals
        future: Future[Totals] = Future()
        payments.tell(Settle(future))
        try:
            return future.result(self.settle_timeout_s)
        except FutureTimeoutError:
            log.warning("some invoices did not arrive within %.0f s", self.settle_timeout_s)
            return self.totals()

    def totals(self) -> Totals | None:
        """The payment books now (the final ones once stopped)."""
        ref = self._refs.get("payments")
        if ref is None:
            return self.final_totals
        try:
            totals = ref.ask(GetTotals(), block=True, timeout=ASK_TIMEOUT)
        except (pykka.ActorDeadError, pykka.Timeout):
            return self.final_totals
        return totals if isinstance(totals, Totals) else None

    def snapshots(self) -> list[InstanceSnapshot]:
        return [snap for cluster in self.clusters for snap in cluster.snapshots()]
