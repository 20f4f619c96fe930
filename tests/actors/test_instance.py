"""InstanceActor alone: a stand-in market grants providers, yagna is scripted, the service's
code is a script the test steps through. Its life — pending → starting → running → stopping →
terminated — and a failure in each phase, with the exit reason its supervisor gets, the
provider named for blacklisting, and the cleanup (activity destroyed, agreement ended, payments
and market told)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from golem_actors.actors.agreement import AgreementEventsActor
from golem_actors.actors.context import WorkContext
from golem_actors.actors.instance import InstanceActor, InstanceConfig, InstanceExited, StopInstance
from golem_actors.actors.market import (
    CancelRequest,
    ProposalGranted,
    ProviderFailed,
    ReleaseProvider,
    RequestProposal,
)
from golem_actors.actors.supervisor import ClusterState, ClusterSupervisor
from golem_actors.events import InstanceStateChanged
from golem_actors.payments.messages import (
    AgreementClosed,
    RegisterActivity,
    RegisterAgreement,
)
from golem_actors.policy.lifecycle import ALLOWED, ServiceState
from golem_actors.policy.supervision import Backoff, ExitReason, SupervisorPolicy
from golem_actors.service import ServiceActor, ServiceHandle
from golem_actors.yagna.models import Proposal
from tests.actors.actor_harness import (
    AGREEMENTS,
    WAIT_S,
    Inbox,
    Mailbox,
    Rig,
    agreement_terminated,
    rig_running,
    script_agreement,
    settle,
)

AG = AGREEMENTS
ACT = "/activity-api/v1/activity"
HEALTH_S = 5.0
PENDING_S = 300.0
SHUTDOWN_S = 30.0


class Script:
    """What the service's code does, phase by phase; the test holds and releases phases."""

    def __init__(self) -> None:
        self.entered = Mailbox()  # the phases the service's code entered, in order
        self.held: dict[str, threading.Event] = {}
        self.raises: dict[str, BaseException] = {}
        self.run_returns = False

    def hold(self, phase: str) -> None:
        self.held[phase] = threading.Event()

    def release(self, phase: str) -> None:
        self.held[phase].set()

    def step(self, phase: str, ctx: WorkContext) -> None:
        self.entered.put((phase, ctx.provider_id, ctx.agreement_id, ctx.activity_id))
        if phase in self.held:
            assert self.held[phase].wait(WAIT_S), f"{phase} was never released"
        if phase in self.raises:
            raise self.raises[phase]

    def phases(self) -> list[str]:
        return [entered[0] for entered in self.entered.of(tuple)]


class Scripted(ServiceActor):
    def start(self, ctx: WorkContext) -> None:
        self.params["script"].step("start", ctx)

    def run(self, ctx: WorkContext) -> None:
        script: Script = self.params["script"]
        script.step("run", ctx)
        if not script.run_returns:
            ctx.wait_until_stopped()

    def shutdown(self, ctx: WorkContext) -> None:
        self.params["script"].step("shutdown", ctx)


class Market:
    """Grants each request the next provider of its list (none left: the request waits)."""

    def __init__(self, *providers: str) -> None:
        self.providers = list(providers)
        self.ref, self.box = Inbox.open(self._answer)

    def _answer(self, message: Any) -> None:
        if isinstance(message, RequestProposal) and self.providers:
            provider = self.providers.pop(0)
            draft = Proposal({}, "", f"draft-{provider}", provider, "Draft")
            grant = ProposalGranted(message.request_id, draft, provider, f"name-{provider}", {})
            message.reply_to.tell(grant)


def activity_state(state: str) -> dict[str, Any]:
    return {"state": [state, None]}


@pytest.fixture
def rig() -> Iterator[Rig]:
    with rig_running() as rig:
        script_agreement(rig, "0xp1")
        rig.route("POST", ACT, status=201, json={"activityId": "act-1"})
        rig.route("DELETE", f"{ACT}/act-1", status=204)
        rig.route("GET", f"{ACT}/act-1/state", json=activity_state("Ready"))
        yield rig


