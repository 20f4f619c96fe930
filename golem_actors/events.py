"""Typed events of a run, stamped when emitted; users, metrics and the summary subscribe.

Every event is a frozen dataclass with ``at`` (Unix time, set at emission, never at import). A
subscriber that raises is logged and kept: one broken consumer must not stop the runtime.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

__all__ = [
    "ActivityCreated",
    "ActivityDestroyed",
    "AgreementApproved",
    "AgreementCreated",
    "AgreementRejected",
    "AgreementTerminated",
    "BatchFinished",
    "BatchStarted",
    "DebitNoteAccepted",
    "DebitNoteReceived",
    "DebitNoteRefused",
    "DemandPublished",
    "Event",
    "EventBus",
    "InstanceRestarting",
    "InstanceSpawned",
    "InstanceStateChanged",
    "InvoiceAccepted",
    "InvoiceReceived",
    "InvoiceRefused",
    "OfferReceived",
    "ProposalCountered",
    "ProposalRejected",
    "SupervisorEscalated",
    "TaskAttemptFailed",
    "TaskFinished",
    "TaskStarted",
]

log = logging.getLogger(__name__)

E = TypeVar("E", bound="Event")


@dataclass(frozen=True, kw_only=True)
class Event:
    at: float = field(default_factory=time.time)


@dataclass(frozen=True, kw_only=True)
class DemandPublished(Event):
    demand_id: str
    key: str  # the demand's key in the market actor: "<Service>:<fingerprint>"


@dataclass(frozen=True, kw_only=True)
class OfferReceived(Event):
    provider_id: str
    provider_name: str
    score: float | None


@dataclass(frozen=True, kw_only=True)
class ProposalCountered(Event):
    provider_id: str
    proposal_id: str


@dataclass(frozen=True, kw_only=True)
class ProposalRejected(Event):
    provider_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class AgreementCreated(Event):
    agreement_id: str
    provider_id: str


@dataclass(frozen=True, kw_only=True)
class AgreementRejected(Event):
    """Negotiation ended without an approved agreement (not created, confirmed or approved)."""

    agreement_id: str | None
    provider_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class AgreementApproved(Event):
    agreement_id: str
    provider_id: str
    provider_name: str
    negotiation_seconds: float


@dataclass(frozen=True, kw_only=True)
class AgreementTerminated(Event):
    agreement_id: str
    provider_id: str
    by_provider: bool
    reason: str


@dataclass(frozen=True, kw_only=True)
class ActivityCreated(Event):
    activity_id: str
    agreement_id: str


@dataclass(frozen=True, kw_only=True)
class ActivityDestroyed(Event):
    """The activity actor ended: the activity was destroyed, or was already gone."""

    activity_id: str
    agreement_id: str


@dataclass(frozen=True, kw_only=True)
class BatchStarted(Event):
    activity_id: str


@dataclass(frozen=True, kw_only=True)
class BatchFinished(Event):
    activity_id: str
    ok: bool
    seconds: float
    outcome: str  # "ok", "error", "timeout", "gone"


@dataclass(frozen=True, kw_only=True)
class DebitNoteReceived(Event):
    debit_note_id: str
    agreement_id: str
    activity_id: str
    amount: Decimal  # cumulative for its activity


@dataclass(frozen=True, kw_only=True)
class DebitNoteAccepted(Event):
    debit_note_id: str
    agreement_id: str
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class DebitNoteRefused(Event):
    debit_note_id: str
    agreement_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class InvoiceReceived(Event):
    invoice_id: str
    agreement_id: str
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class InvoiceAccepted(Event):
    invoice_id: str
    agreement_id: str
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class InvoiceRefused(Event):
    invoice_id: str
    agreement_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class InstanceSpawned(Event):
    """A new incarnation of an instance starts looking for a provider."""

    service: str
    instance: str


@dataclass(frozen=True, kw_only=True)
class InstanceStateChanged(Event):
    service: str
    instance: str
    old: str
    new: str
    provider_id: str | None


@dataclass(frozen=True, kw_only=True)
class InstanceRestarting(Event):
    service: str
    instance: str
    reason: str
    delay_seconds: float
    restarts: int


@dataclass(frozen=True, kw_only=True)
class SupervisorEscalated(Event):
    service: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class TaskStarted(Event):
    task_id: str
    attempt: int  # 1 for the first try of the task
    provider_id: str
    provider_name: str
    speculative: bool = False  # a copy of a straggler: the first result wins


@dataclass(frozen=True, kw_only=True)
class TaskAttemptFailed(Event):
    task_id: str
    provider_id: str
    kind: str  # "task", "provider", "timeout", "cancelled"
    error: str
    retried: bool  # the task goes back to the queue (for another provider)


@dataclass(frozen=True, kw_only=True)
class TaskFinished(Event):
    task_id: str
    ok: bool
    attempts: int
    provider_id: str | None
    seconds: float
    error: str | None = None
    cancelled: bool = False  # not failed: the run stopped (Ctrl-C, its timeout) before it ran


class EventBus:
    """Synchronous fan-out to subscribers, optionally filtered by event type."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[tuple[Callable[[Any], None], tuple[type[Event], ...]]] = []

    def subscribe(self, callback: Callable[[Any], None], *types: type[Event]) -> None:
        with self._lock:
            self._subscribers.append((callback, types or (Event,)))

    def unsubscribe(self, callback: Callable[[Any], None]) -> None:
        with self._lock:
            # ==, not `is`: a bound method is a new object on every access, yet compares equal.
            self._subscribers = [s for s in self._subscribers if s[0] != callback]

    def emit(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback, types in subscribers:
            if isinstance(event, types):
                try:
                    callback(event)
                except Exception:
                    log.exception(
                        "event subscriber %r failed on %s", callback, type(event).__name__
                    )
