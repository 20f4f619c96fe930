"""MarketActor alone, against a scripted market API: demands published, offers scored and
countered or rejected, drafts handed to requesters (never from an excluded provider), demands
published again when a subscription fails, expires or is used up, and unsubscribed on stop."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pykka
import pytest

from golem_actors.actors.market import (
    CancelRequest,
    MarketActor,
    ProposalGranted,
    ProviderFailed,
    PublishDemand,
    RequestProposal,
)
from golem_actors.events import DemandPublished, OfferReceived, ProposalCountered, ProposalRejected
from golem_actors.policy.offer_pool import NEGOTIATION_PATIENCE_S
from golem_actors.yagna.testing import MockRequest, MockResponse
from tests.actors.actor_harness import (
    WAIT_S,
    Inbox,
    LongPoll,
    Mailbox,
    Rig,
    rig_running,
    settle,
    timestamp,
    until,
)

DEMANDS = "/market-api/v1/demands"
KEY = "svc:1"
PROPERTIES = {"golem.srv.comp.expiration": 1}
CONSTRAINTS = "(golem.runtime.name=vm)"


def proposal(provider: str, state: str, props: dict[str, Any]) -> dict[str, Any]:
    """A provider's proposal event: its offer (``Initial``, id ``offer-<provider>``) or its
    answer to our counter (``Draft``; the scripted yagna numbers ours ``ours-offer-...``)."""
    body = {
        "properties": {"golem.node.id.name": f"name-{provider}", **props},
        "constraints": "",
        "proposalId": f"{'offer' if state == 'Initial' else 'draft'}-{provider}",
        "issuerId": provider,
        "state": state,
    }
    if state == "Draft":
        body["prevProposalId"] = f"ours-offer-{provider}"
    return {"eventType": "ProposalEvent", "eventDate": timestamp(), "proposal": body}


def initial(provider: str, **props: Any) -> dict[str, Any]:
    return proposal(provider, "Initial", props)


def draft(provider: str, **props: Any) -> dict[str, Any]:
    return proposal(provider, "Draft", props)


class Market:
    """The market API as the market actor sees it: numbered subscriptions, each with its own
    event long-poll; counters answered with ``ours-<proposal>``."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self._ids = itertools.count(1)
        self._polls: dict[str, LongPoll] = {}
        self._lock = threading.Lock()
        rig.route("POST", DEMANDS, handler=self._subscribe)
        rig.route("DELETE", f"{DEMANDS}/[^/]+", status=204)
        rig.route("GET", f"{DEMANDS}/([^/]+)/events", handler=self._events)
        rig.route("POST", f"{DEMANDS}/[^/]+/proposals/[^/]+", handler=self._counter)
        rig.route("POST", f"{DEMANDS}/[^/]+/proposals/[^/]+/reject", status=204)

    def poll(self, demand_id: str) -> LongPoll:
        with self._lock:
            if demand_id not in self._polls:
                self._polls[demand_id] = self.rig.long_poll(f"{DEMANDS}/{demand_id}/events")
            return self._polls[demand_id]

    def _subscribe(self, _: MockRequest) -> MockResponse:
        return MockResponse(201, f"demand-{next(self._ids)}")

    def _events(self, request: MockRequest) -> MockResponse:
        return self.poll(request.path.split("/")[-2])(request)

    @staticmethod
    def _counter(request: MockRequest) -> MockResponse:
        return MockResponse(201, f"ours-{request.path.rsplit('/', 1)[1]}")

    def offer(self, demand_id: str, *events: dict[str, Any]) -> None:
        """Deliver ``events`` to one poll of ``demand_id``, and wait until the actor handled
        them: it polls again after handling a batch, unless it dropped the subscription."""
        poll = self.poll(demand_id)
        poll.push(*events)
        until(
            f"{demand_id}'s events handled",
            lambda: poll.handled() or bool(self.rig.calls("DELETE", f"{DEMANDS}/{demand_id}")),
        )

    def subscribed(self, count: int = 1) -> list[MockRequest]:
        return self.rig.wait_calls("POST", DEMANDS, count)

    def counters(self) -> list[MockRequest]:
        return self.rig.calls("POST", f"{DEMANDS}/[^/]+/proposals/[^/]+")

    def rejections(self) -> list[MockRequest]:
        return self.rig.calls("POST", f"{DEMANDS}/[^/]+/proposals/[^/]+/reject")


