"""AgreementActor: one per agreement. Create, confirm, wait for approval; terminate; and hear
when the provider ends it.

Provider-side terminations come from ``AgreementEventsActor``, the one long-poll of
``/agreementEvents`` for the whole run, which routes each event to the agreement it concerns.
(yapapi never watches these events, so it never notices a provider ending an agreement.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

import pykka

from golem_actors.actors.base import RuntimeActor, handles
from golem_actors.actors.io import IoResult
from golem_actors.actors.runtime import Runtime
from golem_actors.events import (
    AgreementApproved,
    AgreementCreated,
    AgreementRejected,
    AgreementTerminated,
)
from golem_actors.policy.journal import AgreementStatus
from golem_actors.yagna import YagnaConflictError, YagnaGoneError
from golem_actors.yagna.models import Agreement, AgreementTerminatedEvent

__all__ = [
    "AgreementActor",
    "AgreementEnded",
    "AgreementEventsActor",
    "AgreementFailed",
    "AgreementReady",
    "Terminate",
    "Unwatch",
    "Watch",
]

log = logging.getLogger(__name__)


# -- messages --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgreementReady:
    agreement: Agreement


@dataclass(frozen=True)
class AgreementFailed:
    provider_id: str
    reason: str


@dataclass(frozen=True)
class AgreementEnded:
    agreement_id: str
    provider_id: str
    by_provider: bool
    reason: str


@dataclass(frozen=True)
class Terminate:
    message: str
    code: str = "Success"  # golem.requestor.code: Success, Cancelled, ...


@dataclass(frozen=True)
class ProviderTerminated:
    reason: str


@dataclass(frozen=True)
class Watch:
    agreement_id: str
    ref: pykka.ActorRef[Any]


@dataclass(frozen=True)
class Unwatch:
    agreement_id: str


@dataclass(frozen=True)
class _Poll:
    pass


@dataclass(frozen=True)
class _RetryTerminate:
    pass


_TERMINATE_RETRIES = 4


class AgreementActor(RuntimeActor):
    role = "agreement"

    def __init__(
        self,
        rt: Runtime,
        parent: pykka.ActorRef[Any],
        *,
        proposal_id: str,
        provider_id: str,
        provider_name: str,
        events: pykka.ActorRef[Any],
        valid_for: dt.timedelta = dt.timedelta(hours=1),
        approval_timeout: float = 15.0,
    ) -> None:
        super().__init__(rt, parent)
        self.proposal_id = proposal_id
        self.provider_id = provider_id
        self.provider_name = provider_name
        self.agreement_id: str | None = None
        self._events = events
        self._valid_for = valid_for
        self._approval_timeout = approval_timeout
        self._started = time.monotonic()
        self._approved = False
        self._terminating: Terminate | None = None
        self._report_termination = True
        self._ended = False
        self._terminate_tries = 0
        self._verifying: str | None = None  # why an answer was doubted (asked yagna once)
        self._wait_started: float | None = None

    def started(self) -> None:
        valid_to = dt.datetime.now(dt.UTC) + self._valid_for
        # The run id as the app session: after a crash, recovery finds even an agreement whose
        # id never reached the journal (yagna lists agreements by app session).
        session = self.rt.journal.state.run_id if self.rt.journal else None
        self.io(
            "create",
            self.rt.client.market.create_agreement,
            self.proposal_id,
            valid_to,
            app_session_id=session,
        )

    def io_create(self, result: IoResult) -> None:
        if not result.ok:
            self._fail(f"creating the agreement failed: {result.error}")
            return
        self.agreement_id = result.value
        if self.rt.journal is not None:
            self.rt.journal.agreement(result.value, AgreementStatus.CREATED, self.provider_id)
        self.rt.emit(AgreementCreated(agreement_id=result.value, provider_id=self.provider_id))
        self._events.tell(Watch(result.value, self.actor_ref))
        self.io("confirm", self.rt.client.market.confirm_agreement, self.agreement_id)

    def io_confirm(self, result: IoResult) -> None:
        if not result.ok:
            self._verify(f"confirming the agreement failed: {result.error}")
            return
        self._wait_started = time.monotonic()
        self._wait(self._approval_timeout)

    def _wait(self, timeout: float) -> None:
        self.io("wait", self.rt.client.market.wait_for_approval, self.agreement_id, timeout=timeout)

    def io_wait(self, result: IoResult) -> None:
        if not result.ok:
            self._verify(f"the provider did not approve: {result.error}")
            return
        self.io("get", self.rt.client.market.get_agreement, self.agreement_id)

    def _verify(self, reason: str) -> None:
        """An error answer may hide a success (the call reached yagna, its answer was lost): ask
        yagna, once, where the agreement stands before giving up on it. Giving up on an agreement
        the provider approved would leave its invoice to nobody."""
        if self._verifying is not None:
            self._fail(reason)
            return
        self._verifying = reason
        self.io("verify", self.rt.client.market.get_agreement, self.agreement_id)

    def io_verify(self, result: IoResult) -> None:
        reason = self._verifying or ""
        if not result.ok:
            self._fail(f"{reason}; reading the agreement failed too: {result.error}")
            return
        state = result.value.state
        if state == "Approved":
            self.io_get(result)
            return
        if state == "Pending":
            if self._wait_started is None:  # the confirm did arrive: wait for the provider
                self._wait_started = time.monotonic()
                self._wait(self._approval_timeout)
                return
            left = self._approval_timeout - (time.monotonic() - self._wait_started)
            if left >= 1.0:  # the wait's answer was lost early: wait out the rest
                self._wait(left)
                return
        self._fail(f"{reason} (the agreement is {state})")

    def io_get(self, result: IoResult) -> None:
        if not result.ok:  # approved, only its reading failed: read it once more
            self._verify(f"reading the approved agreement failed: {result.error}")
            return
        agreement: Agreement = result.value
        self._approved = True
        self.rt.emit(
            AgreementApproved(
                agreement_id=agreement.agreement_id,
                provider_id=self.provider_id,
                provider_name=self.provider_name,
                negotiation_seconds=time.monotonic() - self._started,
            )
        )
        if self._terminating is not None:  # asked to end while it was being made
            self._send_terminate()
            return
        self.tell_parent(AgreementReady(agreement))

    def _fail(self, reason: str) -> None:
        log.info("agreement with %s failed: %s", self.provider_name, reason)
        self.rt.emit(
            AgreementRejected(
                agreement_id=self.agreement_id, provider_id=self.provider_id, reason=reason
            )
        )
        self.tell_parent(AgreementFailed(self.provider_id, reason))
        if self.agreement_id is not None:
            # Never leave a half-made agreement behind. Not approved (as far as we know): cancel
            # it, since yagna answers a terminate of a Pending agreement with 410 and leaves it
            # Pending, for the provider to approve (and bill) later.
            self._terminating = Terminate("negotiation failed", "Cancelled")
            self._report_termination = False
            self.io(
                "cancel",
                self.rt.client.market.cancel_agreement,
                self.agreement_id,
                "negotiation failed",
            )
        else:
            self.stop()

    def io_cancel(self, result: IoResult) -> None:
        if result.ok or isinstance(result.error, YagnaGoneError):  # 410: decided meanwhile
            if self.rt.journal is not None and self.agreement_id is not None:
                self.rt.journal.agreement(self.agreement_id, AgreementStatus.TERMINATED)
            self._end(by_provider=False, reason="negotiation failed", report=False)
            return
        # Approved meanwhile (or the answer was lost): end it the way an approved one ends.
        log.info("cancelling agreement %s: %s; terminating it", self.agreement_id, result.error)
        self._send_terminate(report=False)

    # -- ending -----------------------------------------------------------------------------

    @handles(Terminate)
    def on_terminate(self, message: Terminate) -> None:
        if self._terminating is not None or self._ended:
            return
        self._terminating = message
        if self._approved:
            self._send_terminate()
        # otherwise io_get (or _fail) terminates once the agreement exists

    def _send_terminate(self, *, report: bool = True) -> None:
        assert self._terminating is not None
        self._report_termination = report
        self.io(
            "terminate",
            self.rt.client.market.terminate_agreement,
            self.agreement_id,
            self._terminating.message,
            code=self._terminating.code,
        )

    def io_terminate(self, result: IoResult) -> None:
        done = result.ok or isinstance(result.error, YagnaGoneError)  # 410: already ended
        if not done:
            log.warning("terminating agreement %s: %s", self.agreement_id, result.error)
            # Not retried by the client (a POST), but terminating twice only answers 410: try
            # again a few times rather than leave an agreement open (and billing) behind us.
            self._terminate_tries += 1
            # 409: not in a state that can be terminated (never confirmed): asking again cannot
            # help; the session's last sweep ends it should it become live after all.
            retry = not isinstance(result.error, YagnaConflictError)
            if retry and self._terminate_tries <= _TERMINATE_RETRIES:
                self.after(0.5 * 2**self._terminate_tries, _RetryTerminate(), key="terminate")
                return
        elif self.rt.journal is not None and self.agreement_id is not None:
            self.rt.journal.agreement(self.agreement_id, AgreementStatus.TERMINATED)
        message = self._terminating.message if self._terminating else ""
        self._end(by_provider=False, reason=message, report=self._report_termination)

    @handles(_RetryTerminate)
    def on_retry_terminate(self, _: _RetryTerminate) -> None:
        self._send_terminate(report=self._report_termination)

    @handles(ProviderTerminated)
    def on_provider_terminated(self, message: ProviderTerminated) -> None:
        if self._terminating is not None:
            return  # our own termination, seen from the event stream
        if self.rt.journal is not None and self.agreement_id is not None:
            self.rt.journal.agreement(self.agreement_id, AgreementStatus.TERMINATED)
        self._end(by_provider=True, reason=message.reason, report=True)

    def _end(self, *, by_provider: bool, reason: str, report: bool) -> None:
        if self._ended:
            return
        self._ended = True
        if self.agreement_id is not None:
            self._events.tell(Unwatch(self.agreement_id))
            self.rt.emit(
                AgreementTerminated(
                    agreement_id=self.agreement_id,
                    provider_id=self.provider_id,
                    by_provider=by_provider,
                    reason=reason,
                )
            )
            if report:
                self.tell_parent(
                    AgreementEnded(self.agreement_id, self.provider_id, by_provider, reason)
                )
        self.stop()


class AgreementEventsActor(RuntimeActor):
    """The run's single ``/agreementEvents`` long-poll, routing terminations by agreement id."""

    role = "agreement_events"

    def __init__(self, rt: Runtime, *, poll_s: float = 20.0) -> None:
        super().__init__(rt, None)
        self._watched: dict[str, pykka.ActorRef[Any]] = {}
        self._after = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        self._poll_s = poll_s
        self._polling = False

    def started(self) -> None:
        self.actor_ref.tell(_Poll())

    @handles(Watch)
    def on_watch(self, message: Watch) -> None:
        self._watched[message.agreement_id] = message.ref

    @handles(Unwatch)
    def on_unwatch(self, message: Unwatch) -> None:
        self._watched.pop(message.agreement_id, None)

    @handles(_Poll)
    def on_poll(self, _: _Poll) -> None:
        if self._polling:
            return
        self._polling = True
        self.io(
            "events",
            self.rt.client.market.agreement_events,
            after=self._after,
            timeout=self._poll_s,
        )

    def io_events(self, result: IoResult) -> None:
        self._polling = False
        if not result.ok:
            log.warning("polling agreement events: %s", result.error)
            self.after(1.0, _Poll(), key="poll")  # yagna hiccup: try again shortly
            return
        for event in result.value:
            self._after = max(self._after, event.event_date)
            if isinstance(event, AgreementTerminatedEvent):
                ref = self._watched.pop(event.agreement_id, None)
                if ref is not None:
                    reason = (event.reason or {}).get("message", "") if event.reason else ""
                    with contextlib.suppress(pykka.ActorDeadError):
                        ref.tell(ProviderTerminated(str(reason) or "terminated"))
        self.actor_ref.tell(_Poll())
