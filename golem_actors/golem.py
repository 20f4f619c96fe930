"""``Golem``: one requestor session — budget, market, payments, service clusters, task runs,
clean exit; and ``execute_tasks``, a whole session for one task run.

    with Golem(budget="5") as golem:
        cluster = golem.run_service(MyService, instances=3)
        cluster.wait_running(timeout=60)
        ...
    # leaving the block stops the clusters, terminates every agreement, waits (bounded) for the
    # final invoices, accepts them, and releases the allocation

Everything that can be checked before money is committed (the service class, the payload, the
budget, that yagna answers) is checked in ``start()`` and ``run_service()``, with an error that
names the problem. The session's parts: ``session_budget`` (the allocation), ``session_demand``
(what is asked of the market), ``session_stop`` (how it ends).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Self, Unpack

import pykka

from golem_actors import arguments
from golem_actors.actors.agreement import AgreementEventsActor
from golem_actors.actors.instance import InstanceConfig
from golem_actors.actors.market import MarketActor
from golem_actors.actors.runtime import Runtime
from golem_actors.actors.supervisor import ClusterState, ClusterSupervisor, StopOne
from golem_actors.actors.task_attempts import Worker
from golem_actors.cluster import Cluster
from golem_actors.errors import GolemActorsError
from golem_actors.images.registry import RegistryResolver
from golem_actors.journal import Journal, JournalError
from golem_actors.payments.actor import PaymentActor
from golem_actors.payments.adoption import Recovered
from golem_actors.payments.decisions import Totals
from golem_actors.payments.messages import GetTotals
from golem_actors.policy.payload import ImageResolver, VmPayload
from golem_actors.policy.scoring import OfferScorer, default_scorer
from golem_actors.policy.supervision import RestartType, SupervisorPolicy
from golem_actors.policy.task_book import TaskPolicy
from golem_actors.recovery import RecoveryError, recover
from golem_actors.service import InstanceSnapshot, ServiceActor, ServiceHandle
from golem_actors.session_budget import (
    BudgetSpentError,
    parse_budget,
    release_budget,
    reserve_budget,
)
from golem_actors.session_demand import ClusterDemand, DemandOptions, PaymentTimeout, SessionDemand
from golem_actors.session_files import SessionFiles
from golem_actors.session_stop import ASK_TIMEOUT, settle, settle_seconds, stop_actors, sweep
from golem_actors.storage.http import Storage, StorageError
from golem_actors.storage.select import SessionStorage
from golem_actors.tasks.model import D_co, R_co, Task
from golem_actors.tasks.options import TaskOptions
from golem_actors.tasks.run import TaskRun
from golem_actors.tasks.start import check_tasks, start_task_run
from golem_actors.yagna import ApiConfig, YagnaClient, YagnaError
from golem_actors.yagna.models import Allocation

__all__ = ["Cluster", "Golem", "GolemError", "GolemOptions", "execute_tasks"]

log = logging.getLogger(__name__)


class GolemError(GolemActorsError, RuntimeError):
    """The session could not start or do what was asked; the message says why."""


class GolemOptions(DemandOptions, total=False):
    """``Golem(...)``'s settings besides ``config`` and ``budget`` (``execute_tasks`` takes them
    as ``golem_options``)."""

    payment_platform: str
    subnet: str
    scorer: OfferScorer | None
    image_resolver: ImageResolver | None
    expiration: dt.timedelta
    debit_note_interval_s: int
    settle_timeout_s: float
    journal: Path | str | None
    storage: str | Storage


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
        image_resolver: ImageResolver | None = None,
        registry_url: str | None = None,  # images by tag or bare hash; $GOLEM_REGISTRY_URL
        expiration: dt.timedelta = dt.timedelta(hours=3),
        debit_note_interval_s: int = 120,
        payment_timeout_s: PaymentTimeout = "auto",  # mid-agreement payments from 5 h
        extra_properties: Mapping[str, Any] | None = None,
        extra_constraints: Sequence[str] = (),
        settle_timeout_s: float = 60.0,
        journal: Path | str | None = None,
        storage: str | Storage = "gftp",
        events_file: Path | str | None = None,
    ) -> None:
        self.config = config or ApiConfig.from_env()
        try:
            self.budget = parse_budget(budget)
            self.demand = SessionDemand(
                subnet=subnet,
                payment_platform=payment_platform,
                expiration=expiration,
                debit_note_interval_s=debit_note_interval_s,
                scorer=scorer or default_scorer(),
                image_resolver=image_resolver or RegistryResolver(registry_url),
                payment_timeout_s=payment_timeout_s,
                extra_properties=extra_properties or {},
                extra_constraints=extra_constraints,
            )
            self.settle_timeout_s = settle_seconds(settle_timeout_s)
            # "http", "gftp" (through yagna's GSB API) or a Storage the caller owns
            self.storage = SessionStorage(storage)
        except (ValueError, TypeError) as exc:
            raise GolemError(str(exc)) from None
        self.clusters: list[Cluster] = []
        self.task_runs: list[TaskRun[object, object]] = []
        self.rt: Runtime | None = None
        self.allocation: Allocation | None = None
        self.final_allocation: Allocation | None = None
        self.final_totals: Totals | None = None
        self._decoration: tuple[dict[str, Any], list[str]] | None = None
        self._refs: dict[str, pykka.ActorRef[Any]] = {}
        self._lock = threading.Lock()
        self.files = SessionFiles(journal, events_file)  # a run directory or journal file
        self.recovered: Recovered | None = None
        self.since: dt.datetime | None = None  # when start() began

    @property
    def journal(self) -> Journal | None:
        """The session's journal, once started (None without one)."""
        return self.files.journal

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
        try:  # EventLogError (a ValueError) names the file
            self.files.open(budget=self.budget, secret=self.config.app_key)
        except JournalError as exc:
            raise GolemError(str(exc)) from None
        try:
            self._start_with_yagna()
        except BaseException:
            self.storage.close()
            self.files.discard()
            raise

    def _start_with_yagna(self) -> None:
        journal = self.journal
        with YagnaClient(self.config) as client:
            try:
                client.identity.me()
            except YagnaError as exc:
                raise GolemError(f"yagna at {self.config.api_url} is not usable: {exc}") from exc
            try:  # before the budget is reserved: a storage that cannot start costs nothing
                self.storage.open(self.config)
            except StorageError as exc:
                raise GolemError(f"the {self.storage.choice} storage cannot start: {exc}") from exc
            if journal is not None and journal.resumed:
                journal.reopen()
                try:
                    self.recovered = recover(client, journal)
                except RecoveryError as exc:
                    raise GolemError(f"recovering the run failed, start again: {exc}") from exc
            try:
                self.allocation = reserve_budget(
                    client,
                    journal,
                    self.budget,
                    self.recovered,
                    self.demand.payment_platform,
                    self.demand.expiration,
                )
                decoration = client.payment.demand_decorations([self.allocation.allocation_id])
            except BudgetSpentError as exc:
                raise GolemError(str(exc)) from None
            except YagnaError as exc:  # nothing committed yet: the caller may simply retry
                raise GolemError(f"reserving the budget in yagna failed: {exc}") from exc
            self._decoration = (decoration.property_dict(), list(decoration.constraints))
        self.rt = Runtime(self.config, journal=journal)
        self.files.attach(self.rt.events)
        self._refs["payments"] = PaymentActor.start(
            self.rt, self.allocation, recovered=self.recovered, since=self.since
        )
        self._refs["market"] = MarketActor.start(self.rt)
        self._refs["events"] = AgreementEventsActor.start(self.rt)

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
        **demand: Unpack[ClusterDemand],
    ) -> Cluster:
        """Start ``instances`` of ``service_cls`` under a supervisor; returns at once.
        ``stream_output``: every command's output to the ``golem_actors.output`` log."""
        if self.rt is None or self._decoration is None:
            raise GolemError("start the session first (use `with Golem(...) as golem:`)")
        if not (isinstance(service_cls, type) and issubclass(service_cls, ServiceActor)):
            raise GolemError(f"{service_cls!r} is not a ServiceActor subclass")
        service_cls.validate()
        arguments.whole("instances", instances, ge=1, error=GolemError)
        if params is not None and len(params) != instances:
            raise GolemError(f"{len(params)} params given for {instances} instances")
        arguments.number("health_interval_s", health_interval_s, gt=0, error=GolemError)
        name = service_cls.__name__
        key = self._publish_demand(name, payload or service_cls.payload or VmPayload(), **demand)
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
            storage=self.storage.current,
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

    def _publish_demand(self, name: str, payload: VmPayload, **demand: Any) -> str:
        """Publish (once per distinct demand) and return the market's key for it."""
        assert self._decoration is not None
        return self.demand.publish(self._refs["market"], name, payload, self._decoration, **demand)

    def execute_tasks(
        self,
        tasks: Sequence[Task[D_co]],
        worker: Worker[D_co, R_co] | None = None,
        *,
        payload: VmPayload | None = None,
        max_workers: int = 4,
        task_timeout: float = 300.0,
        timeout: float | None = None,
        max_retries: int = 3,
        batch_size: int = 10,
        policy: TaskPolicy | None = None,
        progress: bool | None = None,
        name: str = "tasks",
        stream_output: bool = False,
    ) -> TaskRun[D_co, R_co]:
        """Run ``tasks`` on up to ``max_workers`` providers at once; iterate the ``TaskRun``
        for results in completion order, each task exactly once. Returns at once.

        ``worker(ctx, task)`` runs each task (or the tasks are declarative: commands); the
        options are ``TaskOptions``'s (``golem_actors.tasks.options``), checked here.
        """
        options = TaskOptions(
            max_workers=max_workers,
            task_timeout=task_timeout,
            timeout=timeout,
            max_retries=max_retries,
            batch_size=batch_size,
            policy=policy,
            progress=progress,
            name=name,
            stream_output=stream_output,
        )
        return self._start_tasks(tasks, worker, options, payload)

    def _start_tasks(
        self,
        tasks: Sequence[Task[D_co]],
        worker: Worker[D_co, R_co] | None,
        options: TaskOptions,
        payload: VmPayload | None,
    ) -> TaskRun[D_co, R_co]:
        if self.rt is None or self._decoration is None or self.storage.current is None:
            raise GolemError("start the session first (use `with Golem(...) as golem:`)")
        run = start_task_run(
            self.rt,
            tasks,
            worker,
            options,
            publish=lambda name: self._publish_demand(name, payload or VmPayload()),
            refs=self._refs,
            storage=self.storage.current,
        )
        self.task_runs.append(run)
        return run

    def stop(self) -> Totals | None:
        """Stop every task run and cluster, settle every invoice (bounded), release the budget,
        stop all (the sequence: ``golem_actors.session_stop``)."""
        rt = self.rt
        if rt is None:
            return None
        began = time.monotonic()
        running: list[TaskRun | Cluster] = [*self.task_runs, *self.clusters]
        for each in running:  # task runs first: their workers end before the clusters'
            each.stop()
        stopped = time.monotonic()
        sweep(rt, self.journal, self._refs.get("payments"))
        swept = time.monotonic()
        settled = settle(self._refs.get("payments"), self.settle_timeout_s)
        self.final_totals = settled if settled is not None else self.totals()
        # Where a slow stop spends its time (each phase is bounded; this says which one ran long).
        log.info(
            "stopping: work %.1f s, agreement sweep %.1f s, settling invoices %.1f s",
            stopped - began,
            swept - stopped,
            time.monotonic() - swept,
        )
        stop_actors(self._refs)
        self.final_allocation = release_budget(rt.client, self.allocation)
        self.storage.close()
        rt.close()
        self.rt = None
        self.files.close(self.final_totals)  # last: the actors' final events are in
        return self.final_totals

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