def score(props: Mapping[str, Any], _provider: str) -> float | str:
    """Offers name their own score, or why they are refused."""
    if "refuse" in props:
        return str(props["refuse"])
    return float(props.get("score", 1.0))


def counter(props: Mapping[str, Any]) -> dict[str, Any] | str:
    if "uncounterable" in props:
        return "no common payment platform"
    return {**PROPERTIES, "countered": props["golem.node.id.name"]}


def check(_ours: Mapping[str, Any], theirs: Mapping[str, Any], _offer: Mapping[str, Any]) -> Any:
    return "the provider changed the price" if "changed" in theirs else None


@pytest.fixture
def rig() -> Iterator[Rig]:
    with rig_running() as rig:
        yield rig


@pytest.fixture
def market(rig: Rig) -> Market:
    return Market(rig)


@pytest.fixture
def actor(rig: Rig, market: Market) -> pykka.ActorRef[Any]:
    ref = MarketActor.start(rig.rt, poll_s=5.0)
    ref.tell(PublishDemand(KEY, PROPERTIES, CONSTRAINTS, score, counter, check))
    market.subscribed()
    return ref


def request(
    actor: pykka.ActorRef[Any], request_id: int = 1, *, exclude: frozenset[str] = frozenset()
) -> tuple[pykka.ActorRef[Any], Mailbox]:
    ref, box = Inbox.open()
    actor.tell(RequestProposal(KEY, request_id, ref, exclude=exclude, group="svc"))
    return ref, box


def nothing_granted(actor: pykka.ActorRef[Any], requester: pykka.ActorRef[Any], box: Mailbox):
    """The market handled everything told to it so far, and granted nothing."""
    settle(actor)
    settle(requester)
    return box.of(ProposalGranted) == []


# -- demands ----------------------------------------------------------------------------------


def test_a_demand_is_published_once_and_its_offers_polled(rig, market, actor):
    actor.tell(PublishDemand(KEY, PROPERTIES, CONSTRAINTS, score, counter, check))  # again
    published = rig.wait_event(DemandPublished)
    poll = market.poll("demand-1")
    until("the first poll", lambda: poll.polls >= 1)
    settle(actor)
    subscribes = rig.calls("POST", DEMANDS)
    assert [c.body for c in subscribes] == [{"properties": PROPERTIES, "constraints": CONSTRAINTS}]
    assert (published.demand_id, published.key) == ("demand-1", KEY)
    assert rig.calls("GET", f"{DEMANDS}/demand-1/events")[0].query["timeout"] == "5"


def test_an_offer_is_scored_and_countered_with_our_properties(rig, market, actor):
    market.offer("demand-1", initial("0xa", score=3.5))
    [countered] = rig.wait_calls("POST", f"{DEMANDS}/demand-1/proposals/offer-0xa")
    assert countered.body == {
        "properties": {**PROPERTIES, "countered": "name-0xa"},
        "constraints": CONSTRAINTS,
    }
    offered = rig.wait_event(OfferReceived)
    assert (offered.provider_id, offered.provider_name, offered.score) == ("0xa", "name-0xa", 3.5)
    answered = rig.wait_event(ProposalCountered)
    assert (answered.provider_id, answered.proposal_id) == ("0xa", "ours-offer-0xa")
    assert market.rejections() == []


@pytest.mark.parametrize(
    ("props", "reason"),
    [
        ({"refuse": "too expensive"}, "too expensive"),  # the scorer says no
        ({"uncounterable": True}, "no common payment platform"),  # no counter can be made
    ],
    ids=["scorer", "counter"],
)
def test_an_offer_we_cannot_take_is_rejected_not_countered(rig, market, actor, props, reason):
    market.offer("demand-1", initial("0xa", **props))
    [rejected] = rig.wait_calls("POST", f"{DEMANDS}/demand-1/proposals/offer-0xa/reject")
    assert rejected.body == {"message": reason}
    assert rig.wait_event(ProposalRejected).reason == reason
    assert market.counters() == []
    requester, box = request(actor)
    assert nothing_granted(actor, requester, box)


