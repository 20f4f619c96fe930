"""The market renews a demand before it expires, on a scripted yagna and a manual clock.

A demand lives ``lifetime_s``; a margin before it ends the market publishes it again with a fresh
expiration (``PublishDemand.renew``), keeps the old subscription serving its drafts and finishing
its negotiations until the old expiration, then drops it; and so on for as long as it runs.
"""

from __future__ import annotations

import datetime as dt
import itertools
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pykka
import pytest

from golem_actors.actors.market import MarketActor, ProposalGranted, PublishDemand, RequestProposal
from golem_actors.actors.runtime import Runtime
from golem_actors.actors.scheduler import ManualScheduler
from golem_actors.policy.demand import EXPIRATION, renewal_times
from golem_actors.yagna.testing import MockRequest, MockResponse, MockYagna
from tests.actors.test_activity import Inbox
from tests.waiting import wait_for

KEY = "Service:1"
LIFETIME_S = 20.0
RENEW_IN, RETIRE_IN = renewal_times(LIFETIME_S)  # 15 s, then 5 s
T0_MS = 1_900_000_000_000
DEMANDS = r"/market-api/v1/demands"


@dataclass
class FakeMarket:
    """yagna's requestor market for one provider per subscription (``0xaaa`` on the first,
    ``0xbbb`` on the next, ...): each offers at once and answers a counter with a draft, unless
    its drafts are held back."""

    subscriptions: dict[str, int] = field(default_factory=dict)  # id -> its expiration (ms)
    deleted: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)  # id -> expiration countered with
    hold_drafts: set[str] = field(default_factory=set)
    hold_offers: set[str] = field(default_factory=set)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    held: dict[str, dict[str, Any]] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def install(self, yagna: MockYagna) -> None:
        yagna.add("POST", DEMANDS, handler=self.subscribe)
        yagna.add("GET", DEMANDS + r"/(d\d+)/events", handler=self.poll)
        yagna.add("POST", DEMANDS + r"/(d\d+)/proposals/[^/]+", handler=self.counter)
        yagna.add("DELETE", DEMANDS + r"/(d\d+)", handler=self.delete)

    @staticmethod
    def provider(demand_id: str) -> str:
        return "0x" + "abcdefgh"[int(demand_id[1:]) - 1] * 3

    def proposal(self, demand_id: str, state: str, prev: str | None = None) -> dict[str, Any]:
        return {
            "eventType": "ProposalEvent",
            "eventDate": dt.datetime.now(dt.UTC).isoformat(),
            "proposal": {
                "proposalId": f"{state.lower()}-{demand_id}",
                "issuerId": self.provider(demand_id),
                "state": state,
                "properties": {"golem.node.id.name": self.provider(demand_id)},
                "constraints": "",
                "prevProposalId": prev,
            },
        }

    def subscribe(self, request: MockRequest) -> MockResponse:
        with self.cond:
            demand_id = f"d{len(self.subscriptions) + 1}"
            self.subscriptions[demand_id] = request.body["properties"][EXPIRATION]
            held = demand_id in self.hold_offers
            self.events[demand_id] = [] if held else [self.proposal(demand_id, "Initial")]
            self.cond.notify_all()
        return MockResponse(201, demand_id)

    def poll(self, request: MockRequest) -> MockResponse:
        demand_id = request.path.split("/")[4]
        with self.cond:
            if demand_id in self.deleted:
                return MockResponse(404, {"message": f"Subscription [{demand_id}] not found"})
            if not self.events[demand_id]:
                self.cond.wait(0.05)  # a long-poll, cut short
            out, self.events[demand_id] = self.events[demand_id], []
        return MockResponse(200, out)

    def counter(self, request: MockRequest) -> MockResponse:
        demand_id = request.path.split("/")[4]
        with self.cond:
            self.counters[demand_id] = request.body["properties"][EXPIRATION]
            draft = self.proposal(demand_id, "Draft", prev=f"ours-{demand_id}")
            if demand_id in self.hold_drafts:
                self.held[demand_id] = draft
            else:
                self.events[demand_id].append(draft)
            self.cond.notify_all()
        return MockResponse(201, f"ours-{demand_id}")

    def offer(self, demand_id: str) -> None:
        with self.cond:
            self.events[demand_id].append(self.proposal(demand_id, "Initial"))
            self.cond.notify_all()

    def release(self, demand_id: str) -> None:
        with self.cond:
            self.events[demand_id].append(self.held.pop(demand_id))
            self.cond.notify_all()

    def delete(self, request: MockRequest) -> MockResponse:
        with self.cond:
            self.deleted.append(request.path.split("/")[4])
            self.cond.notify_all()
        return MockResponse(204)


@pytest.fixture
def market() -> FakeMarket:
    return FakeMarket()


@pytest.fixture
def clock() -> ManualScheduler:
    return ManualScheduler()


