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
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Self

import pykka

from golem_actors.actors.agreement import AgreementEventsActor
from golem_actors.actors.instance import InstanceConfig
from golem_actors.actors.market import MarketActor, PublishDemand
from golem_actors.actors.payments import GetTotals, PaymentActor, Settle
from golem_actors.actors.runtime import Runtime
from golem_actors.actors.supervisor import ClusterState, ClusterSupervisor, StopCluster, StopOne
from golem_actors.policy.demand import DemandSpec, build_demand
from golem_actors.policy.lifecycle import ServiceState
from golem_actors.policy.negotiation import (
    CounterRejectedError,
    check_provider_counter,
    counter_properties,
)
from golem_actors.policy.payload import ImageResolver, VmPayload, no_resolver
from golem_actors.policy.payments import Totals
from golem_actors.policy.restart import RestartType, SupervisorPolicy
from golem_actors.policy.scoring import OfferScorer, default_scorer
from golem_actors.service import InstanceSnapshot, ServiceActor, ServiceHandle
from golem_actors.storage.http import HttpStorage
from golem_actors.yagna import ApiConfig, YagnaClient, YagnaError
from golem_actors.yagna.models import Allocation

__all__ = ["Cluster", "Golem", "GolemError"]

log = logging.getLogger(__name__)

ASK_TIMEOUT = 10.0


class GolemError(RuntimeError):
    """The session could not start or do what was asked; the message says why."""


def _budget(value: Decimal | str | float) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise GolemError(f"budget must be a number of GLM, got {value!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise GolemError(f"budget must be a positive number of GLM, got {value!r}")
    return amount


@dataclass
class Cluster:
    """N instances of one service under one supervisor; handles survive restarts."""

    name: str
    handles: list[ServiceHandle]
    supervisor: pykka.ActorRef[Any]
    state: ClusterState

    @property
    def escalated(self) -> str | None:
        return self.state.escalated

    def snapshots(self) -> list[InstanceSnapshot]:
        return [handle.snapshot() for handle in self.handles]

    def wait_running(self, timeout: float) -> bool:
        """True once every instance is running (False on timeout or escalation)."""
        deadline = time.monotonic() + timeout
        for handle in self.handles:
            left = deadline - time.monotonic()
            if left <= 0 or not handle.wait_for(ServiceState.RUNNING, timeout=left):
                return False
            if self.state.escalated:
                return False
        return True

    def stop(self, timeout: float = 60.0) -> None:
        """Stop every instance (terminating its agreement), then the supervisor itself."""
        future: Future[None] = Future()
        try:
            self.supervisor.tell(StopCluster(future))
            future.result(timeout)
        except (pykka.ActorDeadError, FutureTimeoutError):
            log.warning("cluster %s did not stop within %.0f s", self.name, timeout)
        try:
            self.supervisor.stop(timeout=ASK_TIMEOUT)
        except pykka.Timeout:
            log.warning("the supervisor of %s did not stop in time", self.name)


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
    ) -> None:
        self.config = config or ApiConfig.from_env()
        self.budget = _budget(budget)
        self.payment_platform = payment_platform
        self.subnet = subnet
        self.scorer = scorer or default_scorer()
        self.image_resolver = image_resolver
        self.expiration = expiration
        self.debit_note_interval_s = debit_note_interval_s
        self.settle_timeout_s = settle_timeout_s
        self.clusters: list[Cluster] = []
        self.rt: Runtime | None = None
        self.allocation: Allocation | None = None
        self.final_allocation: Allocation | None = None
        self.final_totals: Totals | None = None
        self._decoration: tuple[dict[str, Any], list[str]] | None = None
        self._refs: dict[str, pykka.ActorRef[Any]] = {}
        self._storage: HttpStorage | None = None
        self._lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        """Check yagna, reserve the budget, start the market, payment and event actors."""
        threading.stack_size(256 * 1024)  # thousands of actor threads; RSS is unchanged
        with YagnaClient(self.config) as client:
            try:
                client.identity.me()
            except YagnaError as exc:
                raise GolemError(f"yagna at {self.config.api_url} is not usable: {exc}") from exc
            timeout = dt.datetime.now(dt.UTC) + self.expiration + dt.timedelta(hours=1)
            self.allocation = client.payment.create_allocation(
                self.budget, payment_platform=self.payment_platform, timeout=timeout
            )
            decoration = client.payment.demand_decorations([self.allocation.allocation_id])
            self._decoration = (decoration.property_dict(), list(decoration.constraints))
        self.rt = Runtime(self.config)
        self._storage = HttpStorage()
        self._refs["payments"] = PaymentActor.start(self.rt, self.allocation)
        self._refs["market"] = MarketActor.start(self.rt)
        self._refs["events"] = AgreementEventsActor.start(self.rt)

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
    ) -> Cluster:
        """Start ``instances`` of ``service_cls`` under a supervisor; returns at once."""
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
        payload = payload or service_cls.payload or VmPayload()
        spec = DemandSpec(
            payload,
            subnet=self.subnet,
            expiration=self.expiration,
            payment_platform=self.payment_platform,
            debit_note_interval_s=self.debit_note_interval_s,
        )
        demand = build_demand(
            spec,
            now=dt.datetime.now(dt.UTC),
            decoration_properties=self._decoration[0],
            decoration_constraints=self._decoration[1],
            image_resolver=self.image_resolver,
        )
        fingerprint = (demand.constraints, tuple(sorted(map(str, demand.properties.items()))))
        key = f"{name}:{hash(fingerprint)}"
        self._refs["market"].tell(
            PublishDemand(
                key,
                demand.properties,
                demand.constraints,
                self._score,
                self._counter(demand.properties),
                self._check,
            )
        )
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

    def _score(self, props: Mapping[str, Any], provider_id: str) -> float | str:
        score = self.scorer.score(props, provider_id)
        return score.value if score.value is not None else score.reason

    def _counter(self, demand_props: Mapping[str, Any]) -> Any:
        platform = self.payment_platform

        def counter(offer_props: Mapping[str, Any]) -> dict[str, Any] | str:
            try:
                return counter_properties(demand_props, offer_props, payment_platform=platform)
            except CounterRejectedError as exc:
                return str(exc)

        return counter

    @staticmethod
    def _check(
        ours: Mapping[str, Any], theirs: Mapping[str, Any], offer: Mapping[str, Any]
    ) -> str | None:
        return check_provider_counter(ours, theirs, offer_props=offer)

    def stop(self) -> Totals | None:
        """Stop every cluster, settle every invoice (bounded), release the budget, stop all."""
        if self.rt is None:
            return None
        for cluster in self.clusters:
            cluster.stop()
        self.final_totals = self._settle()
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
        return self.final_totals

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
