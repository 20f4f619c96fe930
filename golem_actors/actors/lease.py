"""LeaseActor: the lease on one provider that a service instance or a task worker holds.

Both get a provider the same way — a proposal from the market (with an exclude set and a group),
an agreement (retried on another provider up to a limit), an activity — and give it back the
same way: destroy the activity, terminate the agreement, wait (bounded) for both to close, tell
payments whether to wait for an invoice, release the provider's load count in the market. That
protocol lives here once, so the two cannot drift apart (they did: an instance never released a
provider whose agreement failed, and the market's per-group load count leaked one each time).

A subclass says what the lease is for through a few hooks: ``on_leased(ctx)`` when the activity
is ready, ``on_lease_lost(loss, detail)`` when the lease ends without being asked to, and
``on_lease_closed()`` when the teardown is over. It ends the lease itself in two steps, since a
service's ``shutdown()`` runs between them: ``stop_leasing()`` (no new agreement or activity),
then ``release_lease(message, fault=...)`` (destroy, terminate, wait).
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import pykka

from golem_actors.actors.activity import (
    ActivityActor,
    ActivityClosed,
    ActivityFailed,
    ActivityGone,
    ActivityReady,
    Destroy,
)
from golem_actors.actors.agreement import (
    AgreementActor,
    AgreementEnded,
    AgreementFailed,
    AgreementReady,
    Terminate,
)
from golem_actors.actors.base import ChildDied, RuntimeActor, handles
from golem_actors.actors.context import WorkContext
from golem_actors.actors.market import (
    CancelRequest,
    ProposalGranted,
    ProviderFailed,
    ReleaseProvider,
    RequestProposal,
)
from golem_actors.actors.runtime import Runtime
from golem_actors.output import log_output
from golem_actors.payments.messages import (
    AgreementClosed,
    RegisterActivity,
    RegisterAgreement,
)
from golem_actors.storage.http import Storage

__all__ = ["LeaseActor", "LeaseLoss", "LeaseTerms"]

log = logging.getLogger(__name__)


class LeaseTerms(Protocol):
    """What a lease needs from its holder's config (``InstanceConfig``, ``WorkerConfig``)."""

    @property
    def demand_key(self) -> str: ...
    @property
    def market(self) -> pykka.ActorRef[Any]: ...
    @property
    def agreement_events(self) -> pykka.ActorRef[Any]: ...
    @property
    def payments(self) -> pykka.ActorRef[Any]: ...
    @property
    def storage(self) -> Storage | None: ...
    @property
    def teardown_timeout_s(self) -> float: ...
    @property
    def max_agreement_attempts(self) -> int: ...
    @property
    def stream_output(self) -> bool: ...


class LeaseLoss(enum.Enum):
    """How a lease ended without its holder asking: a closed set each holder maps to its own."""

    NO_AGREEMENT = "no_agreement"  # every agreement attempt failed
    ACTIVITY_FAILED = "activity_failed"  # the activity could not be created
    ACTIVITY_GONE = "activity_gone"
    UNRESPONSIVE = "unresponsive"  # the activity is gone because it stopped answering
    ENDED_BY_PROVIDER = "ended_by_provider"
    CRASH = "crash"  # the agreement or activity actor died


@dataclass(frozen=True)
class _TeardownDeadline:
    pass