@contextlib.contextmanager
def execute_tasks(
    tasks: Sequence[Task[D_co]],
    worker: Worker[D_co, R_co] | None = None,
    *,
    budget: Decimal | str | float = "5",
    config: ApiConfig | None = None,
    golem_options: GolemOptions | None = None,
    payload: VmPayload | None = None,
    max_workers: int = 4,
    task_timeout: float = 300.0,
    timeout: float | None = None,
    max_retries: int = 3,
    batch_size: int = 10,
    policy: TaskPolicy | None = None,
    progress: bool | None = None,
    name: str = "tasks",
    stream_output: bool = False,
) -> Iterator[TaskRun[D_co, R_co]]:
    """A whole session for one run: ``with execute_tasks(tasks, ...) as run: for r in run: ...``.

    Leaving the block (normally, on an error or on Ctrl-C) stops the run, terminates every
    agreement and pays every invoice; ``run.summary`` is then final. The options are those of
    ``Golem.execute_tasks``; ``golem_options`` the session's (``Golem(...)``) besides ``config``
    and ``budget``. Tasks and options are checked before the session starts.
    """
    options = TaskOptions(
        max_workers=max_workers,
        task_timeout=task_timeout,
        timeout=timeout,
        max_retries=max_retries,
        batch_size=batch_size,
        policy=policy,
        progress=progress,
        name=name,
        stream_output=stream_output,
    )
    check_tasks(tasks, worker)
    golem = Golem(config=config, budget=budget, **(golem_options or {}))
    golem.start()
    run: TaskRun[D_co, R_co] | None = None
    try:
        run = golem._start_tasks(tasks, worker, options, payload)  # noqa: SLF001 - its own session
        yield run
    finally:
        try:
            if run is not None:
                run.stop()
        finally:
            golem.stop()
            if run is not None:
                run.set_final_summary(run.stats.snapshot())
