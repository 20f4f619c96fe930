"""Sending the payment actor's accepts, and learning whether one whose answer was lost arrived.

A POST whose answer was lost may or may not have reached yagna, so it is never sent again
blindly: yagna is asked first. An invoice whose accept did not arrive is decided again from the
same books (the actor stays busy meanwhile, so no other decision sees a budget that is not
settled); a debit note, already recorded as accepted, is sent again a few times.

:class:`Accepts` is an object the payment actor holds. Each step is a small message
(:data:`AcceptStep`) that also tags its io call, so the call's result comes back to the actor
with it, and a step asked again later comes back through the actor's timers. It hands the actor
one final answer per accept: :class:`Arrived` or :class:`NotArrived`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from golem_actors.actors.base import RuntimeActor
from golem_actors.actors.io import IoResult
from golem_actors.payments.decisions import DebitNoteIn, InvoiceIn
from golem_actors.payments.documents import doc_id
from golem_actors.yagna.models import Allocation, DebitNote, Invoice

__all__ = ["ACCEPT_STEPS", "AcceptStep", "Accepts", "Arrived", "NotArrived"]

log = logging.getLogger(__name__)

_RECHECKS = 8  # about a minute of asking yagna whether an invoice's accept arrived
_ACCEPT_TRIES = 5  # accepts of one document that yagna answered with an error
_ACCEPTED = frozenset({"ACCEPTED", "SETTLED"})


@dataclass(frozen=True)
class _Send:
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


AcceptStep = _Send | _Recheck | _NoteRecheck
#: Every step type, for the actor's handler of the ones taken again on a timer.
ACCEPT_STEPS: tuple[type[AcceptStep], ...] = (_Send, _Recheck, _NoteRecheck)


@dataclass(frozen=True)
class Arrived:
    """The accept of ``document`` reached yagna (its answer said so, or yagna did when asked)."""

    document: DebitNoteIn | InvoiceIn


@dataclass(frozen=True)
class NotArrived:
    """The accept of ``document`` did not arrive and is not sent again from here.

    ``again``: the invoice as yagna still has it (received), to be decided and sent again from
    the same books; None when it is given up on (an invoice is left outstanding, so a resumed
    run asks yagna again; a debit note stays recorded as accepted, which only overstates what is
    committed, and its activity's next note supersedes it).
    """

    document: DebitNoteIn | InvoiceIn
    again: Invoice | None = None


class Accepts:
    """The payment actor's accepts, sent through its io and timers with ``allocation``."""

    def __init__(self, actor: RuntimeActor, allocation: Allocation) -> None:
        self._actor = actor
        self._allocation = allocation
        self._tries: dict[str, int] = {}  # accepts of one invoice that yagna did not take

    def send(self, document: DebitNoteIn | InvoiceIn, amount: Decimal) -> None:
        """Send the accept of a decided document; its outcome comes back as an answer."""
        self.take(_Send(document, amount))

    def take(self, step: AcceptStep) -> None:
        """Make the step's call now; its result comes back to the actor as ``io_accepts``."""
        api = self._actor.rt.client.payment
        tag = ("accepts", step)
        allocation_id = self._allocation.allocation_id
        match step:
            case _Send(document=DebitNoteIn() as note):
                self._actor.io(
                    tag, api.accept_debit_note, note.debit_note_id, step.amount, allocation_id
                )
            case _Send(document=InvoiceIn() as invoice):
                self._actor.io(
                    tag, api.accept_invoice, invoice.invoice_id, step.amount, allocation_id
                )
            case _Recheck():
                self._actor.io(tag, api.get_invoice, step.invoice.invoice_id)
            case _NoteRecheck():
                self._actor.io(tag, api.get_debit_note, step.note.debit_note_id)

    def answer(self, result: IoResult) -> Arrived | NotArrived | None:
        """yagna's answer to a step: final, or None while the accept is still in question."""
        step: object = result.tag[1]
        match step:
            case _Send():
                return self._sent(step, result)
            case _Recheck():
                return self._rechecked(step, result)
            case _NoteRecheck():
                return self._note_rechecked(step, result)
        raise TypeError(f"not an accept step: {step!r}")

    def _sent(self, send: _Send, result: IoResult) -> Arrived | None:
        document = send.document
        if result.ok:
            return Arrived(document)
        log.warning("accepting %s failed: %s; checking with yagna", doc_id(document), result.error)
        if isinstance(document, InvoiceIn):
            self._actor.after(1.0, _Recheck(document, 1), key="recheck")
        else:
            self.take(_NoteRecheck(document, send.amount, send.attempt))
        return None

    def _rechecked(self, step: _Recheck, result: IoResult) -> Arrived | NotArrived | None:
        invoice = step.invoice
        if not result.ok:
            if step.attempt < _RECHECKS:
                delay = min(10.0, 2.0**step.attempt)
                self._actor.after(delay, _Recheck(invoice, step.attempt + 1), key="recheck")
                return None
            log.error("cannot learn whether %s was accepted: %s", doc_id(invoice), result.error)
            return NotArrived(invoice)
        found = result.value_as(Invoice)
        if found.status in _ACCEPTED:
            return Arrived(invoice)  # it did arrive before the answer was lost
        tries = self._tries[doc_id(invoice)] = self._tries.get(doc_id(invoice), 0) + 1
        if tries < _ACCEPT_TRIES and found.status == "RECEIVED":
            return NotArrived(invoice, again=found)
        log.error("%s is %s in yagna; giving up on it", doc_id(invoice), found.status)
        return NotArrived(invoice)

    def _note_rechecked(self, step: _NoteRecheck, result: IoResult) -> Arrived | NotArrived | None:
        note, attempt = step.note, step.attempt
        status = result.value_as(DebitNote).status if result.ok else None
        if status in _ACCEPTED:
            return Arrived(note)  # it arrived before the answer was lost
        if attempt < _ACCEPT_TRIES and status in (None, "RECEIVED"):
            again = _Send(note, step.amount, attempt + 1)
            self._actor.after(min(10.0, 2.0**attempt), again, key=f"note:{note.activity_id}")
            return None
        log.error("%s is %s in yagna; giving up on it", doc_id(note), status or "unknown")
        return NotArrived(note)
