"""The provider's billing: debit notes at the agreed interval, the invoice when an agreement ends.

The amounts come from each agreement's books (``books.AgreementBook``, pure); this piece sends
them to yagna and watches the answers: a debit note the requestor leaves unaccepted past the
accept timeout ends its agreement, as a real provider's would. Which agreements to end is
returned to the caller (the agent's clock), which hands them to ``Agreements``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from decimal import Decimal

from golem_actors.localnet.offer import ACCEPT_TIMEOUT, DEBIT_NOTE_INTERVAL, PAYMENT_TIMEOUT
from golem_actors.localnet.provider.books import AgreementBook
from golem_actors.localnet.provider.shared import POLL, Context, Ledger
from golem_actors.yagna import YagnaClient, YagnaError
from golem_actors.yagna.models import Agreement, DebitNoteEvent

__all__ = ["Billing", "Ending"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ending:
    """An agreement the provider ends, and the reason it gives the requestor."""

    agreement_id: str
    reason: str


class Billing:
    """Opens each agreement's books, sends what they say is due, and hears notes accepted."""

    def __init__(self, ctx: Context, ledger: Ledger) -> None:
        self._ctx = ctx
        self._ledger = ledger

    def open_book(self, agreement: Agreement) -> AgreementBook:
        """The books of an agreement about to be approved, on the terms it settled."""
        offer = agreement.offer.properties
        spec = self._ctx.spec
        return AgreementBook(
            agreement.agreement_id,
            list(offer.get("golem.com.pricing.model.linear.coeffs") or spec.coefficients),
            float(offer.get(DEBIT_NOTE_INTERVAL, spec.debit_note_interval)),
            float(offer.get(ACCEPT_TIMEOUT, spec.accept_timeout)),
            overcharge=self._ctx.faults.read().overcharge,
            approved_at=time.monotonic(),
            # Payable notes only when mid-agreement payments were agreed (GAP-3: a payment
            # timeout on both sides), not merely because a debit-note interval was.
            payable=PAYMENT_TIMEOUT in agreement.demand.properties and PAYMENT_TIMEOUT in offer,
        )

    def run(self) -> None:
        """The loop: mark debit notes accepted, so that the clock does not end their agreements."""
        self._ctx.follow(self._events, self._on_event)

    @staticmethod
    def _events(yagna: YagnaClient, after: dt.datetime) -> list[DebitNoteEvent]:
        return yagna.payment.debit_note_events(after=after, timeout=POLL)

    def _on_event(self, event: DebitNoteEvent) -> None:
        if event.event_type == "DebitNoteAcceptedEvent":
            for _, book in self._ledger.books():
                book.debit_note_accepted(event.debit_note_id)

    def tick(self, yagna: YagnaClient, now: float) -> list[Ending]:
        """Send the debit notes due now; say which agreements must end (a note left unaccepted
        too long, or the ``terminate_after`` fault)."""
        faults = self._ctx.faults.read()
        endings = []
        for agreement_id, book in self._ledger.books():
            book.overcharge = faults.overcharge
            for due in book.debit_notes_due(now):
                self._send_debit_note(yagna, book, due.activity_id, due.amount, due.usage)
            overdue = book.overdue(now)
            if overdue is not None:
                why = f"Requestor did not accept debit note {overdue} in time"
                endings.append(Ending(agreement_id, why))
            elif (
                faults.terminate_after is not None
                and now - book.approved_at >= faults.terminate_after
            ):
                endings.append(Ending(agreement_id, "Provider ends the agreement (fault injected)"))
        return endings

    def invoice(self, yagna: YagnaClient, book: AgreementBook, now: float, why: str) -> None:
        """Issue and send the invoice of an agreement that has ended (all its activities too)."""
        self._ctx.crash_if("invoice")
        agreement_id = book.agreement_id
        amount = book.invoice_amount(now)
        due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self._ctx.spec.payment_timeout)
        try:
            invoice = yagna.payment.issue_invoice(agreement_id, list(book.activities), amount, due)
            yagna.payment.send_invoice(invoice.invoice_id)
            log.info("%s: invoiced %s GLM for %s (%s)", self._ctx.name, amount, agreement_id, why)
        except YagnaError as exc:
            log.warning("%s: invoicing %s failed: %s", self._ctx.name, agreement_id, exc)

    def _send_debit_note(
        self,
        yagna: YagnaClient,
        book: AgreementBook,
        activity_id: str,
        amount: Decimal,
        usage: list[float],
    ) -> None:
        self._ctx.crash_if("debit_note")
        due = None
        if book.payable:
            due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self._ctx.spec.payment_timeout)
        try:
            note = yagna.payment.issue_debit_note(
                book.agreement_id,
                activity_id,
                amount,
                usage_counter_vector=usage,
                payment_due_date=due,
            )
            book.debit_note_sent(note.debit_note_id, time.monotonic())
            yagna.payment.send_debit_note(note.debit_note_id)
        except YagnaError as exc:
            log.info("%s: debit note for %s failed: %s", self._ctx.name, activity_id, exc)
