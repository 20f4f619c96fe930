"""What goes into the payment books and what comes out: documents, decisions, totals.

Pure data for :class:`golem_actors.payments.ledger.PaymentLedger` and its callers. Two yagna facts
shape a :class:`PaymentDecision` (checked in yagna's ``core/payment/src/api``):

* Accepting a debit note or an invoice must state exactly the document's own amount: yagna
  answers 400 "Invalid amount accepted" otherwise. So an accepted decision always carries the
  document's amount, and a partial acceptance does not exist: accept all of it, or refuse.
* Rejecting a debit note answers 501 (not implemented, also in 0.17), as golem-js notes. A refused
  debit note is therefore simply *not accepted*; the provider may end the agreement once the
  note's accept timeout passes, which is the provider's call. Invoice rejection may exist; a
  refused invoice is at least never accepted.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from decimal import Decimal

from golem_actors.payments.terms import ZERO, glm

__all__ = [
    "Code",
    "DebitNoteIn",
    "InvoiceIn",
    "InvoiceState",
    "PaymentDecision",
    "Totals",
    "check_refusal",
    "decision",
    "overcharge",
    "refuse",
    "valid_amount",
]


class Code(enum.Enum):
    """Why a decision went the way it did: a closed set, so it can label a metric."""

    ACCEPTED = "accepted"
    NO_OP = "no_op"  # a debit note at or below what its activity already has accepted
    ALREADY_ACCEPTED = "already_accepted"  # the same document again: nothing more to do
    UNKNOWN_AGREEMENT = "unknown_agreement"
    UNKNOWN_ACTIVITY = "unknown_activity"  # not (yet) recorded: decide again once it is
    MISMATCH = "mismatch"  # an activity billed under another agreement than its own
    AFTER_INVOICE = "after_invoice"  # a debit note once the invoice was accepted: it covers it
    SECOND_INVOICE = "second_invoice"  # another invoice for an agreement already paid
    MALFORMED = "malformed"  # a negative or non-finite amount
    IMPLAUSIBLE_USAGE = "implausible_usage"
    OVERCHARGE = "overcharge"
    TOO_FREQUENT = "too_frequent"
    BUDGET = "budget"

    @property
    def refusal(self) -> bool:
        """True for a refusal of the provider's document (what is logged and counted)."""
        return self not in _NOT_REFUSALS


# Not accepted, but not the provider's fault either: a note that crossed the invoice on the way
# (accepting it could make yagna schedule more than the invoice) or a document seen twice.
_NOT_REFUSALS = frozenset({Code.ACCEPTED, Code.NO_OP, Code.ALREADY_ACCEPTED, Code.AFTER_INVOICE})


class InvoiceState(enum.Enum):
    NONE = "none"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    REFUSED = "refused"


@dataclass(frozen=True)
class DebitNoteIn:
    """A debit note as the books need it. ``amount`` is its cumulative total amount due.

    ``usage`` is the note's usage counter vector in the agreement's ``usage_vector`` order (see
    :func:`parse_usage`), or None when the note carries none. ``received_at`` is when the requestor
    learnt of the note: the accept timeout runs from there. ``payable`` (the note has a payment
    due date) changes nothing here and is kept for logs and the journal.
    """

    debit_note_id: str
    agreement_id: str
    activity_id: str
    amount: Decimal
    received_at: dt.datetime
    usage: tuple[Decimal, ...] | None = None
    payable: bool = False


@dataclass(frozen=True)
class InvoiceIn:
    invoice_id: str
    agreement_id: str
    amount: Decimal
    activity_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class PaymentDecision:
    """What to do with one debit note or invoice.

    ``amount`` is what to send as ``totalAmountAccepted`` when accepting: always the document's
    own amount (yagna refuses any other); 0 when not accepting. ``increase`` is how much
    :meth:`PaymentLedger.spent` grows once the acceptance is recorded. ``deadline`` (debit notes
    with an agreed accept timeout) is when the provider may give up on the note, so the caller can
    send the most urgent acceptances first.
    """

    accept: bool
    amount: Decimal
    reason: str
    code: Code
    increase: Decimal = ZERO
    deadline: dt.datetime | None = None

    @property
    def refused(self) -> bool:
        return self.code.refusal


@dataclass(frozen=True)
class Totals:
    budget: Decimal
    debit_notes: Decimal  # highest note accepted per activity, summed over all activities
    invoices: Decimal  # accepted invoices, summed
    committed: Decimal  # per agreement its invoice (or, before one, its notes), summed
    remaining: Decimal


def decision(
    code: Code,
    amount: Decimal,
    reason: str,
    increase: Decimal = ZERO,
    deadline: dt.datetime | None = None,
) -> PaymentDecision:
    """Accept ``amount`` (the document's own) for an accepting code; 0 for anything else."""
    accept = code in {Code.ACCEPTED, Code.NO_OP}
    return PaymentDecision(
        accept=accept,
        amount=amount if accept else ZERO,
        reason=reason,
        code=code,
        increase=increase if accept else ZERO,
        deadline=deadline,
    )


def refuse(code: Code, reason: str, deadline: dt.datetime | None = None) -> PaymentDecision:
    return decision(code, ZERO, reason, deadline=deadline)


def overcharge(amount: Decimal, bound: Decimal, what: str) -> str:
    return (
        f"overcharge by {glm(amount - bound)} GLM: {glm(amount)} GLM asked, the agreed prices "
        f"allow at most {glm(bound)} GLM for {what}"
    )


def valid_amount(amount: Decimal) -> bool:
    return isinstance(amount, Decimal) and amount.is_finite() and amount >= 0


def check_refusal(code: Code) -> None:
    if not code.refusal:
        raise ValueError(f"{code.value} is not a refusal")