@pytest.fixture
def actor(market: FakeMarket, clock: ManualScheduler) -> Iterator[pykka.ActorRef[Any]]:
    yagna = MockYagna()
    market.install(yagna)
    client = yagna.client()
    rt = Runtime(client.config, client=client, scheduler=clock)
    ref = MarketActor.start(rt, poll_s=0.05)
    try:
        yield ref
    finally:
        rt.close()
        pykka.ActorRegistry.stop_all(timeout=5)
    assert pykka.ActorRegistry.get_all() == []


def demand(renew_fails: bool = False) -> PublishDemand:
    """Each build expires LIFETIME_S after the one before: a fake clock read at every renewal."""
    builds = itertools.count()

    def build() -> PublishDemand:
        n = next(builds)
        if renew_fails and n > 0:
            raise ValueError("manifest.expiresAt has passed")
        props = {EXPIRATION: T0_MS + int((n * RENEW_IN + LIFETIME_S) * 1000)}
        return PublishDemand(
            KEY,
            props,
            "(golem.runtime.name=vm)",
            lambda _props, _provider: 1.0,
            lambda _offer: dict(props),  # the counter carries this build's expiration
            lambda _ours, _theirs, _offer: None,
            renew=build,
            lifetime_s=LIFETIME_S,
        )

    return build()


def expiration(n: int) -> int:
    return T0_MS + int(((n - 1) * RENEW_IN + LIFETIME_S) * 1000)


def test_a_demand_is_renewed_before_it_expires_and_the_old_one_retires_at_its_end(
    actor: pykka.ActorRef[Any], market: FakeMarket, clock: ManualScheduler
) -> None:
    actor.tell(demand())
    wait_for("the first draft", lambda: market.counters.get("d1"), timeout=5)
    clock.advance(RENEW_IN - 0.1)
    assert list(market.subscriptions) == ["d1"]  # not yet
    clock.advance(0.1)
    wait_for("the renewed demand", lambda: "d2" in market.subscriptions, timeout=5)
    assert market.subscriptions == {"d1": expiration(1), "d2": expiration(2)}
    assert expiration(2) - expiration(1) == RENEW_IN * 1000
    wait_for("a counter on the renewed demand", lambda: "d2" in market.counters, timeout=5)
    assert market.counters == {"d1": expiration(1), "d2": expiration(2)}
    assert market.deleted == []  # the old one serves its drafts until it expires
    clock.advance(RETIRE_IN - 0.1)
    assert market.deleted == []
    clock.advance(0.1)
    wait_for("the old subscription dropped", lambda: market.deleted == ["d1"], timeout=5)
    # ... and again, for as long as the demand is wanted.
    clock.advance(RENEW_IN - RETIRE_IN)
    wait_for("the second renewal", lambda: "d3" in market.subscriptions, timeout=5)
    assert market.subscriptions["d3"] == expiration(3)
    clock.advance(RETIRE_IN)
    wait_for("the first renewal dropped", lambda: market.deleted == ["d1", "d2"], timeout=5)


def test_a_draft_still_in_flight_on_the_old_subscription_is_kept_and_granted(
    actor: pykka.ActorRef[Any], market: FakeMarket, clock: ManualScheduler
) -> None:
    market.hold_offers.add("d1")
    market.hold_drafts.update({"d1", "d2"})  # the providers take their time to answer
    actor.tell(demand())
    wait_for("the first subscription", lambda: "d1" in market.subscriptions, timeout=5)
    clock.advance(RENEW_IN - 1)
    market.offer("d1")  # a provider turns up a second before the renewal ...
    wait_for("our counter on d1", lambda: "d1" in market.held, timeout=5)
    clock.advance(1)
    wait_for("our counter on d2", lambda: "d2" in market.held, timeout=5)
    market.release("d1")  # ... and answers our counter just after it
    box: queue.Queue[Any] = queue.Queue()
    inbox = Inbox.start(box)
    actor.tell(RequestProposal(KEY, 1, inbox))
    granted = box.get(timeout=5)
    assert isinstance(granted, ProposalGranted)
    assert (granted.proposal.proposal_id, granted.provider_id) == ("draft-d1", "0xaaa")


def test_a_demand_that_cannot_be_renewed_says_so_and_the_market_lives_on(
    actor: pykka.ActorRef[Any],
    market: FakeMarket,
    clock: ManualScheduler,
    caplog: pytest.LogCaptureFixture,
) -> None:
    actor.tell(demand(renew_fails=True))
    wait_for("the first draft", lambda: market.counters.get("d1"), timeout=5)
    clock.advance(RENEW_IN + RETIRE_IN)
    box: queue.Queue[Any] = queue.Queue()
    actor.tell(RequestProposal(KEY, 1, Inbox.start(box)))  # told after the renewal's tick
    assert isinstance(box.get(timeout=5), ProposalGranted)  # the market still answers
    assert "cannot be renewed (manifest.expiresAt has passed)" in caplog.text
    assert set(market.subscriptions.values()) == {expiration(1)}  # nothing renewed
