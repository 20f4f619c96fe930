"""Helpers that play both sides of the Golem flow with raw client calls, for integration tests.

Each offer carries a unique ``golem.node.id.name`` and each demand constrains on it, so tests that
share one daemon never match each other's offers.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from golem_actors.yagna import YagnaClient
from golem_actors.yagna.models import AgreementEvent, Proposal, ProposalEvent
from tests.waiting import wait_for

PLATFORM = "erc20-holesky-tglm"


def offer_properties(provider_id: str, name: str) -> dict[str, Any]:
    return {
        "golem.node.id.name": name,
        "golem.runtime.name": "vm",
        "golem.inf.cpu.threads": 2,
        "golem.inf.mem.gib": 4.0,
        "golem.com.scheme": "payu",
        "golem.com.pricing.model": "linear",
        "golem.com.pricing.model.linear.coeffs": [0.001, 0.002, 0.01],
        "golem.com.usage.vector": ["golem.usage.duration_sec", "golem.usage.cpu_sec"],
        f"golem.com.payment.platform.{PLATFORM}.address": provider_id,
        "golem.com.payment.protocol.version": "3",
        "golem.srv.caps.multi-activity": True,
    }


def demand_properties(requestor_id: str) -> dict[str, Any]:
    expiration = int((time.time() + 1800) * 1000)
    return {
        "golem.srv.comp.expiration": expiration,
        "golem.com.payment.chosen-platform": PLATFORM,
        f"golem.com.payment.platform.{PLATFORM}.address": requestor_id,
        "golem.com.payment.protocol.version": "3",
    }


@dataclass
class Negotiation:
    demand_id: str
    offer_id: str
    provider_name: str
    agreement_id: str = ""


def next_proposal(
    poll: Callable[[], list[Any]], accept: Callable[[Proposal], bool], what: str
) -> Proposal:
    def probe() -> Proposal | None:
        for event in poll():
            if isinstance(event, ProposalEvent) and accept(event.proposal):
                return event.proposal
        return None

    return wait_for(what, probe)


def negotiate(
    requestor: YagnaClient, provider: YagnaClient, requestor_id: str, provider_id: str
) -> Negotiation:
    """Offer, demand, counter both ways, agreement created, confirmed, approved."""
    name = f"test-provider-{uuid.uuid4().hex[:8]}"
    offer_props = offer_properties(provider_id, name)
    offer_id = provider.market.subscribe_offer(offer_props, "(golem.srv.comp.expiration>0)")
    demand_props = demand_properties(requestor_id)
    constraints = f"(&(golem.node.id.name={name})(golem.com.payment.protocol.version>1))"
    demand_id = requestor.market.subscribe_demand(demand_props, constraints)
    neg = Negotiation(demand_id, offer_id, name)

    def demand_events() -> list[Any]:
        return requestor.market.demand_events(demand_id, timeout=1)

    def offer_events() -> list[Any]:
        return provider.market.offer_events(offer_id, timeout=1)

    initial = next_proposal(demand_events, lambda p: p.issuer_id == provider_id, "the offer")
    assert initial.state == "Initial"
    ours = requestor.market.counter_proposal_demand(
        demand_id, initial.proposal_id, demand_props, constraints
    )
    draft = next_proposal(offer_events, lambda p: p.state == "Draft", "the requestor's counter")
    provider.market.counter_proposal_offer(
        offer_id, draft.proposal_id, offer_props, "(golem.srv.comp.expiration>0)"
    )
    final = next_proposal(
        demand_events, lambda p: p.prev_proposal_id == ours, "the provider's counter"
    )
    assert final.state == "Draft"
    valid_to = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    neg.agreement_id = requestor.market.create_agreement(final.proposal_id, valid_to)
    requestor.market.confirm_agreement(neg.agreement_id)

    def agreement_proposed() -> str | None:
        for event in offer_events():
            if isinstance(event, AgreementEvent):
                return event.agreement.agreement_id
        return None

    assert wait_for("the agreement event", agreement_proposed) == neg.agreement_id
    approver = threading.Thread(
        target=provider.market.approve_agreement, args=(neg.agreement_id,), daemon=True
    )
    approver.start()
    requestor.market.wait_for_approval(neg.agreement_id, timeout=15)
    approver.join(20)
    return neg


@contextmanager
def provider_activity_loop(provider: YagnaClient) -> Iterator[list[str]]:
    """Answer CreateActivity with Initialized and DestroyActivity with Terminated, over REST."""
    handled: list[str] = []
    stop = threading.Event()

    def loop() -> None:
        after = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
        while not stop.is_set():
            for event in provider.activity.provider_events(after, timeout=1):
                after = max(after, event.event_date)
                state = "Initialized" if event.kind == "CreateActivity" else "Terminated"
                provider.activity.set_state(event.activity_id, state)
                handled.append(f"{event.kind}:{event.activity_id}")

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield handled
    finally:
        stop.set()
        thread.join(10)
