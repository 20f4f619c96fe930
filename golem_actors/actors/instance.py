"""InstanceActor: one incarnation of one service instance, from proposal to teardown.

pending (proposal → agreement → activity) → starting (the user's ``start``) → running (``run``,
health checks) ⇄ unresponsive → stopping (the user's ``shutdown``) → terminated, or failed.
Whatever ends it — the user's code raising, the activity gone, K missed health checks, the
provider terminating the agreement, a stop — it cleans up (activity destroyed, agreement
terminated) and tells its supervisor ``InstanceExited`` with a closed-set reason. A restart is a
new InstanceActor behind the same ``ServiceHandle``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import pykka

from golem_actors.actors.activity import (
    ActivityActor,
    ActivityClosed,
    ActivityFailed,
    ActivityGone,
    ActivityGoneError,
    ActivityReady,
    CheckHealth,
    Destroy,
    HealthReport,
)
from golem_actors.actors.agreement import (
    AgreementActor,
    AgreementEnded,
    AgreementFailed,
    AgreementReady,
    Terminate,
)
from golem_actors.actors.base import ChildDied, RuntimeActor, handles
from golem_actors.actors.context import InstanceStoppingError, WorkContext
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
from golem_actors.events import InstanceStateChanged
from golem_actors.exescript import CommandFailedError
from golem_actors.policy.lifecycle import ServiceState
from golem_actors.policy.restart import ExitReason
from golem_actors.service import ServiceActor, ServiceHandle
from golem_actors.storage.http import Storage
from golem_actors.yagna.models import Agreement

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
class _TeardownDeadline:
    pass


@dataclass(frozen=True)
class _PendingTimeout:
    pass


@dataclass
class _Teardown:
    reason: ExitReason
    detail: str
    begun: bool = False  # after shutdown(): destroy and terminate sent
    waiting: set[str] = field(default_factory=set)  # "activity", "agreement": not yet closed


class InstanceActor(RuntimeActor):
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
        super().__init__(rt, parent)
        self.config = config
        self.handle = handle
        self._exclude = set(exclude)
        self._state = ServiceState.PENDING
        self._stop_event = threading.Event()
        self._request_id = rt.io.next_id()
        self._attempts = 0
        self._provider: tuple[str, str] | None = None
        self._agreement: pykka.ActorRef[Any] | None = None
        self._agreement_id: str | None = None
        self._activity: pykka.ActorRef[Any] | None = None
        self._activity_requested = dt.datetime.now(dt.UTC)
        self._ctx: WorkContext | None = None
        self._service: ServiceActor | None = None
        self._misses = 0
        self._teardown: _Teardown | None = None
        self._detached = False  # exit already reported: the handle belongs to the next incarnation

    # -- pending: proposal, agreement, activity ---------------------------------------------

    def started(self) -> None:
        self._service = self.config.service_cls(**self.config.params)
        self.after(self.config.pending_timeout_s, _PendingTimeout(), key="pending")
        self._request()

    @handles(_PendingTimeout)
    def on_pending_timeout(self, _: _PendingTimeout) -> None:
        if self._agreement is None and self._teardown is None:
            excluded = (
                f"; {len(self._exclude)} provider(s) excluded after failures"
                if self._exclude
                else ""
            )
            waited = self.config.pending_timeout_s
            why = f"no provider offered a usable proposal in {waited:g} s{excluded}"
            self._end(ExitReason.AGREEMENT_FAILED, why)

    def _request(self) -> None:
        self.config.market.tell(
            RequestProposal(
                self.config.demand_key,
                self._request_id,
                self.actor_ref,
                exclude=frozenset(self._exclude),
                group=self.handle.service,
            )
        )

    @handles(ProposalGranted)
    def on_granted(self, granted: ProposalGranted) -> None:
        if self._teardown is not None or self._agreement is not None:
            return
        self.cancel_timer("pending")
        self._provider = (granted.provider_id, granted.provider_name)
        self._update_handle(provider_id=granted.provider_id, provider_name=granted.provider_name)
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
        if self._teardown is not None:  # it cleans itself up
            self._teardown.waiting.discard("agreement")
            self._maybe_finish()
            return
        self._attempts += 1
        self._exclude.add(failed.provider_id)
        self.config.market.tell(ProviderFailed(failed.provider_id))
        if self._attempts >= self.config.max_agreement_attempts:
            self._end(
                ExitReason.AGREEMENT_FAILED, f"{self._attempts} attempts failed: {failed.reason}"
            )
            return
        self._request_id = self.rt.io.next_id()
        self._request()

    @handles(AgreementReady)
    def on_agreement(self, ready: AgreementReady) -> None:
        agreement: Agreement = ready.agreement
        self._agreement_id = agreement.agreement_id
        self._update_handle(agreement_id=agreement.agreement_id)
        self.config.payments.tell(RegisterAgreement(agreement))
        if self._teardown is not None:
            return  # Terminate was already sent; AgreementEnded follows
        self._activity_requested = dt.datetime.now(dt.UTC)
        self._activity = ActivityActor.start(self.rt, self.actor_ref, agreement.agreement_id)

    @handles(ActivityFailed)
    def on_activity_failed(self, failed: ActivityFailed) -> None:
        self._activity = None
        self._end(ExitReason.ACTIVITY_GONE, f"creating the activity failed: {failed.error}")

    @handles(ActivityReady)
    def on_activity(self, ready: ActivityReady) -> None:
        # Registered first, even when tearing down: the provider bills every activity it made.
        self.config.payments.tell(
            RegisterActivity(self._agreement_id or "", ready.activity_id, self._activity_requested)
        )
        if self._teardown is not None:
            return
        assert self._activity is not None
        assert self._provider is not None
        self._update_handle(activity_id=ready.activity_id)
        self._ctx = WorkContext(
            self._activity,
            storage=self.config.storage,
            provider_id=self._provider[0],
            provider_name=self._provider[1],
            agreement_id=self._agreement_id or "",
            activity_id=ready.activity_id,
            stop=self._stop_event,
        )
        self._set_state(ServiceState.STARTING)
        self.io("start", self._call_user, "start")

    # -- the user's code --------------------------------------------------------------------

    def _call_user(self, name: str) -> Any:
        assert self._service is not None
        assert self._ctx is not None
        return getattr(self._service, name)(self._ctx)

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
        if self._activity is not None and self._teardown is None:
            self.tell_if_alive(self._activity, CheckHealth())

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

    @handles(ActivityGone)
    def on_gone(self, gone: ActivityGone) -> None:
        if gone.unresponsive:
            self._set_state(ServiceState.UNRESPONSIVE)
            self._end(ExitReason.UNRESPONSIVE, gone.reason)
        else:
            self._end(ExitReason.ACTIVITY_GONE, gone.reason)

    @handles(AgreementEnded)
    def on_agreement_ended(self, ended: AgreementEnded) -> None:
        self._agreement = None
        # A provider that died or hangs may never send its invoice: settling at shutdown does
        # not wait for it (it is still accepted if it comes). One that ended the agreement
        # itself is alive and invoices: that one is waited for.
        failed = not ended.by_provider and (
            self._teardown is not None
            and self._teardown.reason in (ExitReason.UNRESPONSIVE, ExitReason.ACTIVITY_GONE)
        )
        self.config.payments.tell(AgreementClosed(ended.agreement_id, expect_invoice=not failed))
        if self._teardown is None:
            self._end(ExitReason.AGREEMENT_TERMINATED_BY_PROVIDER, ended.reason or "terminated")
            return
        self._teardown.waiting.discard("agreement")
        self._maybe_finish()

    @handles(ActivityClosed)
    def on_activity_closed(self, _: ActivityClosed) -> None:
        self._activity = None
        if self._teardown is not None:
            self._teardown.waiting.discard("activity")
            self._maybe_finish()

    @handles(ChildDied)
    def on_child_died(self, died: ChildDied) -> None:
        if died.role == "activity":
            self._activity = None
        elif died.role == "agreement":
            self._agreement = None
        if self._teardown is not None:
            self._teardown.waiting.discard(died.role)
            self._maybe_finish()
            return
        self._end(ExitReason.CRASH, f"the {died.role} actor died: {died.error!r}")

    @handles(StopInstance)
    def on_stop_instance(self, message: StopInstance) -> None:
        self._end(message.reason, message.detail)

    # -- ending -----------------------------------------------------------------------------

    def _end(self, reason: ExitReason, detail: str) -> None:
        if self._teardown is not None:
            return
        self._teardown = _Teardown(reason, detail)
        self._stop_event.set()  # wakes the user's code
        self.cancel_timer("health")
        self.config.market.tell(CancelRequest(self.config.demand_key, self._request_id))
        if reason.abnormal:
            # The replacement must not wait for this incarnation's cleanup (destroying an activity
            # on a dead provider takes yagna ~10 s): report now, clean up in the background.
            self._set_state(ServiceState.FAILED)
            self._report_exit()
        graceful = reason in (ExitReason.SHUTDOWN, ExitReason.NORMAL)
        if (
            graceful
            and self._ctx is not None
            and self._state in (ServiceState.RUNNING, ServiceState.UNRESPONSIVE)
        ):
            self._set_state(ServiceState.STOPPING)
            self._ctx = self._ctx_for_shutdown()
            self.io("shutdown", self._call_user, "shutdown")
            self.after(self.config.shutdown_timeout_s, _TeardownDeadline(), key="shutdown")
            return
        self._begin_teardown()

    def _ctx_for_shutdown(self) -> WorkContext:
        """``shutdown`` may still use the activity: a context whose stop flag is not set."""
        assert self._ctx is not None
        assert self._activity is not None
        return WorkContext(
            self._activity,
            storage=self.config.storage,
            provider_id=self._ctx.provider_id,
            provider_name=self._ctx.provider_name,
            agreement_id=self._ctx.agreement_id,
            activity_id=self._ctx.activity_id,
            default_timeout=self.config.shutdown_timeout_s,
        )

    def io_shutdown(self, result: IoResult) -> None:
        if not result.ok:
            log.info("%s: shutdown() raised %r", self.handle.instance, result.error)
        self.cancel_timer("shutdown")
        self._begin_teardown()

    @handles(_TeardownDeadline)
    def on_deadline(self, _: _TeardownDeadline) -> None:
        teardown = self._teardown
        if teardown is None:
            return
        if not teardown.begun:
            log.info("%s: shutdown() took too long; tearing down", self.handle.instance)
            self._begin_teardown()
            return
        log.warning("%s: teardown timed out waiting for %s", self.handle.instance, teardown.waiting)
        teardown.waiting.clear()
        self._maybe_finish()

    def _begin_teardown(self) -> None:
        teardown = self._teardown
        assert teardown is not None
        if teardown.begun:
            return
        teardown.begun = True
        self.cancel_timer("shutdown")
        if self._activity is not None:
            teardown.waiting.add("activity")
            self.tell_if_alive(self._activity, Destroy())
        if self._agreement is not None:
            teardown.waiting.add("agreement")
            code = "Cancelled" if teardown.reason.abnormal else "Success"
            message = f"{teardown.reason.value}: {teardown.detail}"[:200]
            self.tell_if_alive(self._agreement, Terminate(message, code))
        self.after(self.config.teardown_timeout_s, _TeardownDeadline(), key="teardown")
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        teardown = self._teardown
        if teardown is None or not teardown.begun or teardown.waiting:
            return
        if not self._detached:
            self._set_state(ServiceState.TERMINATED)
            self._report_exit()
        self.stop()

    def _report_exit(self) -> None:
        teardown = self._teardown
        assert teardown is not None
        provider = self._provider[0] if self._provider else None
        if provider is not None:
            self.config.market.tell(ReleaseProvider(self.handle.service, provider))
        self.tell_parent(
            InstanceExited(
                self.handle.instance, teardown.reason, teardown.detail, provider, self._agreement_id
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
                provider_id=self._provider[0] if self._provider else None,
            )
        )

    def stopping(self) -> None:
        self._stop_event.set()
