"""PaymentActor: the run's debit notes and invoices, accepted within prices and budget.

It long-polls yagna's debit-note and invoice events, fetches each document, asks the pure
:class:`~golem_actors.payments.ledger.PaymentLedger` what to do, and sends the acceptance.
Decisions are made one at a time, each recorded before the next is decided, so two documents
arriving together can never both fit a budget that only has room for one. The most urgent debit
note (earliest accept deadline) first.

A debit note's acceptance is recorded when it is decided and sent without waiting for the
answer (at most one note per activity in flight): at 1,000 activities notes arrive ~8 a second,
and waiting for each answer in turn let them fall past their accept deadline. Recording early
only ever overstates what is committed; an invoice is still sent and answered before the next
decision.

It holds two helpers that talk to yagna on its behalf and hand back final answers: its
:class:`~golem_actors.payments.checks.PaymentChecks` hold documents the books do not know and ask
yagna whether they are ours; its :class:`~golem_actors.payments.accepts.Accepts` send accepts and
learn whether one whose answer was lost arrived. Deciding, and the order of it, stays here.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import logging
from concurrent.futures import Future
from dataclasses import dataclass
from decimal import Decimal

from golem_actors.actors.base import RuntimeActor, handles
from golem_actors.actors.io import IoResult
from golem_actors.actors.runtime import Runtime
from golem_actors.payments.accepts import ACCEPT_STEPS, Accepts, AcceptStep, Arrived, NotArrived
from golem_actors.payments.adoption import Recovered, seed_ledger
from golem_actors.payments.checks import QUESTIONS, PaymentChecks, Question
from golem_actors.payments.decisions import (
    DebitNoteIn,
    InvoiceIn,
    InvoiceState,
    PaymentDecision,
    Totals,
)
from golem_actors.payments.documents import (
    accepted,
    doc_id,
    invoice_in,
    note_in,
    received,
    refused,
    yagna_id,
)
from golem_actors.payments.ledger import PaymentLedger
from golem_actors.payments.messages import (
    AgreementClosed,
    GetTotals,
    RegisterActivity,
    RegisterAgreement,
    Settle,
)
from golem_actors.payments.terms import terms_of
from golem_actors.policy.journal import AgreementStatus, DocStatus
from golem_actors.yagna.models import Allocation, DebitNote, DebitNoteEvent, Invoice, InvoiceEvent

__all__ = ["PaymentActor"]

log = logging.getLogger(__name__)

_FAR = dt.datetime.max.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class _Fetch:
    """Fetch a document announced by an event (again, after a failure)."""

    kind: str  # "debit_note" or "invoice"
    doc_id: str
    attempt: int = 0


#: A document that cannot be fetched is asked for again, at most this many seconds apart.
_FETCH_BACKOFF_MAX_S = 30.0


@dataclass(frozen=True)
class _Poll:
    kind: str  # "debit_note" or "invoice"


class PaymentActor(RuntimeActor):
    """The one payment actor of a session: it holds the allocation and the books."""

    role = "payments"

    def __init__(
        self,
        rt: Runtime,
        allocation: Allocation,
        *,
        poll_s: float = 20.0,
        recovered: Recovered | None = None,
        since: dt.datetime | None = None,
        hold_s: float = 30.0,
    ) -> None:
        """``since``: when the session started; an agreement created before it is not ours.
        ``hold_s``: how long a document of an unregistered agreement waits for its registration
        before yagna is asked whether the agreement is ours."""
        super().__init__(rt, None)
        self.allocation = allocation
        self.ledger = PaymentLedger(allocation.total_amount)
        self._poll_s = poll_s
        start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        self._after = {"debit_note": start, "invoice": start}
        self.since = since if since is not None else start
        self._queue: list[tuple[dt.datetime, int, DebitNote | Invoice]] = []  # deadline, seq, doc
        self._seq = itertools.count()
        self._busy = False  # a decision (or a check it waits on) is in flight
        self._seen: set[str] = set()
        self._settling: list[Future[Totals]] = []
        self._not_expected: set[str] = set()  # ended with a failed provider: may never invoice
        self._recovered = recovered  # what a crashed session of this run left to settle
        self._notes_in_flight: dict[str, DebitNoteIn] = {}  # activity id -> its note being sent
        self._held_notes: dict[str, list[DebitNote]] = {}  # activity id -> notes waiting for it
        self.checks = PaymentChecks(self, self.ledger, allocation, since=self.since, hold_s=hold_s)
        self.accepts = Accepts(self, allocation)

    def started(self) -> None:
        if self._recovered is not None:
            now = dt.datetime.now(dt.UTC)
            for problem in seed_ledger(self.ledger, self._recovered, now, terms_of):
                log.warning("recovered books: %s", problem)
            for document in self._recovered.pending:
                self._seen.add(yagna_id(document))
                self._enqueue(document)
            self._recovered = None
        self.actor_ref.tell(_Poll("debit_note"))
        self.actor_ref.tell(_Poll("invoice"))

    # -- what the instances tell --------------------------------------------------------------

    @handles(RegisterAgreement)
    def on_agreement(self, message: RegisterAgreement) -> None:
        agreement = message.agreement
        try:
            terms = terms_of(agreement)  # AgreementTermsError and the ledger's own are ValueErrors
        except ValueError as exc:
            log.error("agreement %s has terms we cannot check: %s", agreement.agreement_id, exc)  # noqa: TRY400
            return
        approved = agreement.approved_date or dt.datetime.now(dt.UTC)
        if not self.ledger.has_agreement(agreement.agreement_id):  # else adopted from yagna
            self.ledger.record_agreement(agreement.agreement_id, terms, approved)
        if self.rt.journal is not None:
            self.rt.journal.agreement(
                agreement.agreement_id, AgreementStatus.APPROVED, agreement.provider_id or ""
            )
        for document in self.checks.release(agreement.agreement_id):
            self._enqueue(document)

    @handles(RegisterActivity)
    def on_activity(self, message: RegisterActivity) -> None:
        try:
            self.ledger.record_activity(
                message.agreement_id, message.activity_id, message.requested_at
            )
            if self.rt.journal is not None:
                self.rt.journal.activity(
                    message.activity_id, message.agreement_id, message.requested_at
                )
        except (KeyError, ValueError) as exc:
            log.warning("recording activity %s: %s", message.activity_id, exc)

    @handles(AgreementClosed)
    def on_closed(self, message: AgreementClosed) -> None:
        if not message.expect_invoice:
            self._not_expected.add(message.agreement_id)
        try:
            self.ledger.record_termination(message.agreement_id, dt.datetime.now(dt.UTC))
        except (KeyError, ValueError) as exc:
            log.debug("closing %s: %s", message.agreement_id, exc)

    @handles(GetTotals)
    def on_totals(self, _: GetTotals) -> Totals:
        return self.ledger.totals()

    @handles(Settle)
    def on_settle(self, message: Settle) -> None:
        self._settling.append(message.future)
        self._check_settled()

    def _unsettled(self) -> list[str]:
        """Ended agreements still owing an invoice we could accept (a refused one never will)."""
        return [
            a
            for a in self.ledger.outstanding()
            if self.ledger.invoice_state(a) is not InvoiceState.REFUSED
            and a not in self._not_expected
        ]

    def _check_settled(self) -> None:
        idle = not self._queue and not self._busy and not self._notes_in_flight
        if self._settling and idle and not self._unsettled():
            totals = self.ledger.totals()
            for future in self._settling:
                if not future.done():
                    future.set_result(totals)
            self._settling.clear()

    # -- events -------------------------------------------------------------------------------

    @handles(_Poll)
    def on_poll(self, message: _Poll) -> None:
        api = self.rt.client.payment
        fetch = api.debit_note_events if message.kind == "debit_note" else api.invoice_events
        self.io(("events", message), fetch, after=self._after[message.kind], timeout=self._poll_s)

    def io_events(self, result: IoResult) -> None:
        kind = result.tag_as(_Poll).kind
        if not result.ok:
            log.warning("polling %s events: %s", kind, result.error)
            self.after(1.0, _Poll(kind), key=f"poll:{kind}")
            return
        events: list[DebitNoteEvent | InvoiceEvent] = result.value_as(list)
        for event in events:
            self._after[kind] = max(self._after[kind], event.event_date)
            if event.event_type.endswith("ReceivedEvent"):
                doc_id = (
                    event.debit_note_id if isinstance(event, DebitNoteEvent) else event.invoice_id
                )
                if doc_id not in self._seen:
                    self._seen.add(doc_id)
                    self._fetch(_Fetch(kind, doc_id))
        self.actor_ref.tell(_Poll(kind))

    @handles(_Fetch)
    def _fetch(self, fetch: _Fetch) -> None:
        api = self.rt.client.payment
        getter = api.get_debit_note if fetch.kind == "debit_note" else api.get_invoice
        self.io(("document", fetch), getter, fetch.doc_id)

    def io_document(self, result: IoResult) -> None:
        fetch = result.tag_as(_Fetch)
        if not result.ok:
            # Never dropped: its event will not come again, so an unfetched invoice is unpaid.
            delay = min(_FETCH_BACKOFF_MAX_S, 2.0**fetch.attempt)
            log.warning(
                "fetching %s %s: %s; again in %.0f s", fetch.kind, fetch.doc_id, result.error, delay
            )
            again = _Fetch(fetch.kind, fetch.doc_id, fetch.attempt + 1)
            self.after(delay, again, key=f"fetch:{fetch.doc_id}")
            return
        document = (
            result.value_as(DebitNote) if fetch.kind == "debit_note" else result.value_as(Invoice)
        )
        if not self.ledger.has_agreement(document.agreement_id):
            self.checks.hold(document)  # events may beat the instance's registration by a few ms
            return
        self._enqueue(document)

    def _enqueue(self, document: DebitNote | Invoice) -> None:
        deadline = _FAR
        if isinstance(document, DebitNote):
            deadline = dt.datetime.now(dt.UTC)  # notes are urgent; invoices wait their turn
        heapq.heappush(self._queue, (deadline, next(self._seq), document))
        self._next()

    # -- deciding, one at a time ---------------------------------------------------------------

    def _next(self) -> None:
        if self._busy or not self._queue:
            self._check_settled()
            return
        _, _, document = heapq.heappop(self._queue)
        if isinstance(document, DebitNote) and document.activity_id in self._notes_in_flight:
            self._held_notes.setdefault(document.activity_id, []).append(document)
            self._next()
            return
        if self.checks.check_activity(document):
            # Ask yagna before refusing; still busy, so nothing else is decided meanwhile.
            self._busy = True
            return
        now = dt.datetime.now(dt.UTC)
        if isinstance(document, DebitNote):
            note = note_in(document, now)
            self.rt.emit(received(note))
            decision = self.ledger.decide_debit_note(note, now)
            self._apply(note, decision)
        else:
            invoice = invoice_in(document)
            self.ledger.record_invoice_received(invoice)
            self.rt.emit(received(invoice))
            self._apply(invoice, self.ledger.decide_invoice(invoice, now))

    def _apply(self, document: DebitNoteIn | InvoiceIn, decision: PaymentDecision) -> None:
        if not decision.accept and not decision.code.refusal:
            # Seen before, or a note the accepted invoice already covers: nothing to send.
            log.info("%s: %s", doc_id(document), decision.reason)
            self._next()
            return
        if not decision.accept:
            self._refuse(document, decision)
            self._next()
            return
        self._journal(document, DocStatus.SENDING)  # on disk before yagna hears of it
        if isinstance(document, DebitNoteIn):
            self.ledger.record_debit_note_accepted(document)  # committed before the next decision
            self._notes_in_flight[document.activity_id] = document
            self.accepts.send(document, decision.amount)  # its answer is not waited for
            self._next()
        else:
            self._busy = True  # until yagna's answer: the next decision sees settled books
            self.accepts.send(document, decision.amount)

    # -- what yagna answers the helpers --------------------------------------------------------

    @handles(*QUESTIONS)
    def on_question(self, question: Question) -> None:
        """A check's question, told by the checks or asked again on a timer."""
        self.checks.ask(question)

    def io_checks(self, result: IoResult) -> None:
        decide = self.checks.answer(result)
        if decide is None:
            return  # asked again later
        if decide.resume:
            self._busy = False
        for document in decide.documents:
            self._enqueue(document)

    @handles(*ACCEPT_STEPS)
    def on_accept_step(self, step: AcceptStep) -> None:
        """An accept's step taken again on a timer."""
        self.accepts.take(step)

    def io_accepts(self, result: IoResult) -> None:
        match self.accepts.answer(result):
            case None:
                pass  # still in question
            case Arrived(document=InvoiceIn() as invoice):
                self._accepted(invoice)
            case Arrived(document=DebitNoteIn() as note):
                self._note_done(note, arrived=True)
            case NotArrived(document=InvoiceIn(), again=again):
                self._busy = False
                if again is not None:
                    self._enqueue(again)  # decided (and sent) again, from the same books
                else:
                    self._next()
            case NotArrived(document=DebitNoteIn() as note):
                self._note_done(note, arrived=False)

    def _accepted(self, invoice: InvoiceIn) -> None:
        """The invoice's accept arrived."""
        self._busy = False
        self._journal(invoice, DocStatus.ACCEPTED)
        self.ledger.record_invoice_accepted(invoice)
        self.rt.emit(accepted(invoice))
        self._next()

    def _refuse(self, document: DebitNoteIn | InvoiceIn, decision: PaymentDecision) -> None:
        log.warning("refusing %s: %s", doc_id(document), decision.reason)
        if isinstance(document, DebitNoteIn):
            self.ledger.record_debit_note_refused(document, decision.code)
            self.rt.emit(refused(document, decision.reason))
            return
        self.ledger.record_invoice_refused(document, decision.code)
        self._journal(document, DocStatus.REFUSED)
        self.rt.emit(refused(document, decision.reason))
        self.io(
            "rejected",
            self.rt.client.payment.reject_invoice,
            document.invoice_id,
            decision.reason[:200],
        )

    def io_rejected(self, result: IoResult) -> None:
        if not result.ok:
            log.info("rejecting an invoice: %s", result.error)

    def _note_done(self, note: DebitNoteIn, *, arrived: bool) -> None:
        """The note's accept arrived, or was given up on: it stays recorded as accepted (that
        only overstates what is committed) and its activity's next note supersedes it."""
        self._notes_in_flight.pop(note.activity_id, None)
        if arrived:
            self._journal(note, DocStatus.ACCEPTED)
            self.rt.emit(accepted(note))
        for held in self._held_notes.pop(note.activity_id, []):
            self._enqueue(held)
        self._next()

    def _journal(self, document: DebitNoteIn | InvoiceIn, status: DocStatus) -> None:
        journal = self.rt.journal
        if journal is None:
            return
        if isinstance(document, DebitNoteIn):
            journal.debit_note(
                document.debit_note_id,
                document.agreement_id,
                document.activity_id,
                document.amount,
                status,
            )
        else:
            journal.invoice(document.invoice_id, document.agreement_id, document.amount, status)

    def spent(self) -> Decimal:
        return self.ledger.spent()
