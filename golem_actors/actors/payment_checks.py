"""Asking our yagna about agreements and activities the payment books do not know.

An invoice or debit note can name an agreement the requestor lost track of (the agreement actor
failed on our side while the provider had approved, then terminated it: the provider invoices) or
an activity it never recorded (the create call's answer was lost while yagna created it). Refusing
or ignoring such a document leaves an honest bill unpaid forever. Our yagna is the ground truth:
its requestor API lists only our own agreements and activities. So before dropping or refusing,
the payment actor fetches the agreement, accepts responsibility only if it is this run's (see
:func:`golem_actors.payments.adoption.why_not_ours`), records it and its activities (each unknown
one from the agreement's approval, the earliest it could have started), and then decides the
document as usual: within prices and budget, exactly once.

The blocking calls run on the io pool (:func:`verify_agreement`); the actor side is
:class:`PaymentChecks`, a base of the payment actor, which keeps deciding one document at a time.
It also holds the other question the actor asks yagna: whether an accept whose answer was lost
arrived (a POST is never retried blindly).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from golem_actors.actors import payment_docs
from golem_actors.actors.base import RuntimeActor, handles
from golem_actors.actors.io import IoResult
from golem_actors.payments.adoption import unknown_activity_starts, why_not_ours
from golem_actors.payments.decisions import DebitNoteIn, InvoiceIn
from golem_actors.payments.ledger import PaymentLedger
from golem_actors.payments.terms import Terms
from golem_actors.policy.journal import AgreementStatus, DocStatus
from golem_actors.policy.negotiation import agreed_terms
from golem_actors.yagna import YagnaClient
from golem_actors.yagna.errors import YagnaNotFoundError
from golem_actors.yagna.models import Agreement, Allocation, DebitNote, Invoice

__all__ = [
    "Check",
    "NoteSender",
    "PaymentChecks",
    "Verified",
    "doc_id",
    "terms_of",
    "verify_agreement",
]

log = logging.getLogger(__name__)

_CHECKS = 5  # tries of one check when yagna does not answer (about half a minute in all)
_BILLABLE = frozenset({"Approved", "Terminated"})


def terms_of(agreement: Agreement) -> Terms:
    """The payment terms of an approved agreement, in the ledger's shape."""
    agreed = agreed_terms(agreement.demand.properties, agreement.offer.properties)
    pricing = agreed.pricing
    threads = agreement.offer.properties.get("golem.inf.cpu.threads", 1)
    return Terms(
        prices=pricing.price_by_counter,
        usage_vector=pricing.usage_vector,
        start_price=pricing.start_price,
        cpu_threads=int(threads) if isinstance(threads, int | float) and threads >= 1 else 1,
        debit_note_interval_s=agreed.debit_note_interval_s,
        accept_timeout_s=agreed.accept_timeout_s,
        payment_timeout_s=agreed.payment_timeout_s,
    )


@dataclass(frozen=True)
class Verified:
    """yagna's word on one agreement: ours with these activities, or why it is not ours."""

    agreement: Agreement | None
    activity_ids: tuple[str, ...] = ()
    why_not: str = ""


def verify_agreement(
    client: YagnaClient,
    agreement_id: str,
    *,
    since: dt.datetime,
    run_id: str | None,
    identity: str | None,
) -> Verified:
    """Blocking: fetch the agreement and, if it is this run's, list its activities.

    A 404 is an answer (not ours); any other error raises, so the caller can ask again.
    """
    try:
        agreement = client.market.get_agreement(agreement_id)
    except YagnaNotFoundError as exc:
        return Verified(None, why_not=f"yagna does not know it ({exc.status})")
    why = why_not_ours(agreement, since=since, run_id=run_id, identity=identity)
    if why is None and agreement.approved_date is None and agreement.state not in _BILLABLE:
        why = f"it was never approved (it is {agreement.state})"
    if why is not None:
        return Verified(None, why_not=why)
    return Verified(agreement, tuple(client.activity.activities(agreement_id)))


@dataclass(frozen=True)
class _Recheck:
    """Ask yagna whether an invoice's accept arrived (debit notes go through ``NoteSender``)."""

    invoice: InvoiceIn
    attempt: int


@dataclass(frozen=True)
class _ResendNote:
    note: DebitNoteIn
    amount: Decimal
    attempt: int