class LeaseActor(RuntimeActor):
    """Holds one provider from proposal to teardown; subclasses say what it is for."""

    def __init__(
        self,
        rt: Runtime,
        parent: pykka.ActorRef[Any],
        *,
        terms: LeaseTerms,
        group: str,
        exclude: frozenset[str],
    ) -> None:
        super().__init__(rt, parent)
        self.terms = terms
        self.group = group
        self.stop_event = threading.Event()  # set when ending: wakes the user's code
        self.provider: tuple[str, str] | None = None  # (id, name) of the last one granted
        self.agreement: pykka.ActorRef[Any] | None = None
        self.agreement_id: str | None = None
        self.activity: pykka.ActorRef[Any] | None = None
        self.ctx: WorkContext | None = None
        self.attempts = 0  # agreements that failed
        self._exclude = set(exclude)
        self._request_id = rt.io.next_id()
        self._holds_provider = False  # the market counts us in the provider's load
        self._activity_requested = dt.datetime.now(dt.UTC)
        self._ending = False
        self._teardown_begun = False
        self._waiting: set[str] = set()  # "activity", "agreement": not yet closed
        self._closed = False

    # -- hooks for subclasses ---------------------------------------------------------------

    def on_granted(self, provider_id: str, provider_name: str) -> None:
        """A provider was granted; its agreement is being made."""

    def on_agreed(self, agreement_id: str) -> None:
        """The agreement is approved; the activity is being created."""

    def on_leased(self, ctx: WorkContext) -> None:
        """The activity is ready: use it through ``ctx``."""
        raise NotImplementedError

    def on_lease_lost(self, loss: LeaseLoss, detail: str) -> None:
        """The lease ended without being asked to; the subclass ends (``stop_leasing`` ...)."""
        raise NotImplementedError

    def provider_at_fault(self) -> bool:
        """Whether the lease ends because the provider died or hangs (it may never invoice)."""
        return False

    def on_lease_closed(self) -> None:
        """Activity and agreement are closed (or the teardown deadline passed); it stops next."""

    # -- for subclasses ---------------------------------------------------------------------

    @property
    def label(self) -> str:
        """Names this lease in logs."""
        return self.role

    @property
    def ending(self) -> bool:
        return self._ending

    @property
    def held_provider(self) -> str | None:
        """The provider whose load count the market still charges to us, if any."""
        return self.provider[0] if self._holds_provider and self.provider else None

    @property
    def excluded(self) -> frozenset[str]:
        return frozenset(self._exclude)

    def stop_leasing(self) -> None:
        """No new agreement or activity from now on; the user's code is told to stop."""
        if self._ending:
            return
        self._ending = True
        self.stop_event.set()
        self.terms.market.tell(CancelRequest(self.terms.demand_key, self._request_id))

    def release_lease(self, message: str, *, fault: bool) -> None:
        """Destroy the activity, terminate the agreement, and wait (bounded) for both."""
        self.stop_leasing()
        if self._teardown_begun:
            return
        self._teardown_begun = True
        if self.activity is not None:
            self._waiting.add("activity")
            self.tell_if_alive(self.activity, Destroy())
        if self.agreement is not None:
            self._waiting.add("agreement")
            code = "Cancelled" if fault else "Success"
            self.tell_if_alive(self.agreement, Terminate(message[:200], code))
        self.after(self.terms.teardown_timeout_s, _TeardownDeadline(), key="teardown")
        self._maybe_close()

    def release_provider(self) -> str | None:
        """Give the provider's load count back to the market, once; returns its id if held."""
        provider = self.held_provider
        if provider is not None:
            self._holds_provider = False
            self.terms.market.tell(ReleaseProvider(self.group, provider))
        return provider

    # -- getting the lease ------------------------------------------------------------------

    def started(self) -> None:
        self._request()

    def _request(self) -> None:
        self.terms.market.tell(
            RequestProposal(
                self.terms.demand_key,
                self._request_id,
                self.actor_ref,
                exclude=frozenset(self._exclude),
                group=self.group,
            )
        )

    @handles(ProposalGranted)
    def _on_granted(self, granted: ProposalGranted) -> None:
        if self._ending or self.agreement is not None:
            # The market counted this grant in the provider's load: give it back.
            self.terms.market.tell(ReleaseProvider(self.group, granted.provider_id))
            return
        self.provider = (granted.provider_id, granted.provider_name)
        self._holds_provider = True
        self.on_granted(granted.provider_id, granted.provider_name)
        self.agreement = AgreementActor.start(
            self.rt,
            self.actor_ref,
            proposal_id=granted.proposal.proposal_id,
            provider_id=granted.provider_id,
            provider_name=granted.provider_name,
            events=self.terms.agreement_events,
        )

    @handles(AgreementFailed)
    def _on_agreement_failed(self, failed: AgreementFailed) -> None:
        self.agreement = None
        if self._ending:  # it cleans itself up
            self._closed_one("agreement")
            return
        self.attempts += 1
        self._exclude.add(failed.provider_id)
        self.terms.market.tell(ProviderFailed(failed.provider_id))
        self.release_provider()
        if self.attempts >= self.terms.max_agreement_attempts:
            self.on_lease_lost(
                LeaseLoss.NO_AGREEMENT, f"{self.attempts} attempts failed: {failed.reason}"
            )
            return
        self._request_id = self.rt.io.next_id()
        self._request()

    @handles(AgreementReady)
    def _on_agreement(self, ready: AgreementReady) -> None:
        self.agreement_id = ready.agreement.agreement_id
        self.on_agreed(self.agreement_id)
        self.terms.payments.tell(RegisterAgreement(ready.agreement))
        if self._ending:
            return  # Terminate was already sent; AgreementEnded follows
        self._activity_requested = dt.datetime.now(dt.UTC)
        self.activity = ActivityActor.start(self.rt, self.actor_ref, self.agreement_id)

    @handles(ActivityFailed)
    def _on_activity_failed(self, failed: ActivityFailed) -> None:
        self.activity = None
        self._lost(LeaseLoss.ACTIVITY_FAILED, f"creating the activity failed: {failed.error}")

    @handles(ActivityReady)
    def _on_activity(self, ready: ActivityReady) -> None:
        # Registered first, even when ending: the provider bills every activity it made.
        self.terms.payments.tell(
            RegisterActivity(self.agreement_id or "", ready.activity_id, self._activity_requested)
        )
        if self._ending or self.activity is None or self.provider is None:
            return
        self.ctx = WorkContext(
            self.activity,
            storage=self.terms.storage,
            provider_id=self.provider[0],
            provider_name=self.provider[1],
            agreement_id=self.agreement_id or "",
            activity_id=ready.activity_id,
            stop=self.stop_event,
            output=log_output(self.label) if self.terms.stream_output else None,
            costs=self.rt.costs,
        )
        self.on_leased(self.ctx)

    # -- losing it --------------------------------------------------------------------------

    def _lost(self, loss: LeaseLoss, detail: str) -> None:
        if not self._ending:
            self.on_lease_lost(loss, detail)

    @handles(ActivityGone)
    def _on_gone(self, gone: ActivityGone) -> None:
        loss = LeaseLoss.UNRESPONSIVE if gone.unresponsive else LeaseLoss.ACTIVITY_GONE
        self._lost(loss, gone.reason)

    @handles(AgreementEnded)
    def _on_agreement_ended(self, ended: AgreementEnded) -> None:
        self.agreement = None
        # A provider that died or hangs may never send its invoice: settling at shutdown does
        # not wait for it (it is still accepted if it comes). One that ended the agreement
        # itself is alive and invoices: that one is waited for.
        failed = not ended.by_provider and self._ending and self.provider_at_fault()
        self.terms.payments.tell(AgreementClosed(ended.agreement_id, expect_invoice=not failed))
        self._lost(LeaseLoss.ENDED_BY_PROVIDER, ended.reason or "terminated")
        self._closed_one("agreement")

    @handles(ActivityClosed)
    def _on_activity_closed(self, _: ActivityClosed) -> None:
        self.activity = None
        self._closed_one("activity")

    @handles(ChildDied)
    def _on_child_died(self, died: ChildDied) -> None:
        if died.role == "activity":
            self.activity = None
        elif died.role == "agreement":
            self.agreement = None
        self._lost(LeaseLoss.CRASH, f"the {died.role} actor died: {died.error!r}")
        self._closed_one(died.role)

    # -- closing ----------------------------------------------------------------------------

    def _closed_one(self, what: str) -> None:
        self._waiting.discard(what)
        self._maybe_close()

    @handles(_TeardownDeadline)
    def _on_teardown_deadline(self, _: _TeardownDeadline) -> None:
        log.warning("%s: teardown timed out waiting for %s", self.label, self._waiting)
        if "activity" in self._waiting and self.agreement_id is not None:
            # The provider does not answer for its activity (dead or hung, e.g. a create that
            # never returned): like a failed one it may never invoice, so settling at shutdown
            # does not wait a minute for it (still accepted if it comes).
            self.terms.payments.tell(AgreementClosed(self.agreement_id, expect_invoice=False))
        self._waiting.clear()
        self._maybe_close()

    def _maybe_close(self) -> None:
        if not self._teardown_begun or self._waiting or self._closed:
            return
        self._closed = True
        self.on_lease_closed()
        self.stop()

    def stopping(self) -> None:
        self.stop_event.set()
