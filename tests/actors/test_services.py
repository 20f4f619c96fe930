"""The service model end to end on localnet: instances run, fail in every way, and come back
on other providers; shutdown terminates every agreement and pays every invoice."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pykka
import pytest

from golem_actors import (
    Golem,
    RestartType,
    ServiceActor,
    ServiceState,
    SupervisorPolicy,
    WorkContext,
)
from golem_actors.events import AgreementApproved, AgreementTerminated, Event, InvoiceAccepted
from golem_actors.localnet.network import LocalNet
from golem_actors.policy.supervision import Backoff, RestartIntensity, Strategy
from golem_actors.service import ServiceHandle
from golem_actors.yagna import ApiConfig, YagnaClient
from tests.waiting import wait_for

pytestmark = [pytest.mark.yagna, pytest.mark.usefixtures("healthy_providers")]


class Sleeper(ServiceActor):
    """Deploys, starts, and runs until stopped; its health check runs a command."""

    def run(self, ctx: WorkContext) -> None:
        while True:
            ctx.run("/bin/true")
            ctx.sleep(0.5)


class FailsToStart(ServiceActor):
    restart_type = RestartType.TEMPORARY

    def start(self, ctx: WorkContext) -> None:
        super().start(ctx)
        ctx.run("/bin/sh", "-c", "echo cannot start >&2; exit 3")


class AlwaysFails(ServiceActor):
    def run(self, ctx: WorkContext) -> None:
        raise RuntimeError("broken on purpose")


@pytest.fixture
def golem(localnet: LocalNet) -> Iterator[tuple[Golem, list[Event]]]:
    config = ApiConfig(app_key=localnet.app_key, api_url=localnet.api_url)
    session = Golem(config=config, budget="5", settle_timeout_s=20)
    events: list[Event] = []
    session.start()
    assert session.rt is not None
    session.rt.events.subscribe(events.append)
    try:
        yield session, events
    finally:
        session.stop()
    assert pykka.ActorRegistry.get_all() == []  # no actor outlives its run


def restarted_on_another_provider(handle: ServiceHandle, old_provider: str) -> bool:
    snap = handle.snapshot()
    return (
        snap.restarts >= 1
        and snap.state is ServiceState.RUNNING
        and snap.provider_name is not None
        and snap.provider_name != old_provider
    )


def fast(service: str, **changes: Any) -> SupervisorPolicy:
    return SupervisorPolicy(service=service, backoff=Backoff(min_s=0.05, max_s=1.0), **changes)


def test_three_instances_run_on_three_providers(golem: tuple[Golem, list[Event]]) -> None:
    session, _ = golem
    cluster = session.run_service(Sleeper, 3, health_interval_s=1.0)
    assert cluster.wait_running(timeout=60), cluster.snapshots()
    providers = {s.provider_name for s in cluster.snapshots()}
    assert len(providers) == 3  # siblings are spread over providers
    assert all(s.agreement_id and s.activity_id for s in cluster.snapshots())


def test_a_killed_provider_is_replaced(
    golem: tuple[Golem, list[Event]], localnet: LocalNet
) -> None:
    session, _ = golem
    cluster = session.run_service(Sleeper, 2, health_interval_s=1.0, policy=fast("Sleeper"))
    assert cluster.wait_running(timeout=60)
    handle = cluster.handles[0]
    victim = handle.snapshot().provider_name
    assert victim is not None
    localnet.kill(victim)
    wait_for("a replacement elsewhere", lambda: restarted_on_another_provider(handle, victim))
    last_exit = handle.snapshot().last_exit or ""
    assert last_exit.startswith(("unresponsive", "activity_gone", "run_failed")), last_exit
    assert cluster.handles[1].snapshot().restarts == 0  # one_for_one: the sibling was untouched


def test_one_for_all_restarts_every_sibling_when_one_fails(
    golem: tuple[Golem, list[Event]], localnet: LocalNet
) -> None:
    session, _ = golem
    policy = fast("Sleeper", strategy=Strategy.ONE_FOR_ALL)
    cluster = session.run_service(Sleeper, 2, health_interval_s=1.0, policy=policy)
    assert cluster.wait_running(timeout=60)
    failing, sibling = cluster.handles
    victim = failing.snapshot().provider_name
    sibling_agreement = sibling.snapshot().agreement_id
    assert victim is not None
    localnet.kill(victim)
    wait_for(
        "the failed instance back elsewhere", lambda: restarted_on_another_provider(failing, victim)
    )
    wait_for(
        "the sibling restarted too, on a new agreement",
        lambda: sibling.snapshot().restarts >= 1 and sibling.state is ServiceState.RUNNING,
    )
    assert sibling.snapshot().agreement_id != sibling_agreement
    assert cluster.escalated is None


def test_a_hung_provider_becomes_unresponsive_then_is_replaced(
    golem: tuple[Golem, list[Event]], localnet: LocalNet
) -> None:
    session, _ = golem
    cluster = session.run_service(Sleeper, 1, health_interval_s=1.0, policy=fast("Sleeper"))
    assert cluster.wait_running(timeout=60)
    handle = cluster.handles[0]
    victim = handle.snapshot().provider_name
    assert victim is not None
    seen: set[ServiceState] = set()
    localnet.set_faults(victim, hang=True)

    def replaced() -> bool:
        seen.add(handle.state)
        return restarted_on_another_provider(handle, victim)

    wait_for("a replacement after the hang", replaced)
    assert ServiceState.UNRESPONSIVE in seen or "unresponsive" in (
        handle.snapshot().last_exit or ""
    )


def test_a_provider_ending_the_agreement_is_replaced(
    golem: tuple[Golem, list[Event]], localnet: LocalNet
) -> None:
    session, events = golem
    cluster = session.run_service(Sleeper, 1, health_interval_s=1.0, policy=fast("Sleeper"))
    assert cluster.wait_running(timeout=60)
    handle = cluster.handles[0]
    victim = handle.snapshot().provider_name
    assert victim is not None
    localnet.set_faults(victim, terminate_after=0.5)
    wait_for(
        "a replacement after the provider ended it",
        lambda: restarted_on_another_provider(handle, victim),
    )
    # A provider ends an agreement by stopping its activities first, then terminating: the
    # instance may see either first (both end it; a CI run saw activity_gone win the race).
    last_exit = handle.snapshot().last_exit or ""
    assert last_exit.startswith(("agreement_terminated_by_provider", "activity_gone")), last_exit
    assert any(isinstance(e, AgreementTerminated) and e.by_provider for e in events)


def test_a_temporary_service_that_fails_to_start_is_not_restarted(
    golem: tuple[Golem, list[Event]],
) -> None:
    session, _ = golem
    cluster = session.run_service(FailsToStart, 1, health_interval_s=1.0)
    handle = cluster.handles[0]
    assert handle.wait_for(ServiceState.FAILED, ServiceState.TERMINATED, timeout=60)
    wait_for("the cluster to finish", cluster.state.finished.is_set)
    assert handle.restarts == 0
    assert cluster.escalated is None
    assert (
        "cannot start" in (handle.snapshot().last_exit or "") or handle.state is ServiceState.FAILED
    )


def test_too_many_failures_escalate(golem: tuple[Golem, list[Event]]) -> None:
    session, _ = golem
    policy = fast("AlwaysFails", intensity=RestartIntensity(max_restarts=2, period_s=60))
    cluster = session.run_service(AlwaysFails, 1, health_interval_s=1.0, policy=policy)
    wait_for("escalation", lambda: cluster.escalated is not None, timeout=90)
    assert "exceed the limit of 2" in (cluster.escalated or "")
    wait_for("the cluster to stop", cluster.state.finished.is_set)
    assert cluster.handles[0].restarts == 2


def test_shutdown_terminates_every_agreement_and_pays_every_invoice(
    localnet: LocalNet,
) -> None:
    config = ApiConfig(app_key=localnet.app_key, api_url=localnet.api_url)
    session = Golem(config=config, budget="5", settle_timeout_s=30)
    events: list[Event] = []
    session.start()
    assert session.rt is not None
    session.rt.events.subscribe(events.append)
    allocation_id = session.allocation.allocation_id if session.allocation else ""
    try:
        cluster = session.run_service(Sleeper, 2, health_interval_s=1.0)
        assert cluster.wait_running(timeout=60)
    finally:
        totals = session.stop()
    assert pykka.ActorRegistry.get_all() == []
    agreements = {e.agreement_id for e in events if isinstance(e, AgreementApproved)}
    paid = {e.agreement_id: e.amount for e in events if isinstance(e, InvoiceAccepted)}
    assert len(agreements) == 2
    assert set(paid) == agreements  # every agreement's invoice was accepted, once
    assert totals is not None
    assert totals.invoices == sum(paid.values(), Decimal(0))
    with YagnaClient(config) as client:
        for agreement_id in agreements:
            assert client.market.get_agreement(agreement_id).state == "Terminated"
        invoices = [i for i in client.payment.invoices() if i.agreement_id in agreements]
        assert {i.status for i in invoices} == {"ACCEPTED"}
        accepted_total = sum((i.amount for i in invoices), Decimal(0))
        allocation = next(
            (a for a in client.payment.allocations() if a.allocation_id == allocation_id), None
        )
    assert accepted_total == totals.invoices
    # yagna's own view of the budget agrees: spent = the invoices accepted; then it was released.
    assert session.final_allocation is not None
    assert session.final_allocation.spent_amount == accepted_total
    assert allocation is None