_RECHECKS = 8  # about a minute of asking yagna whether an accept arrived
_ACCEPT_TRIES = 5  # accepts of one document that yagna answered with an error
_ACCEPTED = frozenset({"ACCEPTED", "SETTLED"})


@dataclass(frozen=True)
class Check:
    """Ask yagna about ``agreement_id``; ``document`` is the one held until the answer (if any)."""

    agreement_id: str
    document: DebitNote | Invoice | None = None
    attempt: int = 1


class PaymentChecks(RuntimeActor):
    """The payment actor's questions to yagna: is this agreement ours, and did that accept
    arrive. The subclass decides; these hooks say what yagna answered."""

    ledger: PaymentLedger
    allocation: Allocation
    since: dt.datetime
    _busy: bool  # a decision (or a check it waits on) is in flight
    _tries: dict[str, int]  # accept attempts per document
    _notes_in_flight: dict[str, DebitNoteIn]  # activity id -> its note being sent
    _held_notes: dict[str, list[DebitNote]]  # activity id -> notes waiting for that one

    def checked(self, check: Check, *, found: bool, why: str) -> None:
        """yagna answered ``check``: the agreement is recorded (``found``) or not ours (``why``)."""
        raise NotImplementedError

    def _accepted(self, invoice: InvoiceIn) -> None:
        raise NotImplementedError

    def _enqueue(self, document: DebitNote | Invoice) -> None:
        raise NotImplementedError

    def _next(self) -> None:
        raise NotImplementedError

    def _journal(self, document: DebitNoteIn | InvoiceIn, status: DocStatus) -> None:
        raise NotImplementedError

    # -- is it ours ---------------------------------------------------------------------------

    @handles(Check)
    def on_check(self, message: Check) -> None:
        journal = self.rt.journal
        self.io(
            ("verified", message),
            verify_agreement,
            self.rt.client,
            message.agreement_id,
            since=self.since,
            run_id=journal.state.run_id if journal is not None else None,
            identity=self.allocation.address,
        )

    def io_verified(self, result: IoResult) -> None:
        check: Check = result.tag[1]
        if not result.ok:
            if check.attempt < _CHECKS:
                retry = Check(check.agreement_id, check.document, check.attempt + 1)
                delay = min(10.0, 1.0 * 2**check.attempt)
                self.after(delay, retry, key=_key(check))
                return
            log.warning("cannot ask yagna about agreement %s: %s", check.agreement_id, result.error)
            self.checked(check, found=False, why=str(result.error))
            return
        verified: Verified = result.value
        if verified.agreement is None:
            self.checked(check, found=False, why=verified.why_not)
            return
        self.checked(check, found=self._record(verified.agreement, verified.activity_ids), why="")

    def _record(self, agreement: Agreement, activity_ids: tuple[str, ...]) -> bool:
        """Record what yagna says is ours, journaled like a registration; False if unusable."""
        agreement_id = agreement.agreement_id
        now = dt.datetime.now(dt.UTC)
        approved = agreement.approved_date or now
        journal = self.rt.journal
        if not self.ledger.has_agreement(agreement_id):
            try:
                self.ledger.record_agreement(agreement_id, terms_of(agreement), approved)
            except ValueError as exc:
                log.error("agreement %s has terms we cannot check: %s", agreement_id, exc)  # noqa: TRY400
                return False
            log.warning("adopting agreement %s: ours in yagna, never registered", agreement_id)
            if journal is not None:
                journal.agreement(
                    agreement_id, AgreementStatus.APPROVED, agreement.provider_id or ""
                )
        known = {a for a in activity_ids if self.ledger.has_activity(a)}
        for activity_id, at in unknown_activity_starts(agreement, activity_ids, known, now).items():
            try:
                self.ledger.record_activity(agreement_id, activity_id, at)
            except (KeyError, ValueError) as exc:
                log.warning("recording activity %s: %s", activity_id, exc)
                continue
            log.warning("adopting activity %s of %s, never registered", activity_id, agreement_id)
            if journal is not None:
                journal.activity(activity_id, agreement_id, at)
        return True

    # -- did the accept arrive ----------------------------------------------------------------

    def io_accepted(self, result: IoResult) -> None:
        invoice: InvoiceIn = result.tag[1]
        if not result.ok:
            # The accept may or may not have reached yagna (a POST is never retried blindly):
            # ask yagna, still busy, so no other decision sees a budget that is not settled.
            log.warning(
                "accepting %s failed: %s; checking with yagna", doc_id(invoice), result.error
            )
            self.after(1.0, _Recheck(invoice, 1), key="recheck")
            return
        self._accepted(invoice)

    @handles(_Recheck)
    def on_recheck(self, message: _Recheck) -> None:
        api = self.rt.client.payment
        self.io(("rechecked", message), api.get_invoice, message.invoice.invoice_id)

    def io_rechecked(self, result: IoResult) -> None:
        message: _Recheck = result.tag[1]
        invoice = message.invoice
        if not result.ok:
            if message.attempt < _RECHECKS:
                delay = min(10.0, 1.0 * 2**message.attempt)
                self.after(delay, _Recheck(invoice, message.attempt + 1), key="recheck")
                return
            log.error("cannot learn whether %s was accepted: %s", doc_id(invoice), result.error)
            self._busy = False  # left outstanding: a resumed run asks yagna again
            self._next()
            return
        if result.value.status in _ACCEPTED:
            self._accepted(invoice)  # it did arrive before the answer was lost
            return
        self._busy = False
        tries = self._tries[doc_id(invoice)] = self._tries.get(doc_id(invoice), 0) + 1
        if tries < _ACCEPT_TRIES and result.value.status == "RECEIVED":
            self._enqueue(result.value)  # decided (and sent) again, from the same books
        else:
            log.error("%s is %s in yagna; giving up on it", doc_id(invoice), result.value.status)
            self._next()


