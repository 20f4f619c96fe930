"""The requestor's books: which debit notes and invoices to accept, and how much is committed.

Pure policy: no I/O, no threads, no clock reads. The caller passes ``now`` (a timezone-aware
``datetime``), asks for a :class:`PaymentDecision`, journals and sends it, then applies it with the
matching ``record_*`` method. Deciding never changes the books, so a decision that was never
journaled costs nothing, and replaying a journal through the ``record_*`` methods rebuilds them.
Record each accepted decision before deciding the next one: the budget check only sees what was
recorded (the payment actor is one thread, so this is the natural order).

What a provider may charge is bounded as :mod:`golem_actors.payments.terms` says; anything above
the bound is an overcharge and is refused with the excess in the reason. Why a decision carries
exactly the document's amount, and why a refused debit note is simply not accepted, is in
:mod:`golem_actors.payments.decisions`.

Two anchor bugs are avoided on purpose. yapapi#1014: extra or late final debit notes killed
honest activities for "too many debit notes"; here the frequency rule allows a generous slack, a
note that adds nothing (equal to or lower than the one already accepted for its activity) is
accepted as a no-op before any frequency check, and refusing a note never kills anything by
itself. golem-js: a second invoice for an agreement that was already paid is an error; here it is
refused, so no invoice is ever paid twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from types import MappingProxyType

from golem_actors.payments.decisions import (
    Code,
    DebitNoteIn,
    InvoiceIn,
    InvoiceState,
    PaymentDecision,
    Totals,
    check_refusal,
    decision,
    overcharge,
    refuse,
    valid_amount,
)
from golem_actors.payments.terms import (
    PREC,
    ZERO,
    Grace,
    Terms,
    check_frequency,
    check_money,
    check_usage,
    glm,
    grace_seconds,
    secs,
    to_seconds,
)

__all__ = ["PaymentLedger"]


@dataclass
class _Activity:
    agreement_id: str
    created_at: dt.datetime
    accepted: Decimal = ZERO  # highest cumulative amount accepted
    accepted_notes: set[str] = field(default_factory=set)
    refused_notes: set[str] = field(default_factory=set)


@dataclass
class _Agreement:
    terms: Terms
    approved_at: dt.datetime
    terminated_at: dt.datetime | None = None
    activities: list[str] = field(default_factory=list)
    invoice_state: InvoiceState = InvoiceState.NONE
    invoice_id: str | None = None
    invoice_amount: Decimal = ZERO


class PaymentLedger:
    """All agreements of one run against one budget (the allocation's total amount)."""

    def __init__(self, budget: Decimal, grace: Grace | None = None) -> None:
        check_money("budget", budget)
        self.budget = budget
        self.grace = grace if grace is not None else Grace()
        self._agreements: dict[str, _Agreement] = {}
        self._activities: dict[str, _Activity] = {}
        self._refused_ids: set[str] = set()
        self._refusals: dict[Code, int] = {}

    # -- what the runtime learns -------------------------------------------------------------

    def record_agreement(self, agreement_id: str, terms: Terms, approved_at: dt.datetime) -> None:
        """An agreement was approved. Recording the same one again (a journal replay) is a no-op."""
        _check_time("approved_at", approved_at)
        known = self._agreements.get(agreement_id)
        if known is not None:
            if known.terms != terms or known.approved_at != approved_at:
                raise ValueError(f"agreement {agreement_id} is already recorded with other terms")
            return
        self._agreements[agreement_id] = _Agreement(terms, approved_at)

    def record_activity(self, agreement_id: str, activity_id: str, created_at: dt.datetime) -> None:
        """An activity was asked for: ``created_at`` is when the create request was *sent*.

        The provider's meter cannot start before that, so it is a safe start for the activity's
        wall-time bound; a later time (such as when the reply arrived) could refuse honest bills.
        """
        _check_time("created_at", created_at)
        books = self._agreement(agreement_id)
        known = self._activities.get(activity_id)
        if known is not None:
            if known.agreement_id != agreement_id:
                raise ValueError(
                    f"activity {activity_id} belongs to agreement {known.agreement_id}, "
                    f"not {agreement_id}"
                )
            known.created_at = min(known.created_at, created_at)
            return
        self._activities[activity_id] = _Activity(agreement_id, created_at)
        books.activities.append(activity_id)

    def record_termination(self, agreement_id: str, at: dt.datetime) -> None:
        """The agreement ended (either side). The earliest time recorded wins."""
        _check_time("at", at)
        books = self._agreement(agreement_id)
        if books.terminated_at is None or at < books.terminated_at:
            books.terminated_at = at

    def record_debit_note_accepted(self, note: DebitNoteIn) -> None:
        activity = self._activity_of(note.agreement_id, note.activity_id)
        activity.accepted = max(activity.accepted, note.amount)
        activity.accepted_notes.add(note.debit_note_id)
        activity.refused_notes.discard(note.debit_note_id)

    def record_debit_note_refused(self, note: DebitNoteIn, code: Code) -> None:
        """Counts the refusal once per note; an unknown activity's notes are only counted."""
        check_refusal(code)
        activity = self._activities.get(note.activity_id)
        if (
            activity is not None
            and activity.agreement_id == note.agreement_id
            and note.debit_note_id not in activity.accepted_notes
        ):
            activity.refused_notes.add(note.debit_note_id)
        self._count_refusal(f"debit-note:{note.debit_note_id}", code)

    def record_invoice_received(self, invoice: InvoiceIn) -> None:
        books = self._agreements.get(invoice.agreement_id)
        if books is not None and books.invoice_state is InvoiceState.NONE:
            books.invoice_state = InvoiceState.RECEIVED

    def record_invoice_accepted(self, invoice: InvoiceIn) -> None:
        """Marks the agreement paid. Never twice: a second invoice id raises ValueError."""
        books = self._agreement(invoice.agreement_id)
        if books.invoice_state is InvoiceState.ACCEPTED:
            if books.invoice_id == invoice.invoice_id:
                return
            raise ValueError(
                f"agreement {invoice.agreement_id} already paid by invoice {books.invoice_id}"
            )
        books.invoice_state = InvoiceState.ACCEPTED
        books.invoice_id = invoice.invoice_id
        books.invoice_amount = invoice.amount

    def record_invoice_refused(self, invoice: InvoiceIn, code: Code) -> None:
        check_refusal(code)
        books = self._agreements.get(invoice.agreement_id)
        if books is not None and books.invoice_state is not InvoiceState.ACCEPTED:
            books.invoice_state = InvoiceState.REFUSED
        self._count_refusal(f"invoice:{invoice.invoice_id}", code)

    # -- decisions ---------------------------------------------------------------------------

    def decide_debit_note(self, note: DebitNoteIn, now: dt.datetime) -> PaymentDecision:
        """Accept a debit note, or say why not. Never changes the books."""
        _check_time("now", now)
        books = self._agreements.get(note.agreement_id)
        if books is None:
            return refuse(Code.UNKNOWN_AGREEMENT, f"agreement {note.agreement_id} is not ours")
        deadline = None
        if books.terms.accept_timeout_s is not None:
            deadline = note.received_at + dt.timedelta(seconds=books.terms.accept_timeout_s)
        screened = self._screen_note(books, note)
        if not isinstance(screened, _Activity):
            code, why = screened
            return decision(code, note.amount, why, deadline=deadline)
        activity = screened
        bound = self.max_debit_note_amount(note.agreement_id, note.activity_id, now)
        priced = self._price_note(books, activity, note, now, bound)
        if priced is not None:
            code, why = priced
            return decision(code, note.amount, why, deadline=deadline)
        increase = note.amount - activity.accepted
        if not self._fits(increase):
            why = f"{glm(increase)} GLM more does not fit the {glm(self.remaining())} GLM left"
            return refuse(Code.BUDGET, why, deadline)
        why = f"{glm(note.amount)} GLM is within the agreed prices (max {glm(bound)} GLM)"
        return decision(Code.ACCEPTED, note.amount, why, increase, deadline)

    def decide_invoice(self, invoice: InvoiceIn, now: dt.datetime) -> PaymentDecision:
        """Accept an invoice exactly once, in full, or say why not. Never changes the books."""
        _check_time("now", now)
        books = self._agreements.get(invoice.agreement_id)
        if books is None:
            return refuse(Code.UNKNOWN_AGREEMENT, f"agreement {invoice.agreement_id} is not ours")
        screened = self._screen_invoice(books, invoice)
        if screened is not None:
            code, why = screened
            return decision(code, invoice.amount, why)
        bound = self.max_invoice_amount(invoice.agreement_id, now)
        if invoice.amount > bound:
            what = f"{len(books.activities)} activities of {invoice.agreement_id}"
            return refuse(Code.OVERCHARGE, overcharge(invoice.amount, bound, what))
        increase = max(invoice.amount - self._notes_total(books), ZERO)
        if not self._fits(increase):
            why = f"{glm(increase)} GLM more does not fit the {glm(self.remaining())} GLM left"
            return refuse(Code.BUDGET, why)
        why = f"{glm(invoice.amount)} GLM is within the agreed prices (max {glm(bound)} GLM)"
        return decision(Code.ACCEPTED, invoice.amount, why, increase)

    # -- bounds ------------------------------------------------------------------------------

    def max_debit_note_amount(
        self, agreement_id: str, activity_id: str, now: dt.datetime
    ) -> Decimal:
        """The highest amount due one activity's debit note may state at ``now`` (grace included).

        An amount strictly above this is refused as an overcharge; a note stating a usage vector
        is also held to what that usage costs.
        """
        books = self._agreement(agreement_id)
        activity = self._activity_of(agreement_id, activity_id)
        seconds = to_seconds(_end(books, now) - activity.created_at) + grace_seconds(self.grace)
        return books.terms.max_activity_cost(seconds) + self.grace.amount

    def max_invoice_amount(self, agreement_id: str, now: dt.datetime) -> Decimal:
        """The highest invoice the agreement's recorded activities allow (grace included).

        Each activity may cost at most its start price plus all threads busy from its creation to
        the agreement's end (or ``now``). Activities the requestor never recorded count for
        nothing: the provider cannot run an activity nobody asked for.
        """
        books = self._agreement(agreement_id)
        end = _end(books, now)
        total = ZERO
        with localcontext() as ctx:
            ctx.prec = PREC
            for activity_id in books.activities:
                created = self._activities[activity_id].created_at
                seconds = to_seconds(end - created) + grace_seconds(self.grace)
                total += books.terms.max_activity_cost(seconds)
            return total + self.grace.amount

    # -- the books ---------------------------------------------------------------------------

    def has_agreement(self, agreement_id: str) -> bool:
        return agreement_id in self._agreements

    def has_activity(self, activity_id: str) -> bool:
        """True if the activity is recorded (under whichever agreement)."""
        return activity_id in self._activities

    def accepted_for(self, agreement_id: str) -> Decimal:
        """What the agreement has committed: its invoice if accepted, else its debit notes."""
        return self._committed(self._agreement(agreement_id))

    def invoice_state(self, agreement_id: str) -> InvoiceState:
        return self._agreement(agreement_id).invoice_state

    def spent(self) -> Decimal:
        """Everything committed by accepted debit notes and invoices (never above the budget)."""
        with localcontext() as ctx:
            ctx.prec = PREC
            return sum((self._committed(b) for b in self._agreements.values()), ZERO)

    def remaining(self) -> Decimal:
        return self.budget - self.spent()

    def outstanding(self) -> tuple[str, ...]:
        """Terminated agreements whose invoice is not accepted yet, the longest-ended first."""
        ended = [
            (books.terminated_at, agreement_id)
            for agreement_id, books in self._agreements.items()
            if books.terminated_at is not None and books.invoice_state is not InvoiceState.ACCEPTED
        ]
        return tuple(agreement_id for _, agreement_id in sorted(ended))

    def refusals(self) -> Mapping[Code, int]:
        """Refusals recorded so far, by code (each document counted once)."""
        return MappingProxyType(dict(self._refusals))

    def totals(self) -> Totals:
        with localcontext() as ctx:
            ctx.prec = PREC
            notes = sum((self._notes_total(b) for b in self._agreements.values()), ZERO)
            invoices = sum(
                (
                    b.invoice_amount
                    for b in self._agreements.values()
                    if b.invoice_state is InvoiceState.ACCEPTED
                ),
                ZERO,
            )
            spent = self.spent()
            return Totals(self.budget, notes, invoices, spent, self.budget - spent)

    # -- internals ---------------------------------------------------------------------------

    def _agreement(self, agreement_id: str) -> _Agreement:
        books = self._agreements.get(agreement_id)
        if books is None:
            raise ValueError(f"agreement {agreement_id} is not recorded")
        return books

    def _activity_of(self, agreement_id: str, activity_id: str) -> _Activity:
        self._agreement(agreement_id)
        activity = self._activities.get(activity_id)
        if activity is None or activity.agreement_id != agreement_id:
            raise ValueError(f"activity {activity_id} is not recorded under {agreement_id}")
        return activity

    def _notes_total(self, books: _Agreement) -> Decimal:
        with localcontext() as ctx:
            ctx.prec = PREC
            return sum((self._activities[a].accepted for a in books.activities), ZERO)

    def _committed(self, books: _Agreement) -> Decimal:
        notes = self._notes_total(books)
        if books.invoice_state is InvoiceState.ACCEPTED:
            # Payable notes may already be scheduled; yagna pays the invoice minus those, so an
            # invoice below the notes still leaves the notes committed.
            return max(books.invoice_amount, notes)
        return notes

    def _fits(self, increase: Decimal) -> bool:
        with localcontext() as ctx:
            ctx.prec = PREC
            return self.spent() + increase <= self.budget

    def _screen_note(  # noqa: PLR0911 - one early return per reason
        self, books: _Agreement, note: DebitNoteIn
    ) -> _Activity | tuple[Code, str]:
        """Who and what the note is about, before any price: its activity, or why it is done."""
        if books.invoice_state is InvoiceState.ACCEPTED:
            return Code.AFTER_INVOICE, f"{note.agreement_id} was paid by invoice {books.invoice_id}"
        activity = self._activities.get(note.activity_id)
        if activity is None:
            why = f"activity {note.activity_id} is not recorded under {note.agreement_id} (yet)"
            return Code.UNKNOWN_ACTIVITY, why
        if activity.agreement_id != note.agreement_id:
            why = (
                f"activity {note.activity_id} belongs to agreement {activity.agreement_id}, "
                f"not {note.agreement_id}"
            )
            return Code.MISMATCH, why
        if not valid_amount(note.amount):
            return Code.MALFORMED, f"amount due {note.amount} is not valid"
        if note.debit_note_id in activity.accepted_notes:
            return Code.ALREADY_ACCEPTED, f"debit note {note.debit_note_id} was already accepted"
        if note.amount <= activity.accepted:
            why = (
                f"{glm(note.amount)} GLM is within the {glm(activity.accepted)} GLM already "
                f"accepted for activity {note.activity_id}: nothing more is owed"
            )
            return Code.NO_OP, why
        return activity

    def _price_note(
        self,
        books: _Agreement,
        activity: _Activity,
        note: DebitNoteIn,
        now: dt.datetime,
        bound: Decimal,
    ) -> tuple[Code, str] | None:
        """Why the note asks more than the agreed prices allow, or None if it does not."""
        terms = books.terms
        seconds = to_seconds(_end(books, now) - activity.created_at) + grace_seconds(self.grace)
        implausible = check_usage(terms, note.usage, seconds, self.grace)
        if implausible is not None:
            return Code.IMPLAUSIBLE_USAGE, implausible
        if note.amount > bound:
            return Code.OVERCHARGE, overcharge(
                note.amount, bound, f"{secs(seconds)} s of {note.activity_id}"
            )
        if note.usage is not None:
            usage_bound = terms.cost(note.usage) + self.grace.amount
            if note.amount > usage_bound:
                return Code.OVERCHARGE, overcharge(
                    note.amount, usage_bound, "the usage the note states"
                )
        seen = activity.accepted_notes | activity.refused_notes | {note.debit_note_id}
        too_frequent = check_frequency(terms, len(seen), seconds, self.grace, note.activity_id)
        if too_frequent is not None:
            return Code.TOO_FREQUENT, too_frequent
        return None

    def _screen_invoice(self, books: _Agreement, invoice: InvoiceIn) -> tuple[Code, str] | None:
        if books.invoice_state is InvoiceState.ACCEPTED:
            if books.invoice_id == invoice.invoice_id:
                return Code.ALREADY_ACCEPTED, f"invoice {invoice.invoice_id} was already accepted"
            why = f"{invoice.agreement_id} was already paid by invoice {books.invoice_id}"
            return Code.SECOND_INVOICE, why
        for activity_id in invoice.activity_ids:
            activity = self._activities.get(activity_id)
            if activity is not None and activity.agreement_id != invoice.agreement_id:
                return Code.MISMATCH, f"activity {activity_id} is of {activity.agreement_id}"
        if not valid_amount(invoice.amount):
            return Code.MALFORMED, f"amount {invoice.amount} is not valid"
        return None

    def _count_refusal(self, key: str, code: Code) -> None:
        if key in self._refused_ids:
            return
        self._refused_ids.add(key)
        self._refusals[code] = self._refusals.get(code, 0) + 1


def _end(books: _Agreement, now: dt.datetime) -> dt.datetime:
    if books.terminated_at is not None and books.terminated_at < now:
        return books.terminated_at
    return now


def _check_time(name: str, value: dt.datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")