def test_a_draft_failing_the_check_is_rejected_and_never_granted(rig, market, actor):
    market.offer("demand-1", initial("0xa"))
    rig.wait_event(ProposalCountered)
    market.offer("demand-1", draft("0xa", changed=True))
    [rejected] = rig.wait_calls("POST", f"{DEMANDS}/demand-1/proposals/draft-0xa/reject")
    assert rejected.body == {"message": "the provider changed the price"}
    requester, box = request(actor)
    assert nothing_granted(actor, requester, box)


def test_a_provider_rejecting_our_counter_is_dropped(rig, market, actor):
    market.offer("demand-1", initial("0xa"))
    rig.wait_event(ProposalCountered)
    market.offer(
        "demand-1",
        {
            "eventType": "ProposalRejectedEvent",
            "eventDate": timestamp(),
            "proposalId": "ours-offer-0xa",
            "reason": {"message": "busy"},
        },
    )
    assert rig.wait_event(ProposalRejected).reason == "busy"
    market.offer("demand-1", draft("0xa"))  # too late: its negotiation is over
    requester, box = request(actor)
    assert nothing_granted(actor, requester, box)


# -- requests ---------------------------------------------------------------------------------


def test_a_draft_is_handed_to_the_requester_that_waited_for_it(rig, market, actor):
    requester, box = request(actor, 7)
    market.offer("demand-1", initial("0xa", score=2.0))
    rig.wait_event(ProposalCountered)
    assert nothing_granted(actor, requester, box)
    market.offer("demand-1", draft("0xa"))
    granted = box.one(ProposalGranted)
    assert granted.request_id == 7
    assert (granted.provider_id, granted.provider_name) == ("0xa", "name-0xa")
    assert granted.proposal.proposal_id == "draft-0xa"
    assert granted.offer["score"] == 2.0  # the provider's offer, for prices and the payload


def ready(market: Market, rig: Rig, *scores: tuple[str, float]) -> None:
    """Providers with drafts waiting on demand-1."""
    market.offer("demand-1", *(initial(p, score=s) for p, s in scores))
    until("every counter", lambda: len(market.counters()) == len(scores))
    until("every counter answered", lambda: len(rig.events(ProposalCountered)) == len(scores))
    market.offer("demand-1", *(draft(p) for p, _ in scores))


def test_the_best_scored_draft_is_granted_first_and_each_draft_once(rig, market, actor):
    ready(market, rig, ("0xa", 1.0), ("0xb", 3.0))
    _, first = request(actor, 1)
    _, second = request(actor, 2)
    assert first.one(ProposalGranted).provider_id == "0xb"
    assert second.one(ProposalGranted).provider_id == "0xa"


def test_an_excluded_provider_is_never_granted(rig, market, actor):
    ready(market, rig, ("0xa", 1.0), ("0xb", 3.0))
    _, box = request(actor, exclude=frozenset({"0xb"}))
    assert box.one(ProposalGranted).provider_id == "0xa"
    requester, again = request(actor, 2, exclude=frozenset({"0xb"}))
    assert nothing_granted(actor, requester, again)  # 0xb's draft waits for another requester


@pytest.mark.parametrize(("failed", "expected"), [(False, "0xb"), (True, "0xa")])
def test_a_provider_that_failed_sinks_in_the_ranking(rig, market, actor, failed, expected):
    ready(market, rig, ("0xa", 1.0), ("0xb", 1.5))
    if failed:
        actor.tell(ProviderFailed("0xb"))  # halves its score: 0.75 < 1.0
    _, box = request(actor)
    assert box.one(ProposalGranted).provider_id == expected


