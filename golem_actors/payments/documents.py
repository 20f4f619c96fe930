"""yagna's payment documents as the books see them, and the events the payment actor emits.

One place turns a fetched :class:`DebitNote` or :class:`Invoice` into the ledger's input and names
the event for each step (received, accepted, refused), so the payment actor reads as the order of
steps rather than the shape of each document.
"""

from __future__ import annotations

import datetime as dt

from golem_actors.events import (
    DebitNoteAccepted,
    DebitNoteReceived,
    DebitNoteRefused,
    Event,
    InvoiceAccepted,
    InvoiceReceived,
    InvoiceRefused,
)
from golem_actors.payments.decisions import DebitNoteIn, InvoiceIn
from golem_actors.payments.terms import parse_usage
from golem_actors.yagna.models import DebitNote, Invoice

__all__ = [
    "accepted",
    "doc_id",
    "invoice_in",
    "note_in",
    "received",
    "refused",
    "yagna_id",
]


def note_in(document: DebitNote, now: dt.datetime) -> DebitNoteIn:
    """The note as the ledger needs it; ``now`` stands in for a note without a timestamp."""
    return DebitNoteIn(
        document.debit_note_id,
        document.agreement_id,
        document.activity_id,
        document.total_amount_due,
        document.timestamp or now,
        usage=parse_usage(document.usage_counter_vector),
        payable=document.payment_due_date is not None,
    )


def invoice_in(document: Invoice) -> InvoiceIn:
    return InvoiceIn(
        document.invoice_id,
        document.agreement_id,
        document.amount,
        tuple(document.activity_ids),
    )


def received(document: DebitNoteIn | InvoiceIn) -> Event:
    if isinstance(document, DebitNoteIn):
        return DebitNoteReceived(
            debit_note_id=document.debit_note_id,
            agreement_id=document.agreement_id,
            activity_id=document.activity_id,
            amount=document.amount,
        )
    return InvoiceReceived(
        invoice_id=document.invoice_id,
        agreement_id=document.agreement_id,
        amount=document.amount,
    )


def accepted(document: DebitNoteIn | InvoiceIn) -> Event:
    if isinstance(document, DebitNoteIn):
        return DebitNoteAccepted(
            debit_note_id=document.debit_note_id,
            agreement_id=document.agreement_id,
            amount=document.amount,
        )
    return InvoiceAccepted(
        invoice_id=document.invoice_id,
        agreement_id=document.agreement_id,
        amount=document.amount,
    )


def refused(document: DebitNoteIn | InvoiceIn, reason: str) -> Event:
    if isinstance(document, DebitNoteIn):
        return DebitNoteRefused(
            debit_note_id=document.debit_note_id,
            agreement_id=document.agreement_id,
            reason=reason,
        )
    return InvoiceRefused(
        invoice_id=document.invoice_id,
        agreement_id=document.agreement_id,
        reason=reason,
    )


def yagna_id(document: DebitNote | Invoice) -> str:
    return document.debit_note_id if isinstance(document, DebitNote) else document.invoice_id


def doc_id(document: DebitNoteIn | InvoiceIn) -> str:
    """The document as a log line names it."""
    if isinstance(document, DebitNoteIn):
        return f"debit note {document.debit_note_id}"
    return f"invoice {document.invoice_id}"