class Instance:
    """One InstanceActor with its peers: market, payments, agreement events, its supervisor."""

    def __init__(
        self,
        rig: Rig,
        providers: tuple[str, ...] = ("0xp1",),
        *,
        events: pykka.ActorRef[Any] | None = None,
        script: Script | None = None,
    ) -> None:
        self.rig = rig
        self.script = script or Script()
        self.market = Market(*providers)
        self.payments, self.paid = Inbox.open()
        self.events, _ = Inbox.open()
        self.parent, self.box = Inbox.open()
        self.handle = ServiceHandle("svc", "svc-0")
        self.config = InstanceConfig(
            service_cls=Scripted,
            params={"script": self.script},
            demand_key="svc:1",
            market=self.market.ref,
            agreement_events=events or self.events,
            payments=self.payments,
            storage=None,
            health_interval_s=HEALTH_S,
            health_misses=2,
            pending_timeout_s=PENDING_S,
            shutdown_timeout_s=SHUTDOWN_S,
            max_agreement_attempts=2,
        )
        self.ref: pykka.ActorRef[Any] | None = None

    def start(self) -> Instance:
        self.ref = InstanceActor.start(
            self.rig.rt, self.parent, config=self.config, handle=self.handle, exclude=frozenset()
        )
        return self

    @property
    def actor(self) -> pykka.ActorRef[Any]:
        assert self.ref is not None
        return self.ref

    def exited(self) -> InstanceExited:
        return self.box.one(InstanceExited)

    def stopped(self) -> bool:
        return self.actor.actor_stopped.wait(WAIT_S)

    def reach(self, state: ServiceState) -> None:
        assert self.handle.wait_for(state, timeout=WAIT_S), f"never {state.value}"

    def running(self) -> Instance:
        self.start()
        self.reach(ServiceState.RUNNING)
        self.script.entered.wait(tuple, lambda e: e[0] == "run")
        return self

    def states(self) -> list[str]:
        states = [e.new for e in self.rig.events(InstanceStateChanged)]
        return ["pending", *states]

    def terminate_codes(self) -> list[str]:
        return [
            c.body["golem.requestor.code"] for c in self.rig.calls("POST", f"{AG}/ag-1/terminate")
        ]


def legal(states: list[str]) -> bool:
    """Every move is one the lifecycle table allows."""
    moves = itertools.pairwise(states)
    return all(ServiceState(new) in ALLOWED[ServiceState(old)] for old, new in moves)


# -- the whole life ---------------------------------------------------------------------------


def test_an_instance_lives_pending_starting_running_stopping_terminated(rig):
    script = Script()
    for phase in ("start", "shutdown"):
        script.hold(phase)
    instance = Instance(rig, script=script).start()
    instance.reach(ServiceState.STARTING)
    assert script.entered.one(tuple) == ("start", "0xp1", "ag-1", "act-1")
    snapshot = instance.handle.snapshot()
    assert (snapshot.provider_id, snapshot.agreement_id, snapshot.activity_id) == (
        "0xp1",
        "ag-1",
        "act-1",
    )
    script.release("start")
    instance.reach(ServiceState.RUNNING)
    script.entered.wait(tuple, lambda e: e[0] == "run")
    instance.actor.tell(StopInstance())
    instance.reach(ServiceState.STOPPING)
    script.entered.wait(tuple, lambda e: e[0] == "shutdown")
    assert rig.calls("DELETE", f"{ACT}/act-1") == []  # shutdown() may still use the activity
    script.release("shutdown")
    exited = instance.exited()
    assert exited == InstanceExited("svc-0", ExitReason.SHUTDOWN, "stopped", "0xp1", "ag-1")
    assert instance.stopped()
    assert instance.handle.state is ServiceState.TERMINATED
    assert instance.states() == ["pending", "starting", "running", "stopping", "terminated"]
    assert legal(instance.states())
    assert script.phases() == ["start", "run", "shutdown"]
    # Cleaned up: activity destroyed, agreement terminated as a success, books closed.
    assert len(rig.calls("DELETE", f"{ACT}/act-1")) == 1
    assert instance.terminate_codes() == ["Success"]
    assert rig.calls("POST", ACT)[0].body == {"agreementId": "ag-1"}
    settle(instance.payments)
    assert [type(m) for m in instance.paid.of(object)] == [
        RegisterAgreement,
        RegisterActivity,
        AgreementClosed,
    ]
    assert instance.paid.one(AgreementClosed) == AgreementClosed("ag-1", expect_invoice=True)
    settle(instance.market.ref)
    [asked] = instance.market.box.of(RequestProposal)
    assert (asked.key, asked.group, asked.exclude) == ("svc:1", "svc", frozenset())
    assert instance.market.box.of(ReleaseProvider) == [ReleaseProvider("svc", "0xp1")]
    assert len(instance.market.box.of(CancelRequest)) == 1
    assert instance.market.box.of(ProviderFailed) == []


