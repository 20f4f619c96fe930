"""Debit notes are accepted without waiting for each other's answers, never past the budget."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pykka
import pytest

from golem_actors.actors.runtime import Runtime
from golem_actors.events import DebitNoteReceived, DebitNoteRefused
from golem_actors.payments.actor import PaymentActor
from golem_actors.payments.decisions import Totals
from golem_actors.payments.messages import GetTotals
from golem_actors.yagna.models import Allocation
from golem_actors.yagna.testing import MockRequest, MockResponse
from tests.payments.test_checks import ACTIVITY, AGREEMENT, PAY, US, Yagna
from tests.waiting import wait_for


class SlowFirstAccept:
    """Holds dn-1's accept until released; answers every other accept at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.accepted: list[str] = []

    def __call__(self, request: MockRequest) -> MockResponse:
        note = request.path.split("/")[-2]
        if note == "dn-1":
            self.release.wait(10)
        self.accepted.append(note)
        return MockResponse(200)


class Session:
    def __init__(self, budget: str) -> None:
        self.yagna = Yagna()
        self.yagna.listed.append("act-2")
        self.yagna.agreement()
        self.accept = SlowFirstAccept()
        self.yagna.mock.add("POST", f"{PAY}/debitNotes/[^/]+/accept", handler=self.accept)
        routes = self.yagna.mock.routes
        routes.insert(0, routes.pop())  # ahead of the scripted yagna's catch-all accept
        client = self.yagna.mock.client()
        self.rt = Runtime(client.config, client=client)
        self.refused: list[str] = []
        self.rt.events.subscribe(lambda e: self.refused.append(e.debit_note_id), DebitNoteRefused)
        allocation = Allocation.from_json(
            {
                "allocationId": "a",
                "totalAmount": budget,
                "spentAmount": "0",
                "remainingAmount": budget,
                "address": US,
            }
        )
        self.payments = PaymentActor.start(
            self.rt, allocation, poll_s=1.0, since=self.yagna.since, hold_s=0.1
        )

    def note(self, note_id: str, activity: str, amount: str) -> None:
        body = {
            "debitNoteId": note_id,
            "agreementId": AGREEMENT,
            "activityId": activity,
            "totalAmountDue": amount,
            "status": "RECEIVED",
        }
        self.yagna.mock.add("GET", f"{PAY}/debitNotes/{note_id}", json=body)
        event = {"debitNoteId": note_id, "eventType": "DebitNoteReceivedEvent"}
        self.yagna.events["debit_note"].append({**event, "eventDate": "2026-01-01T00:00:00Z"})

    def notes_total(self) -> Decimal:
        totals = self.payments.ask(GetTotals(), timeout=5)
        assert isinstance(totals, Totals)
        return totals.debit_notes


@pytest.fixture
def session_of() -> Iterator[Any]:
    sessions: list[Session] = []

    def make(budget: str) -> Session:
        sessions.append(Session(budget))
        return sessions[-1]

    try:
        yield make
    finally:
        for session in sessions:
            session.accept.release.set()
            session.rt.close()
        pykka.ActorRegistry.stop_all(timeout=5)


def test_a_slow_accept_does_not_hold_back_another_activitys_note(session_of):
    s = session_of("10")
    s.note("dn-1", "act-1", "0.1")
    s.note("dn-2", "act-2", "0.1")
    wait_for("dn-2 accepted while dn-1 waits", lambda: "dn-2" in s.accept.accepted)
    assert "dn-1" not in s.accept.accepted
    s.accept.release.set()
    wait_for("both notes booked", lambda: s.notes_total() == Decimal("0.2"))


def test_a_note_in_flight_already_counts_against_the_budget(session_of):
    s = session_of("0.3")
    s.note("dn-1", "act-1", "0.2")
    s.note("dn-2", "act-2", "0.2")  # 0.4 > 0.3: refused, though dn-1 is still unanswered
    wait_for("dn-2 refused", lambda: "dn-2" in s.refused)
    assert "dn-2" not in s.accept.accepted
    s.accept.release.set()
    wait_for("dn-1 accepted", lambda: "dn-1" in s.accept.accepted)
    assert s.notes_total() == Decimal("0.2")


def test_a_later_note_of_the_same_activity_waits_for_the_one_in_flight(session_of):
    s = session_of("10")
    s.note("dn-1", "act-1", "0.1")
    s.note("dn-3", "act-1", "0.15")
    s.note("dn-2", "act-2", "0.1")
    wait_for("dn-2 accepted", lambda: "dn-2" in s.accept.accepted)
    assert "dn-3" not in s.accept.accepted  # held behind dn-1 of the same activity
    s.accept.release.set()
    wait_for("dn-3 accepted after dn-1", lambda: "dn-3" in s.accept.accepted)
    assert s.accept.accepted.index("dn-1") < s.accept.accepted.index("dn-3")
    assert s.notes_total() == Decimal("0.25")


def test_a_debit_note_after_the_paid_invoice_is_neither_paid_nor_refused(session_of):
    """A note that crossed the accepted invoice (localnet sends one when notes come every
    second) is covered by the invoice: the actor lets it be, and lives on."""
    s = session_of("10")
    late: list[str] = []
    s.rt.events.subscribe(lambda e: late.append(e.debit_note_id), DebitNoteReceived)
    s.yagna.invoice("inv-1", "0.1", [ACTIVITY])
    wait_for("the invoice paid", lambda: s.payments.ask(GetTotals(), timeout=5).invoices > 0)
    s.note("dn-late", ACTIVITY, "0.05")
    wait_for("the late note decided", lambda: "dn-late" in late)
    totals = s.payments.ask(GetTotals(), timeout=5)  # told after the decision: still answers
    assert isinstance(totals, Totals)
    assert (totals.invoices, totals.debit_notes) == (Decimal("0.1"), Decimal(0))
    assert "dn-late" not in s.refused
    assert "dn-late" not in s.accept.accepted
