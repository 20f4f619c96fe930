"""The books taking on what yagna says is ours, rather than what this session registered.

Two ways a payment document can name an agreement or activity the books never recorded, and one
rule for both: our yagna is the ground truth, its requestor API lists only our own agreements and
activities, so what it says is this run's is recorded and then decided as usual (within prices
and budget, exactly once).

- A crashed session of the same run: :func:`golem_actors.recovery.recover` asks yagna what the
  crash left (:class:`Recovered`); :func:`seed_ledger` puts it into fresh books and
  :func:`spent_before` says what it already committed against the budget.
- A live session that lost track of an agreement or an activity (see
  :mod:`golem_actors.payments.checks`): :func:`why_not_ours` says whether yagna's agreement is
  this run's.

Either way, an activity the requestor never recorded is bounded from its agreement's approval
(:func:`unknown_activity_starts`), the earliest it could have started.

Pure: no I/O, no clock reads (the caller passes ``now``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from golem_actors.payments.decisions import Code, DebitNoteIn, InvoiceIn
from golem_actors.payments.ledger import PaymentLedger
from golem_actors.payments.terms import Terms
from golem_actors.yagna.models import Agreement, DebitNote, Invoice

__all__ = [
    "Recovered",
    "seed_ledger",
    "spent_before",
    "unknown_activity_starts",
    "why_not_ours",
]


@dataclass
class Recovered:
    """What a crashed run left: its agreements (all ended now) and its payment documents."""

    agreements: list[Agreement] = field(default_factory=list)
    activities: dict[str, tuple[str, dt.datetime]] = field(default_factory=dict)  # id -> agr, at
    accepted_notes: list[DebitNote] = field(default_factory=list)
    accepted_invoices: list[Invoice] = field(default_factory=list)
    rejected_invoices: list[Invoice] = field(default_factory=list)  # refused before the crash
    pending: list[DebitNote | Invoice] = field(default_factory=list)  # RECEIVED: to decide
    terminated: list[str] = field(default_factory=list)  # ended by this recovery
    problems: list[str] = field(default_factory=list)


def unknown_activity_starts(
    agreement: Agreement, activity_ids: Iterable[str], known: Container[str], now: dt.datetime
) -> dict[str, dt.datetime]:
    """When each of ``agreement``'s activities not in ``known`` may have started at the earliest.

    An activity the requestor never recorded (a crash, or a create whose answer was lost) cannot
    have started before its agreement was approved, so that bounds its bill; ``now`` stands in for
    an approval time yagna does not state.
    """
    start = agreement.approved_date or now
    return {activity_id: start for activity_id in activity_ids if activity_id not in known}


def why_not_ours(
    agreement: Agreement,
    *,
    since: dt.datetime,
    run_id: str | None = None,
    identity: str | None = None,
) -> str | None:
    """Why ``agreement`` is not one this run made (None if it is): the requestor must be us, it
    must be created at or after ``since`` (the session's start), and with a journal, its app
    session must be the run id (what :func:`golem_actors.recovery.recover` lists a run's
    agreements by)."""
    requestor = agreement.requestor_id
    if identity is not None and requestor is not None and requestor.lower() != identity.lower():
        return f"its requestor is {requestor}, not us ({identity})"
    created = agreement.timestamp or agreement.approved_date
    if created is None:
        return "yagna does not say when it was created"
    if created < since:
        return f"it was created at {created.isoformat()}, before this session ({since.isoformat()})"
    if run_id is not None and agreement.app_session_id != run_id:
        return f"its app session is {agreement.app_session_id!r}, not this run's {run_id!r}"
    return None


def seed_ledger(
    ledger: PaymentLedger,
    recovered: Recovered,
    now: dt.datetime,
    terms_of: Callable[[Agreement], Terms],
) -> list[str]:
    """Put what a crashed session decided into fresh books; returns what could not be."""
    problems: list[str] = []
    for agreement in recovered.agreements:
        try:
            terms = terms_of(agreement)
            ledger.record_agreement(agreement.agreement_id, terms, agreement.approved_date or now)
            ledger.record_termination(agreement.agreement_id, now)  # ended by this recovery
        except ValueError as exc:
            problems.append(f"agreement {agreement.agreement_id}: {exc}")
    for activity_id, (agreement_id, at) in recovered.activities.items():
        try:
            ledger.record_activity(agreement_id, activity_id, at)
        except (KeyError, ValueError) as exc:
            problems.append(f"activity {activity_id}: {exc}")
    for note in recovered.accepted_notes:
        try:
            ledger.record_debit_note_accepted(
                DebitNoteIn(
                    note.debit_note_id,
                    note.agreement_id,
                    note.activity_id,
                    note.total_amount_due,
                    note.timestamp or now,
                )
            )
        except (KeyError, ValueError) as exc:
            problems.append(f"debit note {note.debit_note_id}: {exc}")
    for invoice in recovered.accepted_invoices:
        doc = InvoiceIn(
            invoice.invoice_id, invoice.agreement_id, invoice.amount, invoice.activity_ids
        )
        try:
            ledger.record_invoice_received(doc)
            ledger.record_invoice_accepted(doc)
        except (KeyError, ValueError) as exc:
            problems.append(f"invoice {invoice.invoice_id}: {exc}")
    for invoice in recovered.rejected_invoices:
        # Refused before the crash: settling must not wait for it as if it were still to come.
        # The crashed session's reason is not kept; refusals of a provider's invoice are
        # overcharges in practice (the others are for agreements that are not ours).
        doc = InvoiceIn(
            invoice.invoice_id, invoice.agreement_id, invoice.amount, invoice.activity_ids
        )
        ledger.record_invoice_received(doc)
        ledger.record_invoice_refused(doc, Code.OVERCHARGE)
    return problems


def spent_before(recovered: Recovered) -> Decimal:
    """What the crashed session committed per yagna: each agreement's accepted invoice, or
    before one, its activities' highest accepted debit notes."""
    paid = {i.agreement_id: i.amount for i in recovered.accepted_invoices}
    notes: dict[str, Decimal] = {}
    for note in recovered.accepted_notes:
        if note.agreement_id not in paid:
            notes[note.activity_id] = max(
                notes.get(note.activity_id, Decimal(0)), note.total_amount_due
            )
    return sum(paid.values(), Decimal(0)) + sum(notes.values(), Decimal(0))
