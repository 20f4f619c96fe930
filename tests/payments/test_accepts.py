"""An accept whose answer is lost: yagna is asked whether it arrived, never sent again blindly.

A POST that failed may or may not have reached yagna. An invoice is paid exactly once either way;
a debit note is sent again only while yagna still has it as received.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pykka
import pytest

from golem_actors.actors.runtime import Runtime
from golem_actors.events import DebitNoteAccepted, InvoiceAccepted
from golem_actors.payments.decisions import Totals
from golem_actors.payments.messages import GetTotals
from golem_actors.yagna.testing import MockRequest, MockResponse
from tests.payments.test_checks import (
    ACTIVITY,
    PAY,
    Yagna,
    invoice_json,
    note_json,
    start_payments,
)
from tests.waiting import wait_for


@dataclass
class Books:
    """The payment actor on a scripted yagna, with the accept events it emitted."""

    yagna: Yagna
    ref: pykka.ActorRef[Any]
    accepted: list[str] = field(default_factory=list)

    def totals(self) -> Totals:
        totals = self.ref.ask(GetTotals(), timeout=5)
        assert isinstance(totals, Totals)
        return totals

    def posts(self, path: str) -> int:
        return len(self.yagna.posts(path) or [])


@pytest.fixture
def books() -> Iterator[Books]:
    yagna = Yagna()
    yagna.agreement()  # ours, adopted when its first document arrives
    client = yagna.mock.client()
    rt = Runtime(client.config, client=client)
    out = Books(yagna, start_payments(yagna, rt))
    rt.events.subscribe(lambda e: out.accepted.append(e.invoice_id), InvoiceAccepted)
    rt.events.subscribe(lambda e: out.accepted.append(e.debit_note_id), DebitNoteAccepted)
    try:
        yield out
    finally:
        rt.close()
        pykka.ActorRegistry.stop_all(timeout=5)


class OneDocument:
    """yagna's side of one document: an accept that fails ``failures`` times, and its status."""

    def __init__(self, *, failures: int, arrives: bool) -> None:
        self.failures = failures
        self.arrives = arrives  # a failed accept reached yagna all the same
        self.status = "RECEIVED"

    def accept(self, _: MockRequest) -> MockResponse:
        if self.failures > 0:
            self.failures -= 1
            if self.arrives:
                self.status = "ACCEPTED"
            return MockResponse(500, {"message": "the answer was lost"})
        self.status = "ACCEPTED"
        return MockResponse(200)


def _script(books: Books, kind: str, doc_id: str, body: dict[str, Any], side: OneDocument) -> None:
    """Answer the accept and the reads of ``doc_id`` from ``side``, ahead of the catch-alls."""
    mock = books.yagna.mock
    mock.add("POST", f"{PAY}/{kind}/{doc_id}/accept", handler=side.accept)
    mock.add(
        "GET",
        f"{PAY}/{kind}/{doc_id}",
        handler=lambda _: MockResponse(200, {**body, "status": side.status}),
    )
    mock.routes[:0] = [mock.routes.pop(), mock.routes.pop()]


def test_an_invoice_whose_accept_arrived_unanswered_is_paid_once(books):
    side = OneDocument(failures=1, arrives=True)
    _script(books, "invoices", "inv-1", invoice_json("inv-1", "0.1", [ACTIVITY]), side)
    books.yagna.invoice("inv-1", "0.1", [ACTIVITY])
    wait_for("the invoice booked", lambda: books.totals().invoices == Decimal("0.1"))
    assert books.posts("/invoices/inv-1/accept") == 1  # yagna had it: not sent again
    assert books.accepted == ["inv-1"]


def test_an_invoice_whose_accept_did_not_arrive_is_decided_and_sent_again(books):
    side = OneDocument(failures=1, arrives=False)
    _script(books, "invoices", "inv-1", invoice_json("inv-1", "0.1", [ACTIVITY]), side)
    books.yagna.invoice("inv-1", "0.1", [ACTIVITY])
    wait_for("the invoice booked", lambda: books.totals().invoices == Decimal("0.1"))
    assert books.posts("/invoices/inv-1/accept") == 2
    assert books.accepted == ["inv-1"]
    assert books.totals().committed == Decimal("0.1")


def test_a_debit_note_whose_accept_arrived_unanswered_is_not_sent_again(books):
    side = OneDocument(failures=1, arrives=True)
    _script(books, "debitNotes", "dn-1", note_json("dn-1", "0.1"), side)
    books.yagna.debit_note("dn-1", "0.1")
    wait_for("the note's accept confirmed", lambda: books.accepted == ["dn-1"])
    assert books.posts("/debitNotes/dn-1/accept") == 1
    assert books.totals().debit_notes == Decimal("0.1")


def test_a_debit_note_whose_accept_did_not_arrive_is_sent_again(books):
    side = OneDocument(failures=1, arrives=False)
    _script(books, "debitNotes", "dn-1", note_json("dn-1", "0.1"), side)
    books.yagna.debit_note("dn-1", "0.1")
    wait_for("the note accepted again", lambda: books.accepted == ["dn-1"], timeout=10)
    assert books.posts("/debitNotes/dn-1/accept") == 2
    assert side.status == "ACCEPTED"
    assert books.totals().debit_notes == Decimal("0.1")
