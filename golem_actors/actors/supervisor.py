"""ClusterSupervisor: keeps N instances of one service running, restarting them elsewhere.

A thin loop around the pure ``policy.supervision.decide``: OTP strategies (one_for_one,
one_for_all), restart types, restart intensity with escalation, Akka-style backoff with jitter on
the shared timer, and a per-cluster provider blacklist with a TTL, so a replacement never lands
on the provider that just failed. Each restart is a new ``InstanceActor`` behind the instance's
stable ``ServiceHandle``.

``Scale`` changes the number of instances while the cluster runs: new ones are spawned (named
on from the highest index, with the first instance's params unless given others), the newest
ones are stopped cleanly (``shutdown`` runs, the agreement is terminated) and, once they have
exited, forgotten — the supervisor keeps the new count from then on, restarts included.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import pykka

from golem_actors.actors.base import ChildDied, RuntimeActor, handles
from golem_actors.actors.instance import InstanceActor, InstanceConfig, InstanceExited, StopInstance
from golem_actors.actors.market import ProviderFailed
from golem_actors.actors.runtime import Runtime
from golem_actors.events import InstanceRestarting, InstanceSpawned, SupervisorEscalated
from golem_actors.policy.lifecycle import ServiceState
from golem_actors.policy.supervision import Action, ExitReason, SupervisorPolicy, decide
from golem_actors.service import ServiceHandle

__all__ = [
    "ClusterState",
    "ClusterSupervisor",
    "InstanceStarter",
    "Scale",
    "StopCluster",
    "StopOne",
]

log = logging.getLogger(__name__)


@dataclass
class ClusterState:
    """What the (non-actor) caller watches: set once, by the supervisor, from its thread."""

    escalated: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)


class InstanceStarter(Protocol):
    """Starts one incarnation of an instance (``InstanceActor.start``; tests pass a stand-in)."""

    def __call__(
        self,
        rt: Runtime,
        parent: pykka.ActorRef[Any],
        *,
        config: InstanceConfig,
        handle: ServiceHandle,
        exclude: frozenset[str],
    ) -> pykka.ActorRef[Any]: ...


@dataclass(frozen=True)
class StopCluster:
    future: Future[None]


@dataclass(frozen=True)
class StopOne:
    instance: str


@dataclass(frozen=True)
class Scale:
    """Run ``count`` instances from now on; ``future`` gets the handles that remain."""

    count: int
    future: Future[list[ServiceHandle]]
    params: Mapping[str, Any] | None = None  # for new instances (default: the first one's)


@dataclass(frozen=True)
class _Restart:
    children: frozenset[str]


class ClusterSupervisor(RuntimeActor):
    role = "supervisor"

    def __init__(
        self,
        rt: Runtime,
        *,
        policy: SupervisorPolicy,
        config: InstanceConfig,
        instances: dict[str, ServiceHandle],
        params: dict[str, dict[str, Any]],
        state: ClusterState,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        start_instance: InstanceStarter = InstanceActor.start,
    ) -> None:
        super().__init__(rt, None)
        self.policy = policy
        self.config = config
        self.handles = instances
        self.params = params
        self.cluster = state
        self._clock = clock
        self._rand = rand
        self._start_instance = start_instance
        self._state = policy.initial_state(instances)
        self._named = len(instances)  # the index the next instance added by Scale is named with
        self._live: dict[str, pykka.ActorRef[Any]] = {}
        self._restart_due: set[str] = set()  # restart timer fired, waiting for the child's exit
        self._restarting: set[str] = set()  # stopped on purpose for a one_for_all restart
        self._stopped_for_good: set[str] = set()
        self._removing: set[str] = set()  # scaled down: stopping, then forgotten
        self._stopping: list[Future[None]] = []

    def started(self) -> None:
        for child in self.handles:
            self._spawn(child)

    def _spawn(self, child: str) -> None:
        now = self._clock()
        exclude = self._state.blacklist.active(now)
        config = replace(self.config, params=self.params[child])
        self._live[child] = self._start_instance(
            self.rt,
            self.actor_ref,
            config=config,
            handle=self.handles[child],
            exclude=exclude,
        )
        self._state = self._state.child_started(child, now)
        self.rt.emit(InstanceSpawned(service=self.policy.service, instance=child))

    # -- exits --------------------------------------------------------------------------------

    @handles(InstanceExited)
    def on_exit(self, exited: InstanceExited) -> None:
        child = exited.instance
        self._live.pop(child, None)
        if exited.provider_id and exited.reason.abnormal:
            self.config.market.tell(ProviderFailed(exited.provider_id))  # it sinks in the ranking
        if self._settled(child):
            return
        if child in self._restarting:
            self._restarting.discard(child)
            if child in self._restart_due:
                self._restart_due.discard(child)
                self._respawn(child, f"{exited.reason.value} (one_for_all)")
            return
        decision = decide(
            self.policy,
            self._state,
            child=child,
            reason=exited.reason,
            now=self._clock(),
            rand=self._rand,
            provider=exited.provider_id,
        )
        self._state = decision.state
        log.info("%s: %s", self.policy.service, decision.reason)
        if decision.action is Action.ESCALATE:
            self._escalate(decision.reason)
        elif decision.action is Action.STOP_CHILD:
            self._stopped_for_good.add(child)
            self._check_done()
        else:
            for other in decision.restart - {child} - self._removing:
                ref = self._live.get(other)
                if ref is not None:
                    self._restarting.add(other)
                    self.tell_if_alive(
                        ref, StopInstance(ExitReason.SHUTDOWN, f"one_for_all: {child} failed")
                    )
            for target in decision.restart - self._removing:
                self.handles[target].update(
                    last_exit=f"{exited.reason.value}: {exited.detail}"[:300]
                )
                self.rt.emit(
                    InstanceRestarting(
                        service=self.policy.service,
                        instance=target,
                        reason=exited.reason.value,
                        delay_seconds=decision.delay_s,
                        restarts=self.handles[target].restarts + 1,
                    )
                )
            self.after(decision.delay_s, _Restart(decision.restart), key=f"restart:{child}")

    def _settled(self, child: str) -> bool:
        """Whether an exit needs no restart decision: the instance was scaled down or stopped
        for good, or the cluster is stopping or escalated."""
        if child in self._removing:
            self._forget(child)
        elif not (self._stopping or self.cluster.escalated or child in self._stopped_for_good):
            return False  # ending anyway: no decision to make (nor escalate again)
        self._check_done()
        return True

    @handles(_Restart)
    def on_restart(self, message: _Restart) -> None:
        # A restart timer may outlive the stop it should yield to: once the cluster finished
        # (a stop completes and clears _stopping) or a child is stopped for good, it is void.
        if self._stopping or self.cluster.escalated or self.cluster.finished.is_set():
            return
        for child in message.children - self._stopped_for_good:
            if child not in self.handles or child in self._removing:
                continue  # scaled down meanwhile
            if child in self._live:  # still tearing down (one_for_all): restart on its exit
                self._restart_due.add(child)
                continue
            self._respawn(child, self.handles[child].snapshot().last_exit or "restart")

    def _respawn(self, child: str, last_exit: str) -> None:
        self.handles[child].new_incarnation(last_exit)
        self._spawn(child)

    @handles(ChildDied)
    def on_child_died(self, died: ChildDied) -> None:
        child = next((c for c, r in self._live.items() if r == died.ref), None)
        if child is None:
            return
        self.on_exit(InstanceExited(child, ExitReason.CRASH, repr(died.error), None, None))

    def _escalate(self, reason: str) -> None:
        log.error("%s", reason)
        self.cluster.escalated = reason
        self.rt.emit(SupervisorEscalated(service=self.policy.service, reason=reason))
        for ref in self._live.values():
            self.tell_if_alive(ref, StopInstance(ExitReason.SHUTDOWN, "the cluster escalated"))
        self._check_done()

    # -- requests -----------------------------------------------------------------------------

    @handles(StopOne)
    def on_stop_one(self, message: StopOne) -> None:
        self._stopped_for_good.add(message.instance)
        ref = self._live.get(message.instance)
        if ref is not None:
            self.tell_if_alive(ref, StopInstance())
        else:
            self._check_done()

    @handles(Scale)
    def on_scale(self, message: Scale) -> None:
        if self._stopping or self.cluster.escalated or self.cluster.finished.is_set():
            why = self.cluster.escalated or "it was stopped"
            message.future.set_exception(
                RuntimeError(f"cluster {self.policy.service} cannot scale: {why}")
            )
            return
        kept = [c for c in self.handles if c not in self._removing | self._stopped_for_good]
        for child in reversed(kept[message.count :]):  # the newest first
            self._removing.add(child)
            ref = self._live.get(child)
            if ref is None:  # between incarnations: nothing runs
                self._forget(child)
            else:
                self.tell_if_alive(ref, StopInstance(ExitReason.SHUTDOWN, "scaled down"))
        template = message.params if message.params is not None else self._first_params()
        for _ in range(message.count - len(kept)):
            child = self._new_child()
            self.handles[child] = ServiceHandle(self.policy.service, child, self._stop_one)
            self.params[child] = dict(template)
            self._spawn(child)
        log.info("%s: %d instances, now %d", self.policy.service, len(kept), message.count)
        message.future.set_result([h for c, h in self.handles.items() if c not in self._removing])

    def _first_params(self) -> dict[str, Any]:
        return dict(next(iter(self.params.values()), {}))

    def _new_child(self) -> str:
        """The next instance name: ``<service>-<n>``, never one used before in this cluster."""
        prefix = self.policy.service.lower()
        self._named = max(self._named, len(self.handles))
        while f"{prefix}-{self._named}" in self.handles:
            self._named += 1
        self._named += 1
        return f"{prefix}-{self._named - 1}"

    def _stop_one(self, instance: str) -> None:
        """``ServiceHandle.stop()`` of an instance added by ``Scale`` (any thread)."""
        with contextlib.suppress(pykka.ActorDeadError):  # stopped, and the instance with it
            self.actor_ref.tell(StopOne(instance))

    def _forget(self, child: str) -> None:
        self._removing.discard(child)
        self._restart_due.discard(child)
        self.cancel_timer(f"restart:{child}")
        handle = self.handles.pop(child)
        self.params.pop(child, None)
        self._state = self._state.child_removed(child)
        if handle.state.live:
            handle.update(state=ServiceState.TERMINATED)

    @handles(StopCluster)
    def on_stop_cluster(self, message: StopCluster) -> None:
        self._stopping.append(message.future)
        for ref in self._live.values():
            self.tell_if_alive(ref, StopInstance())
        self._check_done()

    def _check_done(self) -> None:
        if self._live:
            return
        stopped = (
            self._stopping or self.cluster.escalated or set(self.handles) <= self._stopped_for_good
        )
        if not stopped:
            return
        for handle in self.handles.values():
            if handle.state.live:
                handle.update(state=ServiceState.TERMINATED)
        self.cluster.finished.set()
        for future in self._stopping:
            if not future.done():
                future.set_result(None)
        self._stopping.clear()