def test_run_returning_ends_the_instance_normally_through_shutdown(rig):
    script = Script()
    script.run_returns = True
    instance = Instance(rig, script=script).start()
    exited = instance.exited()
    assert (exited.reason, exited.detail) == (ExitReason.NORMAL, "run() returned")
    assert instance.stopped()
    assert script.phases() == ["start", "run", "shutdown"]
    assert instance.states()[-2:] == ["stopping", "terminated"]
    assert instance.terminate_codes() == ["Success"]


# -- failures, phase by phase -----------------------------------------------------------------


def failed(instance: Instance, reason: ExitReason, provider: str | None = "0xp1") -> str:
    """The instance ended for ``reason``, reported ``provider`` (to blacklist), went to
    failed by legal moves, and cleaned up; returns the exit's detail."""
    exited = instance.exited()
    assert exited.reason is reason
    assert exited.reason.abnormal
    assert exited.provider_id == provider
    assert instance.stopped()
    assert instance.states()[-1] == "failed"
    assert legal(instance.states())
    assert instance.handle.state is ServiceState.FAILED
    settle(instance.market.ref)
    released = instance.market.box.of(ReleaseProvider)
    assert len(released) == len(set(released))  # each grant given back once
    if provider is not None:
        assert ReleaseProvider("svc", provider) in released
    return exited.detail


def test_pending_without_any_provider_ends_at_its_deadline_on_the_clock(rig):
    instance = Instance(rig, providers=()).start()  # the market never grants anything
    rig.wait_timer(instance.actor, "pending")
    assert rig.advance(PENDING_S - 1) == 0
    rig.advance(1)
    detail = failed(instance, ExitReason.AGREEMENT_FAILED, provider=None)
    assert detail == f"no provider offered a usable proposal in {PENDING_S:g} s"
    assert rig.yagna.calls == []  # never got as far as yagna
    assert len(instance.market.box.of(CancelRequest)) == 1


def test_a_failed_agreement_is_retried_on_another_provider(rig):
    rig.route("POST", AG, status=400, json={"message": "draft expired"}, times=1)
    instance = Instance(rig, ("0xp1", "0xp2")).running()
    settle(instance.market.ref)
    first, second = instance.market.box.of(RequestProposal)
    assert (first.exclude, second.exclude) == (frozenset(), frozenset({"0xp1"}))
    assert instance.market.box.of(ProviderFailed) == [ProviderFailed("0xp1")]
    assert instance.market.box.of(ReleaseProvider) == [ReleaseProvider("svc", "0xp1")]
    assert instance.handle.provider_id == "0xp2"


def test_no_agreement_after_every_attempt_ends_the_instance(rig):
    rig.route("POST", AG, status=400, json={"message": "draft expired"})
    instance = Instance(rig, ("0xp1", "0xp2")).start()
    detail = failed(instance, ExitReason.AGREEMENT_FAILED, provider="0xp2")
    assert detail.startswith("2 attempts failed")
    assert instance.market.box.of(ProviderFailed) == [
        ProviderFailed("0xp1"),
        ProviderFailed("0xp2"),
    ]


