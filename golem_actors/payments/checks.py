"""The payment actor's questions to yagna: is this agreement ours, and did that accept arrive.

An invoice or debit note can name an agreement the requestor lost track of (the agreement actor
failed on our side while the provider had approved, then terminated it: the provider invoices) or
an activity it never recorded (the create call's answer was lost while yagna created it). Refusing
or ignoring such a document leaves an honest bill unpaid forever. Our yagna is the ground truth:
its requestor API lists only our own agreements and activities. So before dropping or refusing,
the payment actor fetches the agreement, accepts responsibility only if it is this run's (see
:func:`golem_actors.payments.adoption.why_not_ours`), records it and its activities (each unknown
one from the agreement's approval, the earliest it could have started), and then decides the
document as usual: within prices and budget, exactly once.

The other question is whether an accept arrived: a POST whose answer was lost may or may not have
reached yagna, so it is never sent again blindly; yagna is asked first. Accepts are therefore sent
from here too.

:class:`PaymentChecks` is an object the payment actor holds. Every question is a small message
(:data:`Question`): asked now, its blocking call runs on the io pool and comes back tagged with
it; asked again later, it comes back through the actor's timers. The checks retry on their own
and hand the actor one final :data:`Answer` per question (:class:`Checked`, :class:`Arrived`,
:class:`NotArrived`); what to decide next stays the actor's business.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from golem_actors.actors.base import RuntimeActor
from golem_actors.actors.io import IoResult
from golem_actors.payments.adoption import unknown_activity_starts, why_not_ours
from golem_actors.payments.decisions import DebitNoteIn, InvoiceIn
from golem_actors.payments.documents import yagna_id
from golem_actors.payments.ledger import PaymentLedger
from golem_actors.payments.terms import terms_of
from golem_actors.policy.journal import AgreementStatus
from golem_actors.yagna import YagnaClient
from golem_actors.yagna.errors import YagnaNotFoundError
from golem_actors.yagna.models import Agreement, Allocation, DebitNote, Invoice

__all__ = [
    "QUESTIONS",
    "Answer",
    "Arrived",
    "Check",
    "Checked",
    "NotArrived",
    "PaymentChecks",
    "Question",
    "Verified",
    "doc_id",
    "verify_agreement",
]

log = logging.getLogger(__name__)

_CHECKS = 5  # tries of one check when yagna does not answer (about half a minute in all)
_BILLABLE = frozenset({"Approved", "Terminated"})
_RECHECKS = 8  # about a minute of asking yagna whether an invoice's accept arrived
_ACCEPT_TRIES = 5  # accepts of one document that yagna answered with an error
_ACCEPTED = frozenset({"ACCEPTED", "SETTLED"})


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


# -- the questions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """Ask yagna about ``agreement_id``; ``document`` is the one held until the answer (if any)."""

    agreement_id: str
    document: DebitNote | Invoice | None = None
    attempt: int = 1


@dataclass(frozen=True)
class _Accept:
    """Send the accept of ``document`` (a debit note's again, after its answer was lost)."""

    document: DebitNoteIn | InvoiceIn
    amount: Decimal
    attempt: int = 1


@dataclass(frozen=True)
class _Recheck:
    """Ask yagna whether an invoice's accept arrived (its ``attempt``-th time of asking)."""

    invoice: InvoiceIn
    attempt: int


@dataclass(frozen=True)
class _NoteRecheck:
    """Ask yagna whether the ``attempt``-th accept of a debit note arrived."""

    note: DebitNoteIn
    amount: Decimal
    attempt: int


Question = Check | _Accept | _Recheck | _NoteRecheck
#: Every question type, for the actor's handler of the ones asked again on a timer.
QUESTIONS: tuple[type[Question], ...] = (Check, _Accept, _Recheck, _NoteRecheck)


# -- the answers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """yagna answered ``check``: the agreement is recorded (``found``) or not ours (``why``)."""

    check: Check
    found: bool
    why: str = ""


@dataclass(frozen=True)
class Arrived:
    """The accept of ``document`` reached yagna (its answer said so, or yagna did when asked)."""

    document: DebitNoteIn | InvoiceIn


@dataclass(frozen=True)
class NotArrived:
    """The accept of ``document`` did not arrive and is not sent again from here.

    ``again``: the invoice as yagna still has it (received), to be decided and sent again from
    the same books; None when it is given up on.
    """

    document: DebitNoteIn | InvoiceIn
    again: Invoice | None = None


Answer = Checked | Arrived | NotArrived


class PaymentChecks:
    """The payment actor's questions to yagna, asked on its behalf through its io and timers.

    ``ledger``, ``allocation`` and ``since`` are the actor's own: an agreement yagna says is ours
    is recorded in its books, and an agreement is ours only if made by the allocation's address
    at or after ``since``.
    """

    def __init__(
        self,
        actor: RuntimeActor,
        ledger: PaymentLedger,
        allocation: Allocation,
        since: dt.datetime,
    ) -> None:
        self._actor = actor
        self._ledger = ledger
        self._allocation = allocation
        self._since = since
        self._tries: dict[str, int] = {}  # accepts of one invoice that yagna did not take

    def send(self, document: DebitNoteIn | InvoiceIn, amount: Decimal) -> None:
        """Send the accept of a decided document; the outcome is an :data:`Answer`."""
        self.ask(_Accept(document, amount))

    def ask(self, question: Question) -> None:
        """Ask yagna now; the call's result comes back to the actor as ``io_checks``."""
        rt = self._actor.rt
        api = rt.client.payment
        tag = ("checks", question)
        allocation_id = self._allocation.allocation_id
        match question:
            case Check():
                run_id = rt.journal.state.run_id if rt.journal is not None else None
                self._actor.io(
                    tag,
                    verify_agreement,
                    rt.client,
                    question.agreement_id,
                    since=self._since,
                    run_id=run_id,
                    identity=self._allocation.address,
                )
            case _Accept(document=DebitNoteIn() as note):
                self._actor.io(
                    tag, api.accept_debit_note, note.debit_note_id, question.amount, allocation_id
                )
            case _Accept(document=InvoiceIn() as invoice):
                self._actor.io(
                    tag, api.accept_invoice, invoice.invoice_id, question.amount, allocation_id
                )
            case _Recheck():
                self._actor.io(tag, api.get_invoice, question.invoice.invoice_id)
            case _NoteRecheck():
                self._actor.io(tag, api.get_debit_note, question.note.debit_note_id)

    def answer(self, result: IoResult) -> Answer | None:
        """yagna's answer to a question: final, or None while the question is asked again."""
        match result.tag[1]:
            case Check() as check:
                return self._verified(check, result)
            case _Accept() as accept:
                return self._sent(accept, result)
            case _Recheck() as recheck:
                return self._rechecked(recheck, result)
            case _NoteRecheck() as recheck:
                return self._note_rechecked(recheck, result)
        raise TypeError(f"not a payment check: {result.tag!r}")

    def _again(self, delay_s: float, question: Question, key: str) -> None:
        self._actor.after(delay_s, question, key=key)

    # -- is it ours ---------------------------------------------------------------------------

    def _verified(self, check: Check, result: IoResult) -> Checked | None:
        if not result.ok:
            if check.attempt < _CHECKS:
                retry = Check(check.agreement_id, check.document, check.attempt + 1)
                delay = min(10.0, 1.0 * 2**check.attempt)
                self._again(delay, retry, _key(check))
                return None
            log.warning("cannot ask yagna about agreement %s: %s", check.agreement_id, result.error)
            return Checked(check, found=False, why=str(result.error))
        verified = result.value_as(Verified)
        if verified.agreement is None:
            return Checked(check, found=False, why=verified.why_not)
        return Checked(check, found=self._record(verified.agreement, verified.activity_ids))

    def _record(self, agreement: Agreement, activity_ids: tuple[str, ...]) -> bool:
        """Record what yagna says is ours, journaled like a registration; False if unusable."""
        agreement_id = agreement.agreement_id
        now = dt.datetime.now(dt.UTC)
        approved = agreement.approved_date or now
        journal = self._actor.rt.journal
        if not self._ledger.has_agreement(agreement_id):
            try:
                self._ledger.record_agreement(agreement_id, terms_of(agreement), approved)
            except ValueError as exc:
                log.error("agreement %s has terms we cannot check: %s", agreement_id, exc)  # noqa: TRY400
                return False
            log.warning("adopting agreement %s: ours in yagna, never registered", agreement_id)
            if journal is not None:
                journal.agreement(
                    agreement_id, AgreementStatus.APPROVED, agreement.provider_id or ""
                )
        known = {a for a in activity_ids if self._ledger.has_activity(a)}
        for activity_id, at in unknown_activity_starts(agreement, activity_ids, known, now).items():
            try:
                self._ledger.record_activity(agreement_id, activity_id, at)
            except (KeyError, ValueError) as exc:
                log.warning("recording activity %s: %s", activity_id, exc)
                continue
            log.warning("adopting activity %s of %s, never registered", activity_id, agreement_id)
            if journal is not None:
                journal.activity(activity_id, agreement_id, at)
        return True

    # -- did the accept arrive ----------------------------------------------------------------

    def _sent(self, accept: _Accept, result: IoResult) -> Arrived | None:
        document = accept.document
        if result.ok:
            return Arrived(document)
        # The accept may or may not have reached yagna (a POST is never retried blindly): ask.
        log.warning("accepting %s failed: %s; checking with yagna", doc_id(document), result.error)
        if isinstance(document, InvoiceIn):
            # The actor stays busy, so no other decision sees a budget that is not settled.
            self._again(1.0, _Recheck(document, 1), "recheck")
        else:
            self.ask(_NoteRecheck(document, accept.amount, accept.attempt))
        return None

    def _rechecked(self, message: _Recheck, result: IoResult) -> Arrived | NotArrived | None:
        invoice = message.invoice
        if not result.ok:
            if message.attempt < _RECHECKS:
                delay = min(10.0, 1.0 * 2**message.attempt)
                self._again(delay, _Recheck(invoice, message.attempt + 1), "recheck")
                return None
            log.error("cannot learn whether %s was accepted: %s", doc_id(invoice), result.error)
            return NotArrived(invoice)  # left outstanding: a resumed run asks yagna again
        found = result.value_as(Invoice)
        if found.status in _ACCEPTED:
            return Arrived(invoice)  # it did arrive before the answer was lost
        tries = self._tries[doc_id(invoice)] = self._tries.get(doc_id(invoice), 0) + 1
        if tries < _ACCEPT_TRIES and found.status == "RECEIVED":
            return NotArrived(invoice, again=found)  # decided (and sent) again, same books
        log.error("%s is %s in yagna; giving up on it", doc_id(invoice), found.status)
        return NotArrived(invoice)

    def _note_rechecked(
        self, message: _NoteRecheck, result: IoResult
    ) -> Arrived | NotArrived | None:
        """A debit note given up on stays recorded as accepted (that only overstates what is
        committed), and its activity's next note supersedes it."""
        note, attempt = message.note, message.attempt
        status = result.value_as(DebitNote).status if result.ok else None
        if status in _ACCEPTED:
            return Arrived(note)  # it arrived before the answer was lost
        if attempt < _ACCEPT_TRIES and status in (None, "RECEIVED"):
            delay = min(10.0, 2.0**attempt)
            self._again(
                delay, _Accept(note, message.amount, attempt + 1), f"note:{note.activity_id}"
            )
            return None
        log.error("%s is %s in yagna; giving up on it", doc_id(note), status or "unknown")
        return NotArrived(note)


def _key(check: Check) -> str:
    document = check.document
    if document is None:
        return f"check:{check.agreement_id}"
    return f"check:{check.agreement_id}:{yagna_id(document)}"


def doc_id(document: DebitNoteIn | InvoiceIn) -> str:
    """The document as a log line names it."""
    if isinstance(document, DebitNoteIn):
        return f"debit note {document.debit_note_id}"
    return f"invoice {document.invoice_id}"
