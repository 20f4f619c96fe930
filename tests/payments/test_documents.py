"""yagna documents into the books' inputs, and the event each payment step emits."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from golem_actors.events import (
    DebitNoteAccepted,
    DebitNoteReceived,
    DebitNoteRefused,
    InvoiceAccepted,
    InvoiceReceived,
    InvoiceRefused,
)
from golem_actors.payments.documents import (
    accepted,
    invoice_in,
    note_in,
    received,
    refused,
    yagna_id,
)
from golem_actors.yagna.models import DebitNote, Invoice

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def test_note_in_reads_usage_and_payability_and_falls_back_to_now() -> None:
    doc = DebitNote(
        debit_note_id="dn",
        agreement_id="ag",
        activity_id="a1",
        total_amount_due=Decimal("0.5"),
        status="RECEIVED",
        usage_counter_vector=[1.5, "x"],
        payment_due_date=NOW,
    )
    note = note_in(doc, NOW)
    assert (note.debit_note_id, note.agreement_id, note.activity_id) == ("dn", "ag", "a1")
    assert note.amount == Decimal("0.5")
    assert note.received_at == NOW
    assert note.payable
    assert note.usage is not None
    assert note.usage[0] == Decimal("1.5")
    assert note.usage[1].is_nan()
    assert yagna_id(doc) == "dn"


def test_events_name_the_document_and_step() -> None:
    doc = DebitNote("dn", "ag", "a1", Decimal(1), "RECEIVED")
    note = note_in(doc, NOW)
    assert isinstance(received(note), DebitNoteReceived)
    assert isinstance(accepted(note), DebitNoteAccepted)
    refusal = refused(note, "too much")
    assert isinstance(refusal, DebitNoteRefused)
    assert refusal.reason == "too much"
    inv = Invoice(invoice_id="inv", agreement_id="ag", amount=Decimal(2), status="RECEIVED")
    invoice = invoice_in(inv)
    assert (invoice.invoice_id, invoice.amount, invoice.activity_ids) == ("inv", Decimal(2), ())
    assert isinstance(received(invoice), InvoiceReceived)
    assert isinstance(accepted(invoice), InvoiceAccepted)
    assert isinstance(refused(invoice, "no"), InvoiceRefused)
    assert yagna_id(inv) == "inv"