def _key(check: Check) -> str:
    document = check.document
    if document is None:
        return f"check:{check.agreement_id}"
    doc_id = document.debit_note_id if isinstance(document, DebitNote) else document.invoice_id
    return f"check:{check.agreement_id}:{doc_id}"


def doc_id(document: DebitNoteIn | InvoiceIn) -> str:
    if isinstance(document, DebitNoteIn):
        return f"debit note {document.debit_note_id}"
    return f"invoice {document.invoice_id}"


class NoteSender(PaymentChecks):
    """Debit-note accepts sent without waiting for the answer (one per activity at a time).

    The note is already recorded as accepted in the books; if its accept fails, yagna is asked
    whether it arrived, and it is sent again a few times. A note given up on stays recorded (it
    only overstates what is committed) and the activity's next note supersedes it.
    """

    def _send_note(self, note: DebitNoteIn, amount: Decimal, attempt: int = 1) -> None:
        self.io(
            ("note_sent", note, amount, attempt),
            self.rt.client.payment.accept_debit_note,
            note.debit_note_id,
            amount,
            self.allocation.allocation_id,
        )

    def io_note_sent(self, result: IoResult) -> None:
        _, note, amount, attempt = result.tag
        if result.ok:
            self._note_done(note, accepted=True)
            return
        log.warning("accepting %s failed: %s; checking with yagna", doc_id(note), result.error)
        self.io(
            ("note_rechecked", note, amount, attempt),
            self.rt.client.payment.get_debit_note,
            note.debit_note_id,
        )

    def io_note_rechecked(self, result: IoResult) -> None:
        _, note, amount, attempt = result.tag
        status = result.value.status if result.ok else None
        if status in _ACCEPTED:
            self._note_done(note, accepted=True)  # it arrived before the answer was lost
        elif attempt < _ACCEPT_TRIES and status in (None, "RECEIVED"):
            delay = min(10.0, 2.0**attempt)
            key = f"note:{note.activity_id}"
            self.after(delay, _ResendNote(note, amount, attempt + 1), key=key)
        else:
            log.error("%s is %s in yagna; giving up on it", doc_id(note), status or "unknown")
            self._note_done(note, accepted=False)

    @handles(_ResendNote)
    def on_resend_note(self, message: _ResendNote) -> None:
        self._send_note(message.note, message.amount, message.attempt)

    def _note_done(self, note: DebitNoteIn, *, accepted: bool) -> None:
        self._notes_in_flight.pop(note.activity_id, None)
        if accepted:
            self._journal(note, DocStatus.ACCEPTED)
            self.rt.emit(payment_docs.accepted(note))
        for held in self._held_notes.pop(note.activity_id, []):
            self._enqueue(held)
        self._next()
