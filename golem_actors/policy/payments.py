"""The requestor's books: which debit notes and invoices to accept, and how much is committed.

Pure policy: no I/O, no threads, no clock reads. The caller passes ``now`` (a timezone-aware
``datetime``), asks for a :class:`Decision`, journals and sends it, then applies it with the
matching ``record_*`` method. Deciding never changes the books, so a decision that was never
journaled costs nothing, and replaying a journal through the ``record_*`` methods rebuilds them.
Record each accepted decision before deciding the next one: the budget check only sees what was
recorded (the payment actor is one thread, so this is the natural order).

What a provider may charge is bounded by the agreed linear prices and wall time, never by the
provider's own word: an activity cannot have run longer than since the requestor asked for it,
and cannot have used more cpu than ``cpu_threads`` per second of it. A debit note that states a
usage vector must also cost what that usage costs. Anything above the bound is an overcharge and
is refused with the excess in the reason.

Two yagna facts shape the decisions (checked in yagna's ``core/payment/src/api``):

* Accepting a debit note or an invoice must state exactly the document's own amount: yagna
  answers 400 "Invalid amount accepted" otherwise. So an accepted decision always carries the
  document's amount, and a partial acceptance does not exist: accept all of it, or refuse.
* Rejecting a debit note answers 501 (not implemented, also in 0.17), as golem-js notes. A refused
  debit note is therefore simply *not accepted*; the provider may end the agreement once the
  note's accept timeout passes, which is the provider's call. Invoice rejection may exist; a
  refused invoice is at least never accepted.

Two anchor bugs are avoided on purpose. yapapi#1014: extra or late final debit notes killed
honest activities for "too many debit notes"; here the frequency rule allows a generous slack, a
note that adds nothing (equal to or lower than the one already accepted for its activity) is
accepted as a no-op before any frequency check, and refusing a note never kills anything by
itself. golem-js: a second invoice for an agreement that was already paid is an error; here it is
refused, so no invoice is ever paid twice.

Payable debit notes (mid-agreement payments) are not rate-limited against the payment timeout:
the money is bounded by the amount checks whatever the cadence, and localnet's provider marks
every debit note payable once the interval was negotiated, so such a rule would refuse honest
notes there.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation, localcontext
from types import MappingProxyType

__all__ = [
    "CPU_SEC",
    "DURATION_SEC",
    "Code",
    "DebitNoteIn",
    "Decision",
    "Grace",
    "InvoiceIn",
    "InvoiceState",
    "PaymentLedger",
    "Terms",
    "Totals",
    "parse_usage",
]

DURATION_SEC = "golem.usage.duration_sec"
CPU_SEC = "golem.usage.cpu_sec"
_TIME_BOUND_COUNTERS = frozenset({DURATION_SEC, CPU_SEC})
_PREC = 60  # digits: 18 decimals of GLM on top of any realistic amount, never rounded away
_ZERO = Decimal(0)


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
class Terms:
    """What an agreement lets the provider charge: linear prices and the payment cadence.

    ``prices`` maps each counter of ``usage_vector`` to its price per unit (GLM). Only time-bound
    counters (``golem.usage.duration_sec``, ``golem.usage.cpu_sec``) may have a non-zero price:
    for any other counter wall time gives no upper bound, so the books could not tell an honest
    bill from an overcharge, and such terms are refused here, before any money is committed.
    ``payment_timeout_s`` is carried for the caller; payable notes are not rate-limited here (see
    the module docstring).
    """

    prices: Mapping[str, Decimal]
    usage_vector: tuple[str, ...]
    start_price: Decimal
    cpu_threads: int
    debit_note_interval_s: float | None = None
    accept_timeout_s: float | None = None
    payment_timeout_s: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "usage_vector", tuple(self.usage_vector))
        object.__setattr__(self, "prices", MappingProxyType(dict(self.prices)))
        if len(set(self.usage_vector)) != len(self.usage_vector):
            raise ValueError(f"usage_vector names a counter twice: {list(self.usage_vector)}")
        missing = [c for c in self.usage_vector if c not in self.prices]
        extra = [c for c in self.prices if c not in self.usage_vector]
        if missing or extra:
            raise ValueError(
                f"prices must name exactly the usage_vector counters: "
                f"missing {missing}, not in usage_vector {extra}"
            )
        for counter, price in self.prices.items():
            _check_money(f"price of {counter}", price)
            if price and counter not in _TIME_BOUND_COUNTERS:
                raise ValueError(
                    f"price of {counter} is {price}: only {sorted(_TIME_BOUND_COUNTERS)} "
                    "may be priced, other counters have no upper bound to check a bill against"
                )
        _check_money("start_price", self.start_price)
        if isinstance(self.cpu_threads, bool) or not isinstance(self.cpu_threads, int):
            raise TypeError(f"cpu_threads must be an int, got {self.cpu_threads!r}")
        if self.cpu_threads < 1:
            raise ValueError(f"cpu_threads must be >= 1, got {self.cpu_threads}")
        for name in ("debit_note_interval_s", "accept_timeout_s", "payment_timeout_s"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")

    def price(self, counter: str) -> Decimal:
        return self.prices.get(counter, _ZERO)

    def cost(self, usage: Sequence[Decimal]) -> Decimal:
        """start price + prices · usage: what an honest provider bills for this usage vector."""
        if len(usage) != len(self.usage_vector):
            raise ValueError(f"{len(usage)} usage counters for {len(self.usage_vector)}")
        with localcontext() as ctx:
            ctx.prec = _PREC
            terms = (self.prices[c] * u for c, u in zip(self.usage_vector, usage, strict=True))
            return self.start_price + sum(terms, _ZERO)

    def max_activity_cost(self, seconds: Decimal) -> Decimal:
        """The most one activity can cost after ``seconds``: all threads busy all the time."""
        with localcontext() as ctx:
            ctx.prec = _PREC
            rate = self.price(DURATION_SEC) + self.price(CPU_SEC) * self.cpu_threads
            return self.start_price + rate * max(seconds, _ZERO)


@dataclass(frozen=True)
class Grace:
    """Tolerances, so clock skew, delivery delay and rounding never refuse an honest bill.

    ``seconds`` is added to every wall-time bound (the provider's clock and its usage reports run
    a little apart from ours). ``amount`` absorbs rounding (providers compute in floats, yagna
    keeps 18 decimals). ``extra_notes`` is how many debit notes beyond the interval's schedule an
    activity may send (a first early one, a final one on destroy: yapapi#1014).
    """

    seconds: float = 30.0
    amount: Decimal = Decimal("1e-9")
    extra_notes: int = 2

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds) and self.seconds >= 0):
            raise ValueError(f"grace seconds must be >= 0, got {self.seconds!r}")
        _check_money("grace amount", self.amount)
        if isinstance(self.extra_notes, bool) or not isinstance(self.extra_notes, int):
            raise TypeError(f"extra_notes must be an int, got {self.extra_notes!r}")
        if self.extra_notes < 0:
            raise ValueError(f"extra_notes must be >= 0, got {self.extra_notes}")


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
class Decision:
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
    increase: Decimal = _ZERO
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


@dataclass
class _Activity:
    agreement_id: str
    created_at: dt.datetime
    accepted: Decimal = _ZERO  # highest cumulative amount accepted
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
    invoice_amount: Decimal = _ZERO


class PaymentLedger:
    """All agreements of one run against one budget (the allocation's total amount)."""

    def __init__(self, budget: Decimal, grace: Grace | None = None) -> None:
        _check_money("budget", budget)
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
        _check_refusal(code)
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
        _check_refusal(code)
        books = self._agreements.get(invoice.agreement_id)
        if books is not None and books.invoice_state is not InvoiceState.ACCEPTED:
            books.invoice_state = InvoiceState.REFUSED
        self._count_refusal(f"invoice:{invoice.invoice_id}", code)

    # -- decisions ---------------------------------------------------------------------------

    def decide_debit_note(self, note: DebitNoteIn, now: dt.datetime) -> Decision:
        """Accept a debit note, or say why not. Never changes the books."""
        _check_time("now", now)
        books = self._agreements.get(note.agreement_id)
        if books is None:
            return _refuse(Code.UNKNOWN_AGREEMENT, f"agreement {note.agreement_id} is not ours")
        deadline = None
        if books.terms.accept_timeout_s is not None:
            deadline = note.received_at + dt.timedelta(seconds=books.terms.accept_timeout_s)
        screened = self._screen_note(books, note)
        if not isinstance(screened, _Activity):
            code, why = screened
            return _decision(code, note.amount, why, deadline=deadline)
        activity = screened
        bound = self.max_debit_note_amount(note.agreement_id, note.activity_id, now)
        priced = self._price_note(books, activity, note, now, bound)
        if priced is not None:
            code, why = priced
            return _decision(code, note.amount, why, deadline=deadline)
        increase = note.amount - activity.accepted
        if not self._fits(increase):
            why = f"{_glm(increase)} GLM more does not fit the {_glm(self.remaining())} GLM left"
            return _refuse(Code.BUDGET, why, deadline)
        why = f"{_glm(note.amount)} GLM is within the agreed prices (max {_glm(bound)} GLM)"
        return _decision(Code.ACCEPTED, note.amount, why, increase, deadline)

    def decide_invoice(self, invoice: InvoiceIn, now: dt.datetime) -> Decision:
        """Accept an invoice exactly once, in full, or say why not. Never changes the books."""
        _check_time("now", now)
        books = self._agreements.get(invoice.agreement_id)
        if books is None:
            return _refuse(Code.UNKNOWN_AGREEMENT, f"agreement {invoice.agreement_id} is not ours")
        screened = self._screen_invoice(books, invoice)
        if screened is not None:
            code, why = screened
            return _decision(code, invoice.amount, why)
        bound = self.max_invoice_amount(invoice.agreement_id, now)
        if invoice.amount > bound:
            what = f"{len(books.activities)} activities of {invoice.agreement_id}"
            return _refuse(Code.OVERCHARGE, _overcharge(invoice.amount, bound, what))
        increase = max(invoice.amount - self._notes_total(books), _ZERO)
        if not self._fits(increase):
            why = f"{_glm(increase)} GLM more does not fit the {_glm(self.remaining())} GLM left"
            return _refuse(Code.BUDGET, why)
        why = f"{_glm(invoice.amount)} GLM is within the agreed prices (max {_glm(bound)} GLM)"
        return _decision(Code.ACCEPTED, invoice.amount, why, increase)

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
        seconds = _seconds(_end(books, now) - activity.created_at) + _grace_seconds(self.grace)
        return books.terms.max_activity_cost(seconds) + self.grace.amount

    def max_invoice_amount(self, agreement_id: str, now: dt.datetime) -> Decimal:
        """The highest invoice the agreement's recorded activities allow (grace included).

        Each activity may cost at most its start price plus all threads busy from its creation to
        the agreement's end (or ``now``). Activities the requestor never recorded count for
        nothing: the provider cannot run an activity nobody asked for.
        """
        books = self._agreement(agreement_id)
        end = _end(books, now)
        total = _ZERO
        with localcontext() as ctx:
            ctx.prec = _PREC
            for activity_id in books.activities:
                created = self._activities[activity_id].created_at
                seconds = _seconds(end - created) + _grace_seconds(self.grace)
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
            ctx.prec = _PREC
            return sum((self._committed(b) for b in self._agreements.values()), _ZERO)

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
            ctx.prec = _PREC
            notes = sum((self._notes_total(b) for b in self._agreements.values()), _ZERO)
            invoices = sum(
                (
                    b.invoice_amount
                    for b in self._agreements.values()
                    if b.invoice_state is InvoiceState.ACCEPTED
                ),
                _ZERO,
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
            ctx.prec = _PREC
            return sum((self._activities[a].accepted for a in books.activities), _ZERO)

    def _committed(self, books: _Agreement) -> Decimal:
        notes = self._notes_total(books)
        if books.invoice_state is InvoiceState.ACCEPTED:
            # Payable notes may already be scheduled; yagna pays the invoice minus those, so an
            # invoice below the notes still leaves the notes committed.
            return max(books.invoice_amount, notes)
        return notes

    def _fits(self, increase: Decimal) -> bool:
        with localcontext() as ctx:
            ctx.prec = _PREC
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
        if not _valid_amount(note.amount):
            return Code.MALFORMED, f"amount due {note.amount} is not valid"
        if note.debit_note_id in activity.accepted_notes:
            return Code.ALREADY_ACCEPTED, f"debit note {note.debit_note_id} was already accepted"
        if note.amount <= activity.accepted:
            why = (
                f"{_glm(note.amount)} GLM is within the {_glm(activity.accepted)} GLM already "
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
        seconds = _seconds(_end(books, now) - activity.created_at) + _grace_seconds(self.grace)
        implausible = _check_usage(terms, note, seconds, self.grace)
        if implausible is not None:
            return Code.IMPLAUSIBLE_USAGE, implausible
        if note.amount > bound:
            return Code.OVERCHARGE, _overcharge(
                note.amount, bound, f"{_secs(seconds)} s of {note.activity_id}"
            )
        if note.usage is not None:
            usage_bound = terms.cost(note.usage) + self.grace.amount
            if note.amount > usage_bound:
                return Code.OVERCHARGE, _overcharge(
                    note.amount, usage_bound, "the usage the note states"
                )
        too_frequent = self._check_frequency(terms, activity, note, seconds)
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
        if not _valid_amount(invoice.amount):
            return Code.MALFORMED, f"amount {invoice.amount} is not valid"
        return None

    def _check_frequency(
        self, terms: Terms, activity: _Activity, note: DebitNoteIn, seconds: Decimal
    ) -> str | None:
        """Refuse only notes well beyond the agreed cadence (yapapi#1014 killed honest ones)."""
        interval = terms.debit_note_interval_s
        if interval is None:
            return None
        seen = activity.accepted_notes | activity.refused_notes | {note.debit_note_id}
        allowed = 1 + self.grace.extra_notes + math.floor(seconds / _to_decimal(interval))
        if len(seen) <= allowed:
            return None
        return (
            f"debit note {len(seen)} for activity {note.activity_id} after {_secs(seconds)} s; "
            f"an interval of {interval} s allows at most {allowed}"
        )

    def _count_refusal(self, key: str, code: Code) -> None:
        if key in self._refused_ids:
            return
        self._refused_ids.add(key)
        self._refusals[code] = self._refusals.get(code, 0) + 1


def parse_usage(raw: object) -> tuple[Decimal, ...] | None:
    """A usage counter vector from yagna's JSON (a list of numbers) as Decimals, or None.

    Entries that are not numbers become NaN rather than raising, so a malformed vector is refused
    as implausible instead of crashing the payment actor.
    """
    if raw is None:
        return None
    if not isinstance(raw, list | tuple):
        return (Decimal("NaN"),)
    return tuple(_usage_entry(x) for x in raw)


def _usage_entry(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return Decimal("NaN")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal("NaN")


def _check_usage(terms: Terms, note: DebitNoteIn, seconds: Decimal, grace: Grace) -> str | None:
    """Why the note's usage vector cannot be true after ``seconds``, or None if it can."""
    usage = note.usage
    if usage is None:
        return None
    if len(usage) != len(terms.usage_vector):
        return f"usage vector has {len(usage)} counters, the agreement {len(terms.usage_vector)}"
    for counter, value in zip(terms.usage_vector, usage, strict=True):
        if not value.is_finite() or value < 0:
            return f"{counter} = {value} is not a non-negative number"
    named = dict(zip(terms.usage_vector, usage, strict=True))
    duration = named.get(DURATION_SEC)
    if duration is not None and duration > seconds:
        return f"{DURATION_SEC} = {duration} but the activity is at most {_secs(seconds)} s old"
    cpu = named.get(CPU_SEC)
    if cpu is not None:
        wall = min(duration + _grace_seconds(grace), seconds) if duration is not None else seconds
        limit = wall * terms.cpu_threads
        if cpu > limit:
            return f"{CPU_SEC} = {cpu} exceeds {terms.cpu_threads} threads for {_secs(wall)} s"
    return None


def _decision(
    code: Code,
    amount: Decimal,
    reason: str,
    increase: Decimal = _ZERO,
    deadline: dt.datetime | None = None,
) -> Decision:
    """Accept ``amount`` (the document's own) for an accepting code; 0 for anything else."""
    accept = code in {Code.ACCEPTED, Code.NO_OP}
    return Decision(
        accept=accept,
        amount=amount if accept else _ZERO,
        reason=reason,
        code=code,
        increase=increase if accept else _ZERO,
        deadline=deadline,
    )


def _refuse(code: Code, reason: str, deadline: dt.datetime | None = None) -> Decision:
    return _decision(code, _ZERO, reason, deadline=deadline)


def _overcharge(amount: Decimal, bound: Decimal, what: str) -> str:
    return (
        f"overcharge by {_glm(amount - bound)} GLM: {_glm(amount)} GLM asked, the agreed prices "
        f"allow at most {_glm(bound)} GLM for {what}"
    )


def _end(books: _Agreement, now: dt.datetime) -> dt.datetime:
    if books.terminated_at is not None and books.terminated_at < now:
        return books.terminated_at
    return now


def _seconds(delta: dt.timedelta) -> Decimal:
    """A timedelta in seconds, exactly, floored at 0."""
    exact = Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds).scaleb(-6)
    return max(exact, _ZERO)


def _grace_seconds(grace: Grace) -> Decimal:
    return _to_decimal(grace.seconds)


def _to_decimal(seconds: float) -> Decimal:
    return Decimal(str(seconds))


def _valid_amount(amount: Decimal) -> bool:
    return isinstance(amount, Decimal) and amount.is_finite() and amount >= 0


def _check_money(name: str, value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a finite non-negative Decimal, got {value!r}")


def _check_time(name: str, value: dt.datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


def _check_refusal(code: Code) -> None:
    if not code.refusal:
        raise ValueError(f"{code.value} is not a refusal")


def _glm(amount: Decimal) -> str:
    return f"{amount.normalize():f}" if amount else "0"


def _secs(seconds: Decimal) -> str:
    return f"{seconds.quantize(Decimal('0.001')).normalize():f}"
