"""The market API round-tripped against the real yagna: both sides, every call."""

from __future__ import annotations

import datetime as dt

import pytest

from golem_actors.yagna import YagnaClient, YagnaGoneError, YagnaNotFoundError
from golem_actors.yagna.models import (
    AgreementApprovedEvent,
    AgreementEvent,
    AgreementTerminatedEvent,
)
from tests.conftest import RealYagna
from tests.waiting import wait_for
from tests.yagna.flow import demand_properties, negotiate, next_proposal, offer_properties

pytestmark = pytest.mark.yagna


def test_demand_subscribe_list_events_unsubscribe(requestor: YagnaClient, real_yagna: RealYagna):
    props = demand_properties(real_yagna.requestor_id.node_id)
    demand_id = requestor.market.subscribe_demand(props, "(golem.node.id.name=nobody-here)")
    listed = {d.demand_id: d for d in requestor.market.demands()}
    assert (
        listed[demand_id].properties["golem.srv.comp.expiration"]
        == props["golem.srv.comp.expiration"]
    )
    assert listed[demand_id].requestor_id == real_yagna.requestor_id.node_id
    assert requestor.market.demand_events(demand_id, timeout=0.5) == []
    requestor.market.unsubscribe_demand(demand_id)
    with pytest.raises(YagnaNotFoundError) as err:
        requestor.market.demand_events(demand_id, timeout=0.5)
    assert err.value.status == 404
    assert "events" in err.value.path


def test_offer_subscribe_list_unsubscribe(provider: YagnaClient, real_yagna: RealYagna):
    props = offer_properties(real_yagna.provider_id.node_id, "listed-offer")
    offer_id = provider.market.subscribe_offer(props, "(golem.srv.comp.expiration>0)")
    offers = {o.offer_id: o for o in provider.market.offers()}
    assert offers[offer_id].provider_id == real_yagna.provider_id.node_id
    assert offers[offer_id].properties["golem.node.id.name"] == "listed-offer"
    provider.market.unsubscribe_offer(offer_id)
    assert offer_id not in {o.offer_id for o in provider.market.offers()}


def test_full_negotiation_agreement_and_termination(
    requestor: YagnaClient, provider: YagnaClient, real_yagna: RealYagna
):
    neg = negotiate(
        requestor, provider, real_yagna.requestor_id.node_id, real_yagna.provider_id.node_id
    )
    agreement = requestor.market.get_agreement(neg.agreement_id)
    assert agreement.state == "Approved"
    assert agreement.provider_id == real_yagna.provider_id.node_id
    assert agreement.offer.properties["golem.node.id.name"] == neg.provider_name
    assert neg.agreement_id in {a["id"] for a in requestor.market.agreements()}

    def approved() -> bool | None:
        events = requestor.market.agreement_events(timeout=1)
        hit = [e for e in events if e.agreement_id == neg.agreement_id]
        return True if any(isinstance(e, AgreementApprovedEvent) for e in hit) else None

    wait_for("AgreementApprovedEvent", approved)

    requestor.market.terminate_agreement(neg.agreement_id, "done", code="Success")
    assert requestor.market.get_agreement(neg.agreement_id).state == "Terminated"
    after = agreement.timestamp

    def terminated() -> AgreementTerminatedEvent | None:
        nonlocal after
        for event in requestor.market.agreement_events(after=after, timeout=1):
            after = event.event_date
            if (
                isinstance(event, AgreementTerminatedEvent)
                and event.agreement_id == neg.agreement_id
            ):
                return event
        return None

    event = wait_for("AgreementTerminatedEvent", terminated)
    assert event.reason is not None
    assert event.reason.get("golem.requestor.code") == "Success"
    with pytest.raises(YagnaGoneError):  # a second terminate: 410
        requestor.market.terminate_agreement(neg.agreement_id, "again")
    requestor.market.unsubscribe_demand(neg.demand_id)
    provider.market.unsubscribe_offer(neg.offer_id)


def test_reject_proposal_reaches_the_provider(
    requestor: YagnaClient, provider: YagnaClient, real_yagna: RealYagna
):
    name = "rejected-offer"
    offer_id = provider.market.subscribe_offer(
        offer_properties(real_yagna.provider_id.node_id, name), "(golem.srv.comp.expiration>0)"
    )
    demand_id = requestor.market.subscribe_demand(
        demand_properties(real_yagna.requestor_id.node_id), f"(golem.node.id.name={name})"
    )
    initial = next_proposal(
        lambda: requestor.market.demand_events(demand_id, timeout=1), lambda p: True, "offer"
    )
    fetched = requestor.market.get_proposal_demand(demand_id, initial.proposal_id)
    assert fetched.proposal_id == initial.proposal_id
    assert fetched.properties["golem.node.id.name"] == name
    requestor.market.reject_proposal_demand(demand_id, initial.proposal_id, "too expensive")
    requestor.market.unsubscribe_demand(demand_id)
    provider.market.unsubscribe_offer(offer_id)


def test_provider_can_reject_an_agreement(
    requestor: YagnaClient, provider: YagnaClient, real_yagna: RealYagna
):
    """The provider's reject ends the handshake: the requestor's wait fails with 410."""
    name = "rejecting-provider"
    offer_props = offer_properties(real_yagna.provider_id.node_id, name)
    offer_id = provider.market.subscribe_offer(offer_props, "(golem.srv.comp.expiration>0)")
    demand_props = demand_properties(real_yagna.requestor_id.node_id)
    constraints = f"(golem.node.id.name={name})"
    demand_id = requestor.market.subscribe_demand(demand_props, constraints)
    initial = next_proposal(
        lambda: requestor.market.demand_events(demand_id, timeout=1), lambda p: True, "offer"
    )
    ours = requestor.market.counter_proposal_demand(
        demand_id, initial.proposal_id, demand_props, constraints
    )
    draft = next_proposal(
        lambda: provider.market.offer_events(offer_id, timeout=1), lambda p: True, "counter"
    )
    fetched = provider.market.get_proposal_offer(offer_id, draft.proposal_id)
    assert fetched.state == "Draft"
    provider.market.counter_proposal_offer(
        offer_id, draft.proposal_id, offer_props, "(golem.srv.comp.expiration>0)"
    )
    final = next_proposal(
        lambda: requestor.market.demand_events(demand_id, timeout=1),
        lambda p: p.prev_proposal_id == ours,
        "provider counter",
    )
    agreement_id = requestor.market.create_agreement(
        final.proposal_id, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    )
    requestor.market.confirm_agreement(agreement_id)

    def proposed() -> str | None:
        for event in provider.market.offer_events(offer_id, timeout=1):
            if isinstance(event, AgreementEvent):
                return event.agreement.agreement_id
        return None

    assert wait_for("agreement event", proposed) == agreement_id
    provider.market.reject_agreement(agreement_id, "busy")
    with pytest.raises(YagnaGoneError):
        requestor.market.wait_for_approval(agreement_id, timeout=5)
    assert requestor.market.get_agreement(agreement_id).state == "Rejected"
    requestor.market.unsubscribe_demand(demand_id)
    provider.market.unsubscribe_offer(offer_id)
