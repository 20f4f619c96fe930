"""InstanceActor: one incarnation of one service instance, from proposal to teardown.

pending (proposal → agreement → activity) → starting (the user's ``start``) → running (``run``,
health checks) ⇄ unresponsive → stopping (the user's ``shutdown``) → terminated, or failed.
Whatever ends it — the user's code raising, the activity gone, K missed health checks, the
provider terminating the agreement, a stop — it cleans up (activity destroyed, agreement
terminated) and tells its supervisor ``InstanceExited`` with a closed-set reason. A restart is a
new InstanceActor behind the same ``ServiceHandle``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pykka

from golem_actors.actors.activity import ActivityGoneError, CheckHealth, HealthReport
from golem_actors.actors.base import handles
from golem_actors.actors.context import InstanceStoppingError, WorkContext
from golem_actors.actors.io import IoResult
from golem_actors.actors.lease import LeaseActor, LeaseLoss
from golem_actors.actors.runtime import Runtime
from golem_actors.events import InstanceStateChanged
from golem_actors.exescript import CommandFailedError
from golem_actors.output import log_output
from golem_actors.policy.lifecycle import ServiceState
from golem_actors.policy.supervision import ExitReason
from golem_actors.service import ServiceActor, ServiceHandle
from golem_actors.storage.http import Storage

__all__ = ["InstanceActor", "InstanceConfig", "InstanceExited", "StopInstance"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InstanceConfig:
    """How one incarnation behaves; shared by the cluster's instances."""

    service_cls: type[ServiceActor]
    params: dict[str, Any]
    demand_key: str
    market: pykka.ActorRef[Any]
    agreement_events: pykka.ActorRef[Any]
    payments: pykka.ActorRef[Any]
    storage: Storage | None
    health_interval_s: float = 5.0
    health_misses: int = 2  # consecutive misses that end the instance (the first: unresponsive)
    start_timeout_s: float = 300.0
    shutdown_timeout_s: float = 30.0
    teardown_timeout_s: float = 20.0
    max_agreement_attempts: int = 5
    pending_timeout_s: float = 300.0  # no provider at all for this long ends the incarnation
    stream_output: bool = False  # every command's output, as it comes, to the log


@dataclass(frozen=True)
class InstanceExited:
    instance: str
    reason: ExitReason
    detail: str
    provider_id: str | None
    agreement_id: str | None


@dataclass(frozen=True)
class StopInstance:
    reason: ExitReason = ExitReason.SHUTDOWN
    detail: str = "stopped"


@dataclass(frozen=True)
class _HealthTick:
    pass


@dataclass(frozen=True)
class _ShutdownDeadline:
    pass


@dataclass(frozen=True)
class _PendingTimeout:
    pass


@dataclass(frozen=True)
class _Teardown:
    reason: ExitReason
    detail: str


#: How a lost lease ends the incarnation.
_LOSS_REASONS = {
    LeaseLoss.NO_AGREEMENT: ExitReason.AGREEMENT_FAILED,
    LeaseLoss.ACTIVITY_FAILED: ExitReason.ACTIVITY_GONE,
    LeaseLoss.ACTIVITY_GONE: ExitReason.ACTIVITY_GONE,
    LeaseLoss.UNRESPONSIVE: ExitReason.UNRESPONSIVE,
    LeaseLoss.ENDED_BY_PROVIDER: ExitReason.AGREEMENT_TERMINATED_BY_PROVIDER,
    LeaseLoss.CRASH: ExitReason.CRASH,
}