@pytest.mark.parametrize("answers", [True, False], ids=["answers", "silent"])
def test_a_provider_still_negotiating_is_waited_for_to_spread_instances(
    rig, market, actor, answers
):
    ready(market, rig, ("0xa", 1.0))
    _, first = request(actor, 1)
    assert first.one(ProposalGranted).provider_id == "0xa"  # the group now runs on 0xa
    requester, second = request(actor, 2)
    market.subscribed(2)  # 0xa's only chain is used: a fresh subscription
    market.offer("demand-2", initial("0xa", score=1.0), initial("0xb", score=1.0))
    until("both counters answered", lambda: len(rig.events(ProposalCountered)) == 3)
    market.offer("demand-2", draft("0xa"))
    # 0xa is ready but already hosts one of the group; 0xb, still negotiating, is waited for.
    rig.wait_timer(actor, f"serve:{KEY}")
    assert nothing_granted(actor, requester, second)
    if answers:
        market.offer("demand-2", draft("0xb"))
        assert second.one(ProposalGranted).provider_id == "0xb"
    else:  # past its patience, 0xb is not counted on: settle for 0xa again
        rig.advance(NEGOTIATION_PATIENCE_S)
        assert second.one(ProposalGranted).provider_id == "0xa"


def test_a_cancelled_request_is_not_served_and_its_draft_goes_to_the_next(rig, market, actor):
    requester, cancelled = request(actor, 1)
    actor.tell(CancelRequest(KEY, 1))
    ready(market, rig, ("0xa", 1.0))
    assert nothing_granted(actor, requester, cancelled)
    _, box = request(actor, 2)
    assert box.one(ProposalGranted).proposal.proposal_id == "draft-0xa"


# -- subscriptions ----------------------------------------------------------------------------


def test_a_failed_publication_is_retried_after_its_backoff(rig, market):
    rig.route("POST", DEMANDS, status=500, json={"message": "busy"}, times=1)  # first, once
    ref = MarketActor.start(rig.rt, poll_s=5.0)
    ref.tell(PublishDemand(KEY, PROPERTIES, CONSTRAINTS, score, counter, check))
    rig.wait_timer(ref, f"resubscribe:{KEY}")
    assert rig.advance(1.9) == 0  # no timer fell due
    assert len(rig.calls("POST", DEMANDS)) == 1
    assert rig.advance(0.1) == 1
    market.subscribed(2)
    assert rig.wait_event(DemandPublished).demand_id == "demand-1"


def test_an_expired_subscription_is_published_again(rig, market, actor):
    poll = market.poll("demand-1")
    until("the first poll", lambda: poll.polls >= 1)
    poll.fail(404, "subscription expired")
    market.subscribed(2)
    until("demand-2 polled", lambda: market.poll("demand-2").polls >= 1)
    assert rig.calls("DELETE", f"{DEMANDS}/demand-1") == []  # yagna already forgot it


def test_a_used_up_subscription_is_dropped_and_the_demand_published_again(rig, market, actor):
    ready(market, rig, ("0xa", 1.0))
    _, first = request(actor, 1)
    first.one(ProposalGranted)
    rig.wait_calls("DELETE", f"{DEMANDS}/demand-1")  # its only draft made an agreement
    _, second = request(actor, 2)
    market.subscribed(2)  # a fresh chain: yagna never lets a proposal chain branch
    market.offer("demand-2", initial("0xa"))
    until("the counter on demand-2", lambda: len(rig.events(ProposalCountered)) == 2)
    market.offer("demand-2", draft("0xa"))
    granted = second.one(ProposalGranted)
    assert (granted.request_id, granted.provider_id) == (2, "0xa")


def test_stopping_unsubscribes_every_live_demand(rig, market, actor):
    actor.tell(PublishDemand("other", {"b": 1}, CONSTRAINTS, score, counter, check))
    market.subscribed(2)
    until("both published", lambda: len(rig.events(DemandPublished)) == 2)
    actor.stop(timeout=WAIT_S)
    deleted = sorted(c.path for c in rig.calls("DELETE", f"{DEMANDS}/[^/]+"))
    assert deleted == [f"{DEMANDS}/demand-1", f"{DEMANDS}/demand-2"]