def test_an_activity_that_cannot_be_created_ends_the_instance(rig):
    rig.route("POST", ACT, status=400, json={"message": "exe-unit crashed"})
    instance = Instance(rig).start()
    detail = failed(instance, ExitReason.ACTIVITY_GONE)
    assert "exe-unit crashed" in detail
    assert instance.script.phases() == []
    assert instance.terminate_codes() == ["Cancelled"]  # a fault: the agreement is cancelled
    assert instance.paid.one(AgreementClosed) == AgreementClosed("ag-1", expect_invoice=False)


def test_start_raising_ends_the_instance_without_shutdown(rig):
    script = Script()
    script.raises["start"] = RuntimeError("no disk")
    instance = Instance(rig, script=script).start()
    detail = failed(instance, ExitReason.START_FAILED)
    assert detail == "start() raised RuntimeError: no disk"
    assert instance.states() == ["pending", "starting", "failed"]
    assert script.phases() == ["start"]  # no run, and no shutdown after a failure
    assert len(rig.calls("DELETE", f"{ACT}/act-1")) == 1
    assert instance.terminate_codes() == ["Cancelled"]


def test_run_raising_ends_the_instance(rig):
    script = Script()
    script.raises["run"] = ValueError("bad input")
    instance = Instance(rig, script=script).start()
    detail = failed(instance, ExitReason.RUN_FAILED)
    assert detail == "run() raised ValueError: bad input"
    assert instance.states() == ["pending", "starting", "running", "failed"]
    assert script.phases() == ["start", "run"]


def test_missed_health_checks_end_the_instance_on_the_clock(rig):
    rig.route("GET", f"{ACT}/act-1/state", json=activity_state("Unresponsive"))
    instance = Instance(rig).running()
    rig.wait_timer(instance.actor, "health")
    rig.advance(HEALTH_S)
    instance.reach(ServiceState.UNRESPONSIVE)
    settle(instance.parent)
    assert instance.box.of(InstanceExited) == []  # one miss is not yet the end
    rig.advance(HEALTH_S)
    detail = failed(instance, ExitReason.UNRESPONSIVE)
    assert detail.startswith("2 health checks missed")
    assert instance.states() == ["pending", "starting", "running", "unresponsive", "failed"]
    # A provider that hangs may never invoice: settling does not wait for it.
    assert instance.paid.one(AgreementClosed) == AgreementClosed("ag-1", expect_invoice=False)


def test_a_missed_health_check_followed_by_a_good_one_recovers(rig):
    rig.route("GET", f"{ACT}/act-1/state", json=activity_state("Unresponsive"), times=1)
    instance = Instance(rig).running()
    rig.wait_timer(instance.actor, "health")
    rig.advance(HEALTH_S)
    instance.reach(ServiceState.UNRESPONSIVE)
    rig.advance(HEALTH_S)
    instance.reach(ServiceState.RUNNING)
    rig.advance(HEALTH_S)
    settle(instance.actor)
    settle(instance.parent)
    assert instance.box.of(InstanceExited) == []
    assert legal(instance.states())


def test_an_activity_gone_ends_the_instance(rig):
    rig.route("GET", f"{ACT}/act-1/state", status=404, json={"message": "no such activity"})
    instance = Instance(rig).running()
    rig.wait_timer(instance.actor, "health")
    rig.advance(HEALTH_S)
    detail = failed(instance, ExitReason.ACTIVITY_GONE)
    assert "no such activity" in detail


def test_the_provider_terminating_the_agreement_ends_the_instance(rig):
    poll = rig.long_poll("/market-api/v1/agreementEvents")
    events = AgreementEventsActor.start(rig.rt, poll_s=3.0)
    instance = Instance(rig, events=events).running()
    poll.push(agreement_terminated("ag-1", "maintenance"))
    detail = failed(instance, ExitReason.AGREEMENT_TERMINATED_BY_PROVIDER)
    assert detail == "maintenance"
    assert instance.terminate_codes() == []  # already over: not terminated again
    assert len(rig.calls("DELETE", f"{ACT}/act-1")) == 1
    # A provider that ended it is alive and invoices: that invoice is waited for.
    assert instance.paid.one(AgreementClosed) == AgreementClosed("ag-1", expect_invoice=True)


