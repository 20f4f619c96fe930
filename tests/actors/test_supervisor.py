"""ClusterSupervisor alone: stand-in instances exit as the test says, and the supervisor's
restarts (one_for_one, one_for_all), escalation, backoff on the manual clock, provider
blacklisting and stops are checked from what it spawns, tells and emits."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import pykka
import pytest

from golem_actors.actors.base import RuntimeActor, handles
from golem_actors.actors.instance import InstanceConfig, InstanceExited, StopInstance
from golem_actors.actors.market import ProviderFailed
from golem_actors.actors.runtime import Runtime
from golem_actors.actors.supervisor import ClusterState, ClusterSupervisor, StopCluster, StopOne
from golem_actors.events import InstanceRestarting, InstanceSpawned, SupervisorEscalated
from golem_actors.policy.lifecycle import ServiceState
from golem_actors.policy.supervision import (
    Backoff,
    ExitReason,
    RestartIntensity,
    RestartType,
    Strategy,
    SupervisorPolicy,
)
from golem_actors.service import ServiceActor, ServiceHandle
from tests.actors.actor_harness import WAIT_S, Inbox, Mailbox, Rig, rig_running, settle

# min 1 s, doubling, capped at 4 s; jitter up to 20 % (rand() is 1.0 here: always the full 20 %)
BACKOFF = Backoff(min_s=1.0, max_s=4.0, factor=2.0, jitter=0.2, reset_after_s=10.0)


@dataclass(frozen=True)
class Exit:
    """Tells a stand-in instance to end the way a real one reports it."""

    reason: ExitReason
    provider: str | None = None
    detail: str = "told to"


@dataclass(frozen=True)
class Spawned:
    instance: str
    exclude: frozenset[str]
    ref: pykka.ActorRef[Any]
    params: dict[str, Any]


class FakeInstance(RuntimeActor):
    """An incarnation that does nothing until told: ``Exit`` ends it with that reason, and a
    ``StopInstance`` ends it at once (or, ``slow``, only on the next ``Exit``)."""

    role = "instance"

    def __init__(
        self, rt: Runtime, parent: pykka.ActorRef[Any], name: str, box: Mailbox, mode: str
    ) -> None:
        super().__init__(rt, parent)
        self.name = name
        self.box = box
        self.mode = mode

    def started(self) -> None:
        if self.mode == "crash":
            raise RuntimeError("cannot even start")

    @handles(StopInstance)
    def on_stop_instance(self, message: StopInstance) -> None:
        self.box.put((self.name, message))
        if self.mode != "slow":
            self.on_exit(Exit(message.reason, detail=message.detail))

    @handles(Exit)
    def on_exit(self, message: Exit) -> None:
        exited = InstanceExited(self.name, message.reason, message.detail, message.provider, None)
        self.tell_parent(exited)
        self.stop()


class Children:
    """The supervisor's ``start_instance``: records every spawn; ``modes`` scripts how the next
    incarnation of an instance behaves ("crash" in on_start, "slow" to stop)."""

    def __init__(self) -> None:
        self.spawns = Mailbox()
        self.told = Mailbox()  # (instance, StopInstance) as each incarnation got it
        self.modes: dict[str, list[str]] = {}

    def start(
        self,
        rt: Runtime,
        parent: pykka.ActorRef[Any],
        *,
        config: InstanceConfig,
        handle: ServiceHandle,
        exclude: frozenset[str],
    ) -> pykka.ActorRef[Any]:
        modes = self.modes.get(handle.instance, [])
        mode = modes.pop(0) if modes else "normal"
        ref = FakeInstance.start(rt, parent, handle.instance, self.told, mode)
        self.spawns.put(Spawned(handle.instance, exclude, ref, config.params))
        return ref

    def of(self, instance: str) -> list[Spawned]:
        return [s for s in self.spawns.of(Spawned) if s.instance == instance]

    def live(self, instance: str) -> Spawned:
        return self.of(instance)[-1]

    def wait(self, instance: str, count: int) -> Spawned:
        return self.spawns.wait(Spawned, lambda s: s.instance == instance, count=count)[-1]


class Cluster:
    """A ClusterSupervisor of ``size`` instances on the manual clock, its market an Inbox."""

    def __init__(self, rig: Rig, *, size: int = 2, **policy: Any) -> None:
        self.rig = rig
        self.children = Children()
        self.market, self.market_box = Inbox.open()
        self.state = ClusterState()
        self.handles = {f"svc-{i}": ServiceHandle("svc", f"svc-{i}") for i in range(size)}
        self.policy = SupervisorPolicy(
            service="svc",
            backoff=policy.pop("backoff", BACKOFF),
            intensity=policy.pop("intensity", RestartIntensity(max_restarts=10, period_s=60.0)),
            **policy,
        )
        self.config = InstanceConfig(
            service_cls=ServiceActor,
            params={},
            demand_key="svc:1",
            market=self.market,
            agreement_events=self.market,
            payments=self.market,
            storage=None,
        )
        self.ref: pykka.ActorRef[Any] | None = None

    def start(self, *, real_instances: bool = False) -> None:
        """Start the supervisor (with stand-in instances unless ``real_instances``)."""
        starter = {} if real_instances else {"start_instance": self.children.start}
        self.ref = ClusterSupervisor.start(
            self.rig.rt,
            policy=self.policy,
            config=self.config,
            instances=self.handles,
            params={name: {"n": name} for name in self.handles},
            state=self.state,
            clock=self.rig.clock.now,
            rand=lambda: 1.0,
            **starter,
        )
        if not real_instances:
            for name in self.handles:
                self.children.wait(name, 1)

    @property
    def supervisor(self) -> pykka.ActorRef[Any]:
        assert self.ref is not None
        return self.ref

    def fail(
        self, instance: str, reason: ExitReason = ExitReason.RUN_FAILED, provider: str | None = None
    ) -> None:
        """End the live incarnation of ``instance`` as it would end itself."""
        spawned = self.children.live(instance)
        spawned.ref.tell(Exit(reason, provider))
        assert spawned.ref.actor_stopped.wait(WAIT_S)

    def restart_due(self, instance: str) -> None:
        self.rig.wait_timer(self.supervisor, f"restart:{instance}")

    def spawned(self, instance: str) -> int:
        return len(self.children.of(instance))


@pytest.fixture
def rig() -> Iterator[Rig]:
    with rig_running() as rig:
        yield rig


def restarts(rig: Rig) -> list[tuple[str, str, float, int]]:
    return [
        (e.instance, e.reason, round(e.delay_seconds, 6), e.restarts)
        for e in rig.events(InstanceRestarting)
    ]


# -- strategies -------------------------------------------------------------------------------


def test_one_for_one_restarts_only_the_failed_child_away_from_its_provider(rig):
    cluster = Cluster(rig)
    cluster.start()
    assert [e.instance for e in rig.events(InstanceSpawned)] == ["svc-0", "svc-1"]
    other = cluster.children.live("svc-1")
    cluster.fail("svc-0", provider="0xbad")
    cluster.restart_due("svc-0")
    assert cluster.market_box.one(ProviderFailed) == ProviderFailed("0xbad")  # it sinks
    assert restarts(rig) == [("svc-0", "run_failed", 1.2, 1)]
    assert rig.advance(1.19) == 0
    assert rig.advance(0.02) == 1
    again = cluster.children.wait("svc-0", 2)
    assert again.exclude == {"0xbad"}  # blacklisted for this cluster
    assert again.params == {"n": "svc-0"}
    snapshot = cluster.handles["svc-0"].snapshot()
    assert snapshot.restarts == 1
    assert snapshot.last_exit == "run_failed: told to"
    settle(cluster.supervisor)
    assert cluster.spawned("svc-1") == 1
    assert other.ref.is_alive()
    assert cluster.children.told.of(tuple) == []  # nobody else was stopped


@pytest.mark.parametrize("late", [False, True], ids=["others-stop-first", "others-stop-late"])
def test_one_for_all_restarts_every_child_together(rig, late):
    cluster = Cluster(rig, strategy=Strategy.ONE_FOR_ALL)
    if late:
        cluster.children.modes["svc-1"] = ["slow"]  # still tearing down when the timer fires
    cluster.start()
    other = cluster.children.live("svc-1")
    cluster.fail("svc-0", provider="0xbad")
    told = cluster.children.told.one(tuple)
    assert told == ("svc-1", StopInstance(ExitReason.SHUTDOWN, "one_for_all: svc-0 failed"))
    cluster.restart_due("svc-0")
    assert sorted(restarts(rig)) == [
        ("svc-0", "run_failed", 1.2, 1),
        ("svc-1", "run_failed", 1.2, 1),
    ]
    if not late:
        assert other.ref.actor_stopped.wait(WAIT_S)
    assert rig.advance(1.2) == 1
    first = cluster.children.wait("svc-0", 2)
    assert first.exclude == {"0xbad"}
    if late:
        settle(cluster.supervisor)
        assert cluster.spawned("svc-1") == 1  # never two incarnations at once
        other.ref.tell(Exit(ExitReason.SHUTDOWN))
    second = cluster.children.wait("svc-1", 2)
    assert second.exclude == {"0xbad"}
    assert [h.restarts for h in cluster.handles.values()] == [1, 1]


@pytest.mark.parametrize(
    ("reason", "restarted"),
    [(ExitReason.NORMAL, False), (ExitReason.SHUTDOWN, False), (ExitReason.RUN_FAILED, True)],
)
def test_a_transient_child_is_restarted_only_after_a_failure(rig, reason, restarted):
    cluster = Cluster(rig, size=1, restart_type=RestartType.TRANSIENT)
    cluster.start()
    cluster.fail("svc-0", reason, provider="0xp")
    if restarted:
        cluster.restart_due("svc-0")
        rig.advance(1.2)
        assert cluster.children.wait("svc-0", 2).exclude == {"0xp"}
        assert cluster.market_box.one(ProviderFailed).provider_id == "0xp"
    else:
        assert cluster.state.finished.wait(WAIT_S)  # its only child is done: so is the cluster
        rig.advance(60)
        settle(cluster.supervisor)
        settle(cluster.market)
        assert cluster.spawned("svc-0") == 1
        assert rig.events(InstanceRestarting) == []
        assert cluster.market_box.of(ProviderFailed) == []  # a normal end is no fault
        assert cluster.handles["svc-0"].state is ServiceState.TERMINATED


# -- intensity and backoff --------------------------------------------------------------------


def test_too_many_restarts_in_the_window_escalate_and_stop_the_cluster(rig):
    cluster = Cluster(rig, intensity=RestartIntensity(max_restarts=2, period_s=60.0))
    cluster.children.modes["svc-1"] = ["slow"]
    cluster.start()
    for incarnation in (1, 2):
        cluster.fail("svc-0")
        cluster.restart_due("svc-0")
        rig.advance(4.8)
        cluster.children.wait("svc-0", incarnation + 1)
    cluster.fail("svc-0")  # the third restart within 60 s
    escalated = rig.wait_event(SupervisorEscalated)
    assert "3 restarts within 60 s exceed the limit of 2" in escalated.reason
    assert cluster.state.escalated == escalated.reason
    told = cluster.children.told.one(tuple)
    assert told == ("svc-1", StopInstance(ExitReason.SHUTDOWN, "the cluster escalated"))
    assert not cluster.state.finished.is_set()  # svc-1 is still tearing down
    cluster.children.live("svc-1").ref.tell(Exit(ExitReason.SHUTDOWN))
    assert cluster.state.finished.wait(WAIT_S)
    rig.advance(60)
    settle(cluster.supervisor)
    assert len(rig.events(SupervisorEscalated)) == 1  # once, not again per child that ends
    assert cluster.spawned("svc-0") == 3
    assert cluster.spawned("svc-1") == 1
    assert all(h.state is ServiceState.TERMINATED for h in cluster.handles.values())


def test_restarts_further_apart_than_the_window_never_escalate(rig):
    cluster = Cluster(rig, size=1, intensity=RestartIntensity(max_restarts=2, period_s=60.0))
    cluster.start()
    for incarnation in range(1, 6):
        cluster.fail("svc-0")
        cluster.restart_due("svc-0")
        rig.advance(30.0)  # the backoff, then a while running
        cluster.children.wait("svc-0", incarnation + 1)
    assert cluster.state.escalated is None
    assert rig.events(SupervisorEscalated) == []


def test_backoff_doubles_on_the_clock_up_to_its_cap_and_resets_after_a_stable_run(rig):
    cluster = Cluster(rig, size=1)
    cluster.start()
    for incarnation, delay in enumerate([1.2, 2.4, 4.8, 4.8], start=2):
        cluster.fail("svc-0")
        cluster.restart_due("svc-0")
        assert rig.advance(delay - 0.01) == 0  # not early
        assert rig.advance(0.02) == 1
        cluster.children.wait("svc-0", incarnation)
    rig.advance(10.0)  # a stable run (reset_after_s) ...
    cluster.fail("svc-0")
    cluster.restart_due("svc-0")
    assert [d for _, _, d, _ in restarts(rig)] == [1.2, 2.4, 4.8, 4.8, 1.2]  # ... starts over


# -- deaths and stops -------------------------------------------------------------------------


def test_a_child_dying_in_on_start_is_reported_and_replaced(rig):
    cluster = Cluster(rig, size=1)
    cluster.children.modes["svc-0"] = ["crash"]
    cluster.start()
    cluster.restart_due("svc-0")
    assert restarts(rig) == [("svc-0", "crash", 1.2, 1)]
    assert "cannot even start" in (cluster.handles["svc-0"].snapshot().last_exit or "")
    assert rig.rt.stats.failures["instance", "start"] == 1
    rig.advance(1.2)
    replacement = cluster.children.wait("svc-0", 2)
    assert replacement.ref.is_alive()


class Unbuildable(ServiceActor):
    def __init__(self, **params: Any) -> None:
        raise ValueError(f"bad params {params}")


def test_a_real_instance_dying_in_on_start_is_reported(rig):
    cluster = Cluster(rig, size=1, restart_type=RestartType.TEMPORARY)
    cluster.config = replace(cluster.config, service_cls=Unbuildable)
    cluster.start(real_instances=True)
    assert cluster.state.finished.wait(WAIT_S)  # temporary: not restarted, and it was the last
    assert rig.rt.stats.failures["instance", "start"] == 1
    assert [e.instance for e in rig.events(InstanceSpawned)] == ["svc-0"]
    assert rig.events(InstanceRestarting) == []
    assert cluster.handles["svc-0"].state is ServiceState.TERMINATED


def test_stopping_the_cluster_stops_every_child_and_restarts_none(rig):
    cluster = Cluster(rig)
    cluster.start()
    done: Future[None] = Future()
    cluster.supervisor.tell(StopCluster(done))
    done.result(timeout=WAIT_S)
    told = sorted(cluster.children.told.wait(tuple, count=2))
    assert told == [("svc-0", StopInstance()), ("svc-1", StopInstance())]
    assert cluster.state.finished.is_set()
    rig.advance(60)
    settle(cluster.supervisor)
    assert rig.events(InstanceRestarting) == []
    assert [len(cluster.children.of(name)) for name in cluster.handles] == [1, 1]
    assert all(h.state is ServiceState.TERMINATED for h in cluster.handles.values())


def test_a_restart_pending_when_the_cluster_stops_never_happens(rig):
    cluster = Cluster(rig, size=3)
    cluster.start()
    cluster.fail("svc-0")
    cluster.restart_due("svc-0")
    done: Future[None] = Future()
    cluster.supervisor.tell(StopCluster(done))
    done.result(timeout=WAIT_S)
    assert cluster.state.finished.is_set()
    assert rig.advance(60) == 1  # the pending restart fires ...
    settle(cluster.supervisor)
    assert [len(cluster.children.of(name)) for name in cluster.handles] == [1, 1, 1]  # ... idle
    assert all(h.state is ServiceState.TERMINATED for h in cluster.handles.values())


def test_a_restart_pending_when_its_instance_is_stopped_for_good_never_happens(rig):
    cluster = Cluster(rig)
    cluster.start()
    cluster.fail("svc-0")
    cluster.restart_due("svc-0")
    cluster.supervisor.tell(StopOne("svc-0"))
    assert rig.advance(60) == 1
    settle(cluster.supervisor)
    assert cluster.spawned("svc-0") == 1
    assert cluster.handles["svc-0"].restarts == 0


def test_stopping_one_instance_leaves_the_rest_supervised(rig):
    cluster = Cluster(rig)
    cluster.start()
    cluster.supervisor.tell(StopOne("svc-0"))
    assert cluster.children.told.one(tuple) == ("svc-0", StopInstance())
    assert cluster.children.live("svc-0").ref.actor_stopped.wait(WAIT_S)
    cluster.fail("svc-1")  # the other one is still restarted
    cluster.restart_due("svc-1")
    rig.advance(60)
    cluster.children.wait("svc-1", 2)
    settle(cluster.supervisor)
    assert cluster.spawned("svc-0") == 1
    assert not cluster.state.finished.is_set()
    assert cluster.handles["svc-0"].state is not ServiceState.RUNNING
