"""Market models: demands, offers, proposals, agreements and their events."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from golem_actors.yagna.models._base import Model, ModelError

__all__ = [
    "Agreement",
    "AgreementApprovedEvent",
    "AgreementCancelledEvent",
    "AgreementEvent",
    "AgreementOperationEvent",
    "AgreementRejectedEvent",
    "AgreementTerminatedEvent",
    "Demand",
    "MarketEvent",
    "Offer",
    "PropertyQueryEvent",
    "Proposal",
    "ProposalEvent",
    "ProposalRejectedEvent",
    "UnknownMarketEvent",
    "parse_agreement_event",
    "parse_market_event",
]


@dataclass(frozen=True)
class Demand(Model):
    properties: dict[str, Any]
    constraints: str
    demand_id: str | None = None
    requestor_id: str | None = None
    timestamp: dt.datetime | None = None


@dataclass(frozen=True)
class Offer(Model):
    properties: dict[str, Any]
    constraints: str
    offer_id: str | None = None
    provider_id: str | None = None
    timestamp: dt.datetime | None = None


@dataclass(frozen=True)
class Proposal(Model):
    """A proposal as one side sees the other's: ``Initial`` (a match) or ``Draft`` (a counter)."""

    properties: dict[str, Any]
    constraints: str
    proposal_id: str
    issuer_id: str
    state: str
    timestamp: dt.datetime | None = None
    prev_proposal_id: str | None = None


@dataclass(frozen=True)
class Agreement(Model):
    agreement_id: str
    demand: Demand
    offer: Offer
    valid_to: dt.datetime
    state: str
    timestamp: dt.datetime | None = None
    approved_date: dt.datetime | None = None
    app_session_id: str | None = None
    proposed_signature: str | None = None
    approved_signature: str | None = None
    committed_signature: str | None = None

    @property
    def provider_id(self) -> str | None:
        return self.offer.provider_id

    @property
    def requestor_id(self) -> str | None:
        return self.demand.requestor_id


# -- events on a demand's or offer's subscription -------------------------------------------


@dataclass(frozen=True)
class MarketEvent(Model):
    event_date: dt.datetime


@dataclass(frozen=True)
class ProposalEvent(MarketEvent):
    proposal: Proposal


@dataclass(frozen=True)
class ProposalRejectedEvent(MarketEvent):
    proposal_id: str
    reason: dict[str, Any] | None = None


@dataclass(frozen=True)
class PropertyQueryEvent(MarketEvent):
    property_query: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AgreementEvent(MarketEvent):
    """On a provider's offer subscription: a requestor proposes this agreement."""

    agreement: Agreement


@dataclass(frozen=True)
class UnknownMarketEvent(MarketEvent):
    """An event type this client does not know; its body is in ``extra``."""

    event_type: str


_MARKET_EVENTS: dict[str, type[MarketEvent]] = {
    "ProposalEvent": ProposalEvent,
    "ProposalRejectedEvent": ProposalRejectedEvent,
    "PropertyQueryEvent": PropertyQueryEvent,
    "AgreementEvent": AgreementEvent,
}


def parse_market_event(data: Any) -> MarketEvent:
    """Parse one item of ``GET /demands/{id}/events`` or ``GET /offers/{id}/events``."""
    if not isinstance(data, dict) or "eventType" not in data:
        raise ModelError(f"market event: expected an object with 'eventType', got {data!r}")
    cls = _MARKET_EVENTS.get(data["eventType"])
    if cls is None:
        return UnknownMarketEvent.from_json(data)
    return cls.from_json(data)  # eventType stays in extra, so to_json writes it back


# -- agreement operation events (GET /agreementEvents) -------------------------------------


@dataclass(frozen=True)
class AgreementOperationEvent(Model):
    event_date: dt.datetime
    agreement_id: str
    event_type: str


@dataclass(frozen=True)
class AgreementApprovedEvent(AgreementOperationEvent):
    pass


@dataclass(frozen=True)
class AgreementRejectedEvent(AgreementOperationEvent):
    reason: dict[str, Any] | None = None


@dataclass(frozen=True)
class AgreementCancelledEvent(AgreementOperationEvent):
    reason: dict[str, Any] | None = None


@dataclass(frozen=True)
class AgreementTerminatedEvent(AgreementOperationEvent):
    """``terminator`` is unreliable when both sides share one yagna: it then says Provider."""

    terminator: str | None = None
    signature: str | None = None
    reason: dict[str, Any] | None = None


_AGREEMENT_EVENTS: dict[str, type[AgreementOperationEvent]] = {
    "AgreementApprovedEvent": AgreementApprovedEvent,
    "AgreementRejectedEvent": AgreementRejectedEvent,
    "AgreementCancelledEvent": AgreementCancelledEvent,
    "AgreementTerminatedEvent": AgreementTerminatedEvent,
}


def parse_agreement_event(data: Any) -> AgreementOperationEvent:
    """Parse one item of ``GET /agreementEvents``; unknown types stay generic."""
    if not isinstance(data, dict) or "eventType" not in data:
        raise ModelError(f"agreement event: expected an object with 'eventType', got {data!r}")
    cls = _AGREEMENT_EVENTS.get(data["eventType"], AgreementOperationEvent)
    return cls.from_json(data)