class InstanceActor(LeaseActor):
    """One incarnation: the user's ``start``/``run``/``shutdown`` and the health checks, on a
    provider the lease (``LeaseActor``) gets and gives back."""

    role = "instance"

    def __init__(
        self,
        rt: Runtime,
        parent: pykka.ActorRef[Any],
        *,
        config: InstanceConfig,
        handle: ServiceHandle,
        exclude: frozenset[str],
    ) -> None:
        super().__init__(rt, parent, terms=config, group=handle.service, exclude=exclude)
        self.config = config
        self.handle = handle
        self._state = ServiceState.PENDING
        self._service: ServiceActor | None = None
        self._misses = 0
        self._teardown: _Teardown | None = None
        self._detached = False  # exit already reported: the handle belongs to the next incarnation

    @property
    def label(self) -> str:
        return self.handle.instance

    # -- pending: the lease's proposal, agreement, activity ---------------------------------

    def started(self) -> None:
        self._service = self.config.service_cls(**self.config.params)
        self.after(self.config.pending_timeout_s, _PendingTimeout(), key="pending")
        super().started()

    @handles(_PendingTimeout)
    def on_pending_timeout(self, _: _PendingTimeout) -> None:
        if self.agreement is None and self._teardown is None:
            excluded = (
                f"; {len(self.excluded)} provider(s) excluded after failures"
                if self.excluded
                else ""
            )
            waited = self.config.pending_timeout_s
            why = f"no provider offered a usable proposal in {waited:g} s{excluded}"
            self._end(ExitReason.AGREEMENT_FAILED, why)

    def on_granted(self, provider_id: str, provider_name: str) -> None:
        self.cancel_timer("pending")
        self._update_handle(provider_id=provider_id, provider_name=provider_name)

    def on_agreed(self, agreement_id: str) -> None:
        self._update_handle(agreement_id=agreement_id)
        # Kept after this incarnation ends: its invoice may come later, and counts.
        self.rt.costs.watch(agreement_id, self.handle.agreement_cost)

    def on_leased(self, ctx: WorkContext) -> None:
        self._update_handle(activity_id=ctx.activity_id)
        self._set_state(ServiceState.STARTING)
        self.io("start", self._call_user, "start")

    def on_lease_lost(self, loss: LeaseLoss, detail: str) -> None:
        if loss is LeaseLoss.UNRESPONSIVE:
            self._set_state(ServiceState.UNRESPONSIVE)
        self._end(_LOSS_REASONS[loss], detail)

    def provider_at_fault(self) -> bool:
        return self._teardown is not None and self._teardown.reason in (
            ExitReason.UNRESPONSIVE,
            ExitReason.ACTIVITY_GONE,
        )

    # -- the user's code --------------------------------------------------------------------

    def _call_user(self, name: str) -> Any:
        assert self._service is not None
        assert self.ctx is not None
        return getattr(self._service, name)(self.ctx)

    def io_start(self, result: IoResult) -> None:
        if self._teardown is not None:
            return
        if not result.ok:
            self._end_on_error(ExitReason.START_FAILED, "start", result.error)
            return
        self._set_state(ServiceState.RUNNING)
        self.rt.scheduler.schedule(
            self.actor_ref,
            _HealthTick(),
            self.config.health_interval_s,
            key="health",
            period_s=self.config.health_interval_s,
        )
        self.io("run", self._call_user, "run")

    def io_run(self, result: IoResult) -> None:
        if self._teardown is not None:
            return
        if result.ok:
            self._end(ExitReason.NORMAL, "run() returned")
        else:
            self._end_on_error(ExitReason.RUN_FAILED, "run", result.error)

    def _end_on_error(self, reason: ExitReason, phase: str, error: BaseException | None) -> None:
        if isinstance(error, InstanceStoppingError):
            self._end(ExitReason.SHUTDOWN, "stopped")
        elif isinstance(error, ActivityGoneError):
            # The activity actor's ActivityGone, told before this error, says why and ends the
            # instance; should it never come, end anyway.
            self.after(1.0, StopInstance(ExitReason.ACTIVITY_GONE, str(error)), key="gone")
        elif isinstance(error, CommandFailedError):
            self._end(reason, f"{phase}() failed: {error}")
        else:
            log.warning("%s: %s() raised %r", self.handle.instance, phase, error)
            self._end(reason, f"{phase}() raised {type(error).__name__}: {error}")

    # -- health -----------------------------------------------------------------------------

    @handles(_HealthTick)
    def on_health_tick(self, _: _HealthTick) -> None:
        if self.activity is not None and self._teardown is None:
            self.tell_if_alive(self.activity, CheckHealth())

    @handles(HealthReport)
    def on_health(self, report: HealthReport) -> None:
        if self._teardown is not None:
            return
        healthy = report.state is not None and report.state.current != "Unresponsive"
        if healthy:
            self._misses = 0
            if self._state is ServiceState.UNRESPONSIVE:
                self._set_state(ServiceState.RUNNING)
            return
        self._misses += 1
        if self._state is ServiceState.RUNNING:
            self._set_state(ServiceState.UNRESPONSIVE)
        if self._misses >= self.config.health_misses:
            why = report.error or (report.state.current if report.state else "no state")
            self._end(ExitReason.UNRESPONSIVE, f"{self._misses} health checks missed ({why})")

    @handles(StopInstance)
    def on_stop_instance(self, message: StopInstance) -> None:
        self._end(message.reason, message.detail)

    # -- ending -----------------------------------------------------------------------------

    def _end(self, reason: ExitReason, detail: str) -> None:
        if self._teardown is not None:
            return
        self._teardown = _Teardown(reason, detail)
        self.stop_leasing()  # wakes the user's code; no new agreement or activity
        self.cancel_timer("health")
        if reason.abnormal:
            # The replacement must not wait for this incarnation's cleanup (destroying an activity
            # on a dead provider takes yagna ~10 s): report now, clean up in the background.
            self._set_state(ServiceState.FAILED)
            self._report_exit()
        graceful = reason in (ExitReason.SHUTDOWN, ExitReason.NORMAL)
        if (
            graceful
            and self.ctx is not None
            and self._state in (ServiceState.RUNNING, ServiceState.UNRESPONSIVE)
        ):
            self._set_state(ServiceState.STOPPING)
            self.ctx = self._ctx_for_shutdown()
            self.io("shutdown", self._call_user, "shutdown")
            self.after(self.config.shutdown_timeout_s, _ShutdownDeadline(), key="shutdown")
            return
        if graceful:  # stopped before it ran: no shutdown() to call, the teardown is the stopping
            self._set_state(ServiceState.STOPPING)
        self._begin_teardown()

    def _ctx_for_shutdown(self) -> WorkContext:
        """``shutdown`` may still use the activity: a context whose stop flag is not set."""
        assert self.ctx is not None
        assert self.activity is not None
        return WorkContext(
            self.activity,
            storage=self.config.storage,
            provider_id=self.ctx.provider_id,
            provider_name=self.ctx.provider_name,
            agreement_id=self.ctx.agreement_id,
            activity_id=self.ctx.activity_id,
            default_timeout=self.config.shutdown_timeout_s,
            output=log_output(self.label) if self.config.stream_output else None,
            costs=self.rt.costs,
        )

    def io_shutdown(self, result: IoResult) -> None:
        if not result.ok:
            log.info("%s: shutdown() raised %r", self.handle.instance, result.error)
        self.cancel_timer("shutdown")
        self._begin_teardown()

    @handles(_ShutdownDeadline)
    def on_shutdown_deadline(self, _: _ShutdownDeadline) -> None:
        log.info("%s: shutdown() took too long; tearing down", self.handle.instance)
        self._begin_teardown()

    def _begin_teardown(self) -> None:
        teardown = self._teardown
        assert teardown is not None
        self.cancel_timer("shutdown")
        message = f"{teardown.reason.value}: {teardown.detail}"
        self.release_lease(message, fault=teardown.reason.abnormal)

    def on_lease_closed(self) -> None:
        if not self._detached:
            self._set_state(ServiceState.TERMINATED)
            self._report_exit()

    def _report_exit(self) -> None:
        teardown = self._teardown
        assert teardown is not None
        provider = self.provider[0] if self.provider else None
        self.release_provider()
        self.tell_parent(
            InstanceExited(
                self.handle.instance, teardown.reason, teardown.detail, provider, self.agreement_id
            )
        )
        self._detached = True

    def _update_handle(self, **changes: Any) -> None:
        if not self._detached:
            self.handle.update(**changes)

    def _set_state(self, state: ServiceState) -> None:
        if state is self._state or self._detached:
            return
        old, self._state = self._state, state
        self.handle.update(state=state)
        self.rt.emit(
            InstanceStateChanged(
                service=self.handle.service,
                instance=self.handle.instance,
                old=old.value,
                new=state.value,
                provider_id=self.provider[0] if self.provider else None,
            )
        )