# -- stopping ---------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["raises", "hangs"])
def test_a_shutdown_that_fails_or_hangs_still_terminates(rig, how):
    script = Script()
    if how == "raises":
        script.raises["shutdown"] = RuntimeError("cannot flush")
    else:
        script.hold("shutdown")
    instance = Instance(rig, script=script).running()
    instance.actor.tell(StopInstance())
    script.entered.wait(tuple, lambda e: e[0] == "shutdown")
    if how == "hangs":
        rig.wait_timer(instance.actor, "shutdown")
        rig.advance(SHUTDOWN_S)
    exited = instance.exited()
    assert (exited.reason, exited.provider_id) == (ExitReason.SHUTDOWN, "0xp1")
    assert instance.stopped()
    assert instance.states()[-2:] == ["stopping", "terminated"]
    assert instance.terminate_codes() == ["Success"]
    assert len(rig.calls("DELETE", f"{ACT}/act-1")) == 1
    if how == "hangs":
        script.release("shutdown")


def test_stopping_a_pending_instance_leaves_nothing_behind(rig):
    instance = Instance(rig, providers=()).start()
    instance.actor.tell(StopInstance())
    exited = instance.exited()
    assert (exited.reason, exited.provider_id, exited.agreement_id) == (
        ExitReason.SHUTDOWN,
        None,
        None,
    )
    assert instance.stopped()
    assert instance.handle.state is ServiceState.TERMINATED
    assert instance.states() == ["pending", "stopping", "terminated"]
    assert rig.yagna.calls == []


def test_stopping_an_instance_while_it_starts_tears_it_down_without_shutdown(rig):
    script = Script()
    script.hold("start")
    instance = Instance(rig, script=script).start()
    instance.reach(ServiceState.STARTING)
    instance.actor.tell(StopInstance())
    exited = instance.exited()
    script.release("start")
    assert (exited.reason, exited.provider_id) == (ExitReason.SHUTDOWN, "0xp1")
    assert instance.stopped()
    assert instance.states() == ["pending", "starting", "stopping", "terminated"]
    assert script.phases() == ["start"]  # shutdown() is for a service that started
    assert instance.terminate_codes() == ["Success"]
    assert len(rig.calls("DELETE", f"{ACT}/act-1")) == 1


# -- with its supervisor ----------------------------------------------------------------------


def test_a_failed_instance_is_replaced_on_a_provider_other_than_the_one_it_failed_on(rig):
    script = Script()
    script.raises["start"] = RuntimeError("no disk")
    instance = Instance(rig, ("0xp1", "0xp2"), script=script)
    state = ClusterState()
    policy = SupervisorPolicy(service="svc", backoff=Backoff(min_s=1.0, max_s=1.0, jitter=0.0))
    supervisor = ClusterSupervisor.start(
        rig.rt,
        policy=policy,
        config=instance.config,
        instances={"svc-0": instance.handle},
        params={"svc-0": {"script": script}},
        state=state,
        clock=rig.clock.now,
    )
    instance.market.box.wait(ProviderFailed)
    rig.wait_timer(supervisor, "restart:svc-0")
    del script.raises["start"]
    rig.advance(1.0)
    assert instance.handle.wait_for(ServiceState.RUNNING, timeout=WAIT_S)
    settle(instance.market.ref)
    first, second = instance.market.box.of(RequestProposal)
    assert (first.exclude, second.exclude) == (frozenset(), frozenset({"0xp1"}))
    snapshot = instance.handle.snapshot()
    assert (snapshot.provider_id, snapshot.restarts) == ("0xp2", 1)
    assert snapshot.last_exit is not None
    assert snapshot.last_exit.startswith("start_failed: start() raised RuntimeError: no disk")
