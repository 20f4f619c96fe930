"""Market API (``/market-api/v1``): demands and offers, proposals both ways, agreements."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from golem_actors.yagna.models import (
    Agreement,
    AgreementOperationEvent,
    Demand,
    MarketEvent,
    Offer,
    Proposal,
    format_timestamp,
    parse_agreement_event,
    parse_market_event,
)
from golem_actors.yagna.transport import Transport, check_max_events

__all__ = ["MarketApi"]

_API = "market"


def _reason(message: str | None, code: str | None, extra: Mapping[str, Any] | None) -> Any:
    if message is None and code is None and not extra:
        return None
    reason: dict[str, Any] = {"message": message or ""}
    if code is not None:
        reason["golem.requestor.code"] = code
    reason.update(extra or {})
    return reason


class MarketApi:
    """Requestor and provider endpoints of the market API."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._t.request(_API, method, path, **kwargs)

    # -- requestor: demands ------------------------------------------------------------------

    def subscribe_demand(self, properties: Mapping[str, Any], constraints: str) -> str:
        """Publish a demand; returns its subscription id."""
        body = {"properties": dict(properties), "constraints": constraints}
        result: str = self._call("POST", "/demands", json=body)
        return result

    def demands(self) -> list[Demand]:
        return [Demand.from_json(d) for d in self._call("GET", "/demands")]

    def unsubscribe_demand(self, subscription_id: str) -> None:
        self._call("DELETE", f"/demands/{subscription_id}")

    def demand_events(
        self, subscription_id: str, *, timeout: float = 20.0, max_events: int = 100
    ) -> list[MarketEvent]:
        """Long-poll the demand's events (offers matched, counters, rejections)."""
        data = self._call(
            "GET",
            f"/demands/{subscription_id}/events",
            params={"maxEvents": check_max_events(max_events)},
            poll_timeout=timeout,
        )
        return [parse_market_event(e) for e in data or []]

    def counter_proposal_demand(
        self,
        subscription_id: str,
        proposal_id: str,
        properties: Mapping[str, Any],
        constraints: str,
    ) -> str:
        """Answer a provider's proposal with our demand; returns our new proposal id."""
        body = {"properties": dict(properties), "constraints": constraints}
        result: str = self._call(
            "POST", f"/demands/{subscription_id}/proposals/{proposal_id}", json=body
        )
        return result

    def get_proposal_demand(self, subscription_id: str, proposal_id: str) -> Proposal:
        return Proposal.from_json(
            self._call("GET", f"/demands/{subscription_id}/proposals/{proposal_id}")
        )

    def reject_proposal_demand(
        self, subscription_id: str, proposal_id: str, message: str = ""
    ) -> None:
        self._call(
            "POST",
            f"/demands/{subscription_id}/proposals/{proposal_id}/reject",
            json={"message": message},
        )

    # -- requestor: agreements ---------------------------------------------------------------

    def create_agreement(
        self, proposal_id: str, valid_to: dt.datetime, *, app_session_id: str | None = None
    ) -> str:
        """Create an agreement from the provider's last proposal; returns the agreement id."""
        body: dict[str, Any] = {"proposalId": proposal_id, "validTo": format_timestamp(valid_to)}
        if app_session_id is not None:
            body["appSessionId"] = app_session_id
        result: str = self._call("POST", "/agreements", json=body)
        return result

    def confirm_agreement(self, agreement_id: str, *, app_session_id: str | None = None) -> None:
        self._call(
            "POST",
            f"/agreements/{agreement_id}/confirm",
            params={"appSessionId": app_session_id},
        )

    def wait_for_approval(self, agreement_id: str, *, timeout: float = 15.0) -> None:
        """Block until the provider approves; ``YagnaGoneError`` if it never will (rejected...)."""
        self._call(
            "POST",
            f"/agreements/{agreement_id}/wait",
            poll_timeout=timeout,
            idempotent=True,  # waiting twice changes nothing
        )

    def cancel_agreement(self, agreement_id: str, message: str = "") -> None:
        self._call("POST", f"/agreements/{agreement_id}/cancel", json=_reason(message, None, None))

    def terminate_agreement(
        self,
        agreement_id: str,
        message: str = "",
        *,
        code: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Terminate; ``code`` is ``golem.requestor.code`` (``Success``, ``Cancelled``...)."""
        self._call(
            "POST",
            f"/agreements/{agreement_id}/terminate",
            json=_reason(message, code, extra) or {"message": ""},
        )

    def get_agreement(self, agreement_id: str) -> Agreement:
        return Agreement.from_json(self._call("GET", f"/agreements/{agreement_id}"))

    def agreements(
        self, *, app_session_id: str | None = None, state: str | None = None
    ) -> list[dict[str, Any]]:
        """Agreement list entries (``id``, ``timestamp``, ``approvedDate``, ``role``)."""
        params = {"appSessionId": app_session_id, "state": state}
        result: list[dict[str, Any]] = self._call("GET", "/agreements", params=params)
        return result

    def agreement_events(
        self,
        *,
        after: dt.datetime | None = None,
        timeout: float = 20.0,
        max_events: int = 100,
        app_session_id: str | None = None,
    ) -> list[AgreementOperationEvent]:
        """Long-poll approvals, rejections, cancellations and terminations (both sides)."""
        data = self._call(
            "GET",
            "/agreementEvents",
            params={
                "afterTimestamp": format_timestamp(after) if after else None,
                "maxEvents": check_max_events(max_events),
                "appSessionId": app_session_id,
            },
            poll_timeout=timeout,
        )
        return [parse_agreement_event(e) for e in data or []]

    # -- provider: offers, proposals, approval ----------------------------------------------

    def subscribe_offer(self, properties: Mapping[str, Any], constraints: str) -> str:
        body = {"properties": dict(properties), "constraints": constraints}
        result: str = self._call("POST", "/offers", json=body)
        return result

    def offers(self) -> list[Offer]:
        return [Offer.from_json(o) for o in self._call("GET", "/offers")]

    def unsubscribe_offer(self, subscription_id: str) -> None:
        self._call("DELETE", f"/offers/{subscription_id}")

    def offer_events(
        self, subscription_id: str, *, timeout: float = 20.0, max_events: int = 100
    ) -> list[MarketEvent]:
        data = self._call(
            "GET",
            f"/offers/{subscription_id}/events",
            params={"maxEvents": check_max_events(max_events)},
            poll_timeout=timeout,
        )
        return [parse_market_event(e) for e in data or []]

    def counter_proposal_offer(
        self,
        subscription_id: str,
        proposal_id: str,
        properties: Mapping[str, Any],
        constraints: str,
    ) -> str:
        body = {"properties": dict(properties), "constraints": constraints}
        result: str = self._call(
            "POST", f"/offers/{subscription_id}/proposals/{proposal_id}", json=body
        )
        return result

    def get_proposal_offer(self, subscription_id: str, proposal_id: str) -> Proposal:
        return Proposal.from_json(
            self._call("GET", f"/offers/{subscription_id}/proposals/{proposal_id}")
        )

    def reject_proposal_offer(
        self, subscription_id: str, proposal_id: str, message: str = ""
    ) -> None:
        self._call(
            "POST",
            f"/offers/{subscription_id}/proposals/{proposal_id}/reject",
            json={"message": message},
        )

    def approve_agreement(
        self, agreement_id: str, *, timeout: float = 10.0, app_session_id: str | None = None
    ) -> None:
        self._call(
            "POST",
            f"/agreements/{agreement_id}/approve",
            params={"appSessionId": app_session_id},
            poll_timeout=timeout,
        )

    def reject_agreement(self, agreement_id: str, message: str = "") -> None:
        self._call("POST", f"/agreements/{agreement_id}/reject", json={"message": message})
