"""AgreementActor (and the agreement-events poller) alone, against a scripted market API:
create, confirm, wait for approval; a rejection, a lost answer, a provider ending the agreement;
and our own termination, sent exactly once however often and whenever it is asked for."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from golem_actors.actors.agreement import (
    AgreementActor,
    AgreementEnded,
    AgreementEventsActor,
    AgreementFailed,
    AgreementReady,
    Terminate,
    Unwatch,
    Watch,
)
from golem_actors.events import (
    AgreementApproved,
    AgreementCreated,
    AgreementRejected,
    AgreementTerminated,
)
from golem_actors.yagna.testing import MockRequest, MockResponse
from tests.actors.actor_harness import (
    AGREEMENTS,
    WAIT_S,
    Inbox,
    Rig,
    agreement_json,
    agreement_terminated,
    rig_running,
    script_agreement,
    settle,
    until,
)

AG = AGREEMENTS
PROVIDER = "0xprovider"
APPROVAL_TIMEOUT = 7.0


@pytest.fixture
def rig() -> Iterator[Rig]:
    with rig_running() as rig:
        script_agreement(rig, PROVIDER)
        yield rig


class Agreement:
    """One AgreementActor with inboxes for its parent and for the events poller."""

    def __init__(self, rig: Rig, events: pykka.ActorRef[Any] | None = None) -> None:
        self.rig = rig
        self.parent, self.box = Inbox.open()
        self.events_ref, self.watches = Inbox.open()
        self.ref = AgreementActor.start(
            rig.rt,
            self.parent,
            proposal_id="draft-1",
            provider_id=PROVIDER,
            provider_name="provider-1",
            events=events or self.events_ref,
            approval_timeout=APPROVAL_TIMEOUT,
        )

    def stopped(self) -> bool:
        return self.ref.actor_stopped.wait(WAIT_S)

    def terminates(self) -> list[MockRequest]:
        return self.rig.calls("POST", f"{AG}/ag-1/terminate")


def test_an_agreement_is_created_confirmed_and_approved(rig):
    agreement = Agreement(rig)
    ready = agreement.box.one(AgreementReady)
    assert ready.agreement.agreement_id == "ag-1"
    assert ready.agreement.provider_id == PROVIDER
    made = [(c.method, c.path) for c in rig.yagna.calls]
    assert made == [
        ("POST", AG),
        ("POST", f"{AG}/ag-1/confirm"),
        ("POST", f"{AG}/ag-1/wait"),
        ("GET", f"{AG}/ag-1"),
    ]
    create, _, wait, _ = rig.yagna.calls
    assert create.body["proposalId"] == "draft-1"
    assert "appSessionId" not in create.body  # no journal, no run id to name
    assert wait.query["timeout"] == f"{APPROVAL_TIMEOUT:g}"
    assert agreement.watches.one(Watch) == Watch("ag-1", agreement.ref)
    assert rig.wait_event(AgreementCreated).agreement_id == "ag-1"
    approved = rig.wait_event(AgreementApproved)
    assert (approved.provider_id, approved.provider_name) == (PROVIDER, "provider-1")
    assert not agreement.ref.actor_stopped.is_set()  # it lives as long as the agreement


def test_a_rejected_agreement_is_reported_failed_and_cancelled_not_terminated(rig):
    rig.route("POST", f"{AG}/ag-1/wait", status=410, json={"message": "rejected by provider"})
    rig.route("GET", f"{AG}/ag-1", json=agreement_json(PROVIDER, "Rejected"))
    agreement = Agreement(rig)
    failed = agreement.box.one(AgreementFailed)
    assert failed.provider_id == PROVIDER
    assert "Rejected" in failed.reason
    assert agreement.stopped()
    [cancel] = rig.calls("POST", f"{AG}/ag-1/cancel")
    assert cancel.body == {"message": "negotiation failed"}
    assert agreement.terminates() == []
    assert agreement.watches.one(Unwatch) == Unwatch("ag-1")
    settle(agreement.parent)
    assert agreement.box.of(AgreementReady) == []
    assert agreement.box.of(AgreementEnded) == []  # its failure was the one report
    assert rig.wait_event(AgreementRejected).agreement_id == "ag-1"


def test_a_refused_create_fails_at_once_and_leaves_nothing_to_clean(rig):
    rig.route("POST", AG, status=400, json={"message": "no such proposal"})
    agreement = Agreement(rig)
    assert "no such proposal" in agreement.box.one(AgreementFailed).reason
    assert agreement.stopped()
    assert [c.path for c in rig.yagna.calls] == [AG]  # no confirm, no cancel
    settle(agreement.events_ref)
    assert agreement.watches.of(Watch) == []


@pytest.mark.parametrize("lost", ["confirm", "wait"])
def test_a_lost_answer_is_checked_with_yagna_before_giving_up(rig, lost):
    rig.route("POST", f"{AG}/ag-1/{lost}", status=500, json={"message": "reset"}, times=1)
    rig.route("GET", f"{AG}/ag-1", json=agreement_json(PROVIDER, "Pending"), times=1)
    agreement = Agreement(rig)
    assert agreement.box.one(AgreementReady).agreement.agreement_id == "ag-1"
    # Pending: the call did arrive; the provider's answer is waited for (again).
    assert len(rig.calls("POST", f"{AG}/ag-1/wait")) == (2 if lost == "wait" else 1)
    assert rig.calls("POST", f"{AG}/ag-1/cancel") == []


# -- ending -----------------------------------------------------------------------------------


def test_terminate_is_sent_exactly_once_however_often_it_is_asked(rig):
    agreement = Agreement(rig)
    agreement.box.one(AgreementReady)
    for _ in range(3):
        agreement.ref.tell(Terminate("done", "Success"))
    ended = agreement.box.one(AgreementEnded)
    assert ended == AgreementEnded("ag-1", PROVIDER, by_provider=False, reason="done")
    assert agreement.stopped()
    [terminate] = agreement.terminates()
    assert terminate.body == {"message": "done", "golem.requestor.code": "Success"}
    assert agreement.watches.one(Unwatch) == Unwatch("ag-1")
    settle(agreement.parent)
    assert len(agreement.box.of(AgreementEnded)) == 1
    [terminated] = rig.events(AgreementTerminated)
    assert not terminated.by_provider


def test_terminate_asked_while_the_agreement_is_made_is_sent_once_it_is_approved(rig):
    approve = threading.Event()

    def wait(_: MockRequest) -> MockResponse:
        approve.wait(WAIT_S)
        return MockResponse(204)

    rig.route("POST", f"{AG}/ag-1/wait", handler=wait)
    agreement = Agreement(rig)
    rig.wait_calls("POST", f"{AG}/ag-1/wait")
    agreement.ref.tell(Terminate("not needed any more", "Cancelled"))
    approve.set()
    ended = agreement.box.one(AgreementEnded)
    assert (ended.by_provider, ended.reason) == (False, "not needed any more")
    [terminate] = agreement.terminates()
    assert terminate.body["golem.requestor.code"] == "Cancelled"
    assert agreement.stopped()
    assert agreement.box.of(AgreementReady) == []  # the owner no longer wanted it


def test_a_failed_terminate_is_retried_on_the_clock_until_it_goes_through(rig):
    rig.route("POST", f"{AG}/ag-1/terminate", status=500, json={"message": "busy"}, times=2)
    agreement = Agreement(rig)
    agreement.box.one(AgreementReady)
    agreement.ref.tell(Terminate("done"))
    for attempt, delay in enumerate([1.0, 2.0], start=1):  # 0.5 s x 2^n
        rig.wait_timer(agreement.ref, "terminate")
        assert len(agreement.terminates()) == attempt
        assert rig.advance(delay - 0.01) == 0
        assert rig.advance(0.02) == 1
        rig.wait_calls("POST", f"{AG}/ag-1/terminate", attempt + 1)
    assert agreement.box.one(AgreementEnded).reason == "done"
    assert agreement.stopped()
    assert len(agreement.terminates()) == 3


def test_a_terminate_that_keeps_failing_is_given_up_after_its_retries(rig):
    rig.route("POST", f"{AG}/ag-1/terminate", status=500, json={"message": "down"})
    agreement = Agreement(rig)
    agreement.box.one(AgreementReady)
    agreement.ref.tell(Terminate("done"))
    for attempt in range(1, 5):
        rig.wait_timer(agreement.ref, "terminate")
        rig.advance(0.5 * 2**attempt)
    assert agreement.box.one(AgreementEnded).reason == "done"  # bounded: the owner goes on
    assert agreement.stopped()
    assert len(agreement.terminates()) == 5


def test_a_conflicting_terminate_is_not_retried(rig):
    rig.route("POST", f"{AG}/ag-1/terminate", status=409, json={"message": "not confirmed"})
    agreement = Agreement(rig)
    agreement.box.one(AgreementReady)
    agreement.ref.tell(Terminate("done"))
    agreement.box.one(AgreementEnded)
    assert agreement.stopped()
    assert len(agreement.terminates()) == 1


# -- the provider ending it -------------------------------------------------------------------


def test_a_provider_ending_the_agreement_is_seen_and_reported_once(rig):
    poll = rig.long_poll("/market-api/v1/agreementEvents")
    events = AgreementEventsActor.start(rig.rt, poll_s=3.0)
    agreement = Agreement(rig, events=events)
    agreement.box.one(AgreementReady)
    until("the events polled", lambda: poll.polls >= 1)
    poll.push(
        agreement_terminated("ag-other", "not ours"),  # routed to nobody
        agreement_terminated("ag-1", "provider going away"),
        agreement_terminated("ag-1", "provider going away"),  # a duplicate
    )
    ended = agreement.box.one(AgreementEnded)
    assert ended == AgreementEnded("ag-1", PROVIDER, by_provider=True, reason="provider going away")
    assert agreement.stopped()
    assert agreement.terminates() == []  # it is over already: nothing to terminate
    until("the poller back for more", poll.handled)
    settle(agreement.parent)
    assert len(agreement.box.of(AgreementEnded)) == 1
    assert rig.events(AgreementTerminated)[0].by_provider


def test_our_own_termination_seen_in_the_event_stream_is_not_reported_again(rig):
    poll = rig.long_poll("/market-api/v1/agreementEvents")
    events = AgreementEventsActor.start(rig.rt, poll_s=3.0)
    announced, hold = threading.Event(), threading.Event()

    def terminate(_: MockRequest) -> MockResponse:
        # yagna announces the termination while our call is still in flight
        poll.push(agreement_terminated("ag-1", "done"))
        announced.set()
        hold.wait(WAIT_S)
        return MockResponse(204)

    rig.route("POST", f"{AG}/ag-1/terminate", handler=terminate)
    agreement = Agreement(rig, events=events)
    agreement.box.one(AgreementReady)
    agreement.ref.tell(Terminate("done"))
    assert announced.wait(WAIT_S)
    until("the event handled", poll.handled)
    hold.set()
    assert agreement.box.one(AgreementEnded).by_provider is False
    assert agreement.stopped()
    settle(agreement.parent)
    assert len(agreement.box.of(AgreementEnded)) == 1
