"""The payment ledger: which debit notes and invoices are accepted, and what that commits.

Table-driven scenarios pin each rule; hypothesis properties check the promises over random
histories: honest bills are never refused, the budget is never exceeded, no invoice is accepted
twice, and nothing above the price bound is accepted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golem_actors.payments.decisions import (
    Code,
    DebitNoteIn,
    InvoiceIn,
    InvoiceState,
    PaymentDecision,
)
from golem_actors.payments.ledger import PaymentLedger
from golem_actors.payments.terms import Grace, Terms, parse_usage
from golem_actors.policy.pricing import CPU_SEC, DURATION_SEC

D = Decimal
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
VECTOR = (DURATION_SEC, CPU_SEC)
P_DUR = D("0.0001")
P_CPU = D("0.001")
START = D("0.01")
THREADS = 2


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def terms(**overrides: object) -> Terms:
    values: dict[str, object] = {
        "prices": {DURATION_SEC: P_DUR, CPU_SEC: P_CPU},
        "usage_vector": VECTOR,
        "start_price": START,
        "cpu_threads": THREADS,
        "debit_note_interval_s": 60.0,
        "accept_timeout_s": 120.0,
        "payment_timeout_s": None,
    }
    values.update(overrides)
    return Terms(**values)  # type: ignore[arg-type]


def cost(duration: str, cpu: str) -> Decimal:
    return START + P_DUR * D(duration) + P_CPU * D(cpu)


def time_bound(seconds: float, grace: Grace | None = None) -> Decimal:
    """What the docs promise: start + (duration price + cpu price x threads) x (t + grace)."""
    g = grace or Grace()
    elapsed = D(str(seconds)) + D(str(g.seconds))
    return START + (P_DUR + P_CPU * THREADS) * elapsed + g.amount


def ledger(budget: str = "100", **term_overrides: object) -> PaymentLedger:
    """One agreement ``ag`` approved at T0 with activity ``a1`` asked for at T0."""
    books = PaymentLedger(D(budget))
    books.record_agreement("ag", terms(**term_overrides), T0)
    books.record_activity("ag", "a1", T0)
    return books


def note(
    note_id: str,
    amount: Decimal | str,
    t: float,
    usage: tuple[str, str] | None = None,
    *,
    activity: str = "a1",
    agreement: str = "ag",
) -> DebitNoteIn:
    return DebitNoteIn(
        debit_note_id=note_id,
        agreement_id=agreement,
        activity_id=activity,
        amount=D(amount),
        received_at=at(t),
        usage=None if usage is None else tuple(D(u) for u in usage),
    )


def honest(note_id: str, t: float, cpu: str = "0", activity: str = "a1") -> DebitNoteIn:
    duration = str(t)
    return note(note_id, cost(duration, cpu), t, (duration, cpu), activity=activity)


def apply_note(books: PaymentLedger, n: DebitNoteIn, t: float) -> PaymentDecision:
    """What the payment actor does: decide, then record the decision."""
    decision = books.decide_debit_note(n, at(t))
    if decision.accept:
        books.record_debit_note_accepted(n)
    elif decision.refused:
        books.record_debit_note_refused(n, decision.code)
    return decision


def apply_invoice(books: PaymentLedger, invoice: InvoiceIn, t: float) -> PaymentDecision:
    decision = books.decide_invoice(invoice, at(t))
    if decision.accept:
        books.record_invoice_accepted(invoice)
    elif decision.refused:
        books.record_invoice_refused(invoice, decision.code)
    return decision


# -- debit notes, table-driven ------------------------------------------------------------------


@dataclass(frozen=True)
class NoteCase:
    name: str
    steps: list[tuple[DebitNoteIn, float]]  # (note, decided at t)
    expected: list[Code]
    budget: str = "100"
    terminated_at: float | None = None
    overrides: dict[str, object] = field(default_factory=dict)


NOTE_CASES = [
    NoteCase(
        "honest notes on schedule",
        [(honest("n1", 60, "30"), 60), (honest("n2", 120, "90"), 121), (honest("n3", 180), 185)],
        [Code.ACCEPTED, Code.ACCEPTED, Code.NO_OP],  # n3 bills less cpu than n2: nothing new
    ),
    NoteCase(
        "honest notes with all threads busy",
        [(honest("n1", 60, "120"), 60), (honest("n2", 120, "240"), 120)],
        [Code.ACCEPTED, Code.ACCEPTED],
    ),
    NoteCase(
        "overcharge against the stated usage",
        [(note("n1", cost("60", "30") * D("1.5"), 60, ("60", "30")), 60)],
        [Code.OVERCHARGE],
    ),
    NoteCase(
        "overcharge against wall time, no usage stated",
        [(note("n1", time_bound(60) + D("0.001"), 60), 60)],
        [Code.OVERCHARGE],
    ),
    NoteCase(
        "the time bound itself is accepted",
        [(note("n1", time_bound(60), 60), 60)],
        [Code.ACCEPTED],
    ),
    NoteCase(
        "duration longer than the activity exists",
        [(note("n1", cost("200", "0"), 60, ("200", "0")), 60)],
        [Code.IMPLAUSIBLE_USAGE],
    ),
    NoteCase(
        "more cpu than the offered threads",
        [(note("n1", cost("60", "200"), 60, ("60", "200")), 60)],
        [Code.IMPLAUSIBLE_USAGE],
    ),
    NoteCase(
        "usage vector of the wrong length",
        [(DebitNoteIn("n1", "ag", "a1", cost("60", "0"), at(60), (D(60),)), 60)],
        [Code.IMPLAUSIBLE_USAGE],
    ),
    NoteCase(
        "late final note after termination (yapapi#1014)",
        [
            (honest("n1", 60), 60),
            (honest("n2", 120), 120),
            (honest("n3", 180), 180),
            (honest("final", 185), 400),  # issued as the agreement ended, decided much later
        ],
        [Code.ACCEPTED, Code.ACCEPTED, Code.ACCEPTED, Code.ACCEPTED],
        terminated_at=182,
    ),
    NoteCase(
        "an early extra note and a final one on top of the schedule",
        [(honest("early", 2), 2), (honest("n1", 60), 60), (honest("final", 61), 61)],
        [Code.ACCEPTED, Code.ACCEPTED, Code.ACCEPTED],
    ),
    NoteCase(
        "the same note again",
        [(honest("n1", 60), 60), (honest("n1", 60), 61)],
        [Code.ACCEPTED, Code.ALREADY_ACCEPTED],
    ),
    NoteCase(
        "a lower and an equal note after a higher one",
        [(honest("n2", 120), 120), (honest("n1", 60), 121), (honest("n2b", 120), 122)],
        [Code.ACCEPTED, Code.NO_OP, Code.NO_OP],
    ),
    NoteCase(
        "unknown agreement",
        [(note("n1", "0.01", 60, agreement="other"), 60)],
        [Code.UNKNOWN_AGREEMENT],
    ),
    NoteCase(
        "activity never recorded",
        [(honest("n1", 60, activity="ghost"), 60)],
        [Code.UNKNOWN_ACTIVITY],
    ),
    NoteCase(
        "negative amount",
        [(note("n1", "-1", 60), 60)],
        [Code.MALFORMED],
    ),
    NoteCase(
        "budget exhausted",
        [(honest("n1", 60), 60), (honest("n2", 600), 600), (honest("n3", 700), 700)],
        [Code.ACCEPTED, Code.BUDGET, Code.BUDGET],
        budget="0.05",  # n1 costs 0.016, n2 0.07
    ),
    NoteCase(
        "a flood of notes, far beyond the interval",
        [(honest(f"n{i}", i), i) for i in range(1, 7)],
        # 30 s of grace and an interval of 60 s allow 1 + 2 extra notes in the first seconds
        [Code.ACCEPTED] * 3 + [Code.TOO_FREQUENT] * 3,
    ),
    NoteCase(
        "no agreed interval: no frequency rule",
        [(honest(f"n{i}", i), i) for i in range(1, 7)],
        [Code.ACCEPTED] * 6,
        overrides={"debit_note_interval_s": None},
    ),
]


@pytest.mark.parametrize("case", NOTE_CASES, ids=lambda c: c.name)
def test_debit_note_table(case: NoteCase) -> None:
    books = ledger(case.budget, **case.overrides)
    if case.terminated_at is not None:
        books.record_termination("ag", at(case.terminated_at))
    codes = []
    for n, t in case.steps:
        decision = apply_note(books, n, t)
        codes.append(decision.code)
        assert decision.accept == (decision.code in {Code.ACCEPTED, Code.NO_OP})
        assert decision.amount == (n.amount if decision.accept else 0)
        assert decision.reason
    assert codes == case.expected
    assert books.spent() <= books.budget


def test_overcharge_reason_says_by_how_much() -> None:
    books = ledger()
    honest_amount = cost("60", "30")
    decision = books.decide_debit_note(
        note("n1", honest_amount + D("0.05"), 60, ("60", "30")), at(60)
    )
    assert decision.code is Code.OVERCHARGE
    excess = D("0.05") - Grace().amount
    assert f"overcharge by {excess.normalize():f} GLM" in decision.reason

    bound = books.max_debit_note_amount("ag", "a1", at(60))
    decision = books.decide_debit_note(note("n2", bound + 1, 60), at(60))
    assert decision.code is Code.OVERCHARGE
    assert "overcharge by 1 GLM" in decision.reason


def test_accepted_note_carries_its_own_amount_deadline_and_increase() -> None:
    books = ledger()
    first = honest("n1", 60)
    decision = apply_note(books, first, 60)
    assert decision.deadline == at(60 + 120)  # received_at + accept timeout
    assert decision.increase == first.amount
    lower = honest("n0", 30)
    no_op = books.decide_debit_note(lower, at(70))
    assert no_op.accept
    assert no_op.amount == lower.amount  # yagna takes only the note's own amount
    assert no_op.increase == 0
    second = honest("n2", 120)
    decision = books.decide_debit_note(second, at(120))
    assert decision.increase == second.amount - first.amount
    assert books.spent() == first.amount  # deciding changes nothing


def test_no_deadline_without_an_agreed_accept_timeout() -> None:
    books = ledger(accept_timeout_s=None)
    assert books.decide_debit_note(honest("n1", 60), at(60)).deadline is None


def test_note_for_an_activity_of_another_agreement_is_refused() -> None:
    books = ledger()
    books.record_agreement("ag2", terms(), T0)
    books.record_activity("ag2", "b1", T0)
    decision = books.decide_debit_note(honest("n1", 60, activity="b1"), at(60))
    assert decision.code is Code.MISMATCH
    assert not decision.accept


def test_notes_after_the_invoice_was_accepted_are_refused() -> None:
    books = ledger()
    apply_note(books, honest("n1", 60), 60)
    books.record_termination("ag", at(90))
    assert apply_invoice(books, InvoiceIn("i1", "ag", cost("90", "0"), ("a1",)), 95).accept
    decision = books.decide_debit_note(honest("late", 90), at(96))
    assert decision.code is Code.AFTER_INVOICE
    assert not decision.accept


def test_refusals_are_counted_once_per_document() -> None:
    books = ledger()
    bad = note("n1", "5", 60)
    assert apply_note(books, bad, 60).code is Code.OVERCHARGE
    assert apply_note(books, bad, 61).code is Code.OVERCHARGE
    apply_invoice(books, InvoiceIn("i9", "nope", D(1)), 62)
    assert dict(books.refusals()) == {Code.OVERCHARGE: 1, Code.UNKNOWN_AGREEMENT: 1}
    with pytest.raises(ValueError, match="not a refusal"):
        books.record_debit_note_refused(bad, Code.NO_OP)


# -- invoices, table-driven ---------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceCase:
    name: str
    notes: list[tuple[DebitNoteIn, float]]
    invoices: list[tuple[InvoiceIn, float]]
    expected: list[Code]
    spent: Decimal
    budget: str = "100"


END = 100.0  # the agreement ends here in every invoice case
HONEST_TOTAL = cost("100", "50")
LIFETIME_MAX = time_bound(END)


def invoice(invoice_id: str, amount: Decimal | str, agreement: str = "ag") -> InvoiceIn:
    return InvoiceIn(invoice_id, agreement, D(amount), ("a1",))


INVOICE_CASES = [
    InvoiceCase(
        "an honest invoice",
        [],
        [(invoice("i1", HONEST_TOTAL), 110)],
        [Code.ACCEPTED],
        HONEST_TOTAL,
    ),
    InvoiceCase(
        "accepted exactly once",
        [],
        [
            (invoice("i1", HONEST_TOTAL), 110),
            (invoice("i1", HONEST_TOTAL), 111),
            (invoice("i2", "0.001"), 112),
        ],
        [Code.ACCEPTED, Code.ALREADY_ACCEPTED, Code.SECOND_INVOICE],
        HONEST_TOTAL,
    ),
    InvoiceCase(
        "above the lifetime maximum",
        [],
        [(invoice("i1", LIFETIME_MAX + D("1e-18")), 5000)],  # decided long after the end
        [Code.OVERCHARGE],
        D(0),
    ),
    InvoiceCase(
        "at the lifetime maximum",
        [],
        [(invoice("i1", LIFETIME_MAX), 5000)],
        [Code.ACCEPTED],
        LIFETIME_MAX,
    ),
    InvoiceCase(
        "a refused invoice, then a corrected one",
        [],
        [(invoice("i1", "10"), 110), (invoice("i2", HONEST_TOTAL), 111)],
        [Code.OVERCHARGE, Code.ACCEPTED],
        HONEST_TOTAL,
    ),
    InvoiceCase(
        "unknown agreement",
        [],
        [(invoice("i1", "0.01", agreement="stranger"), 110)],
        [Code.UNKNOWN_AGREEMENT],
        D(0),
    ),
    InvoiceCase(
        "after debit notes: only the rest is new money",
        [(honest("n1", 60, "30"), 60)],
        [(invoice("i1", HONEST_TOTAL), 110)],
        [Code.ACCEPTED],
        HONEST_TOTAL,
    ),
    InvoiceCase(
        "below the notes already accepted: the notes stay committed",
        [(honest("n1", 60, "30"), 60)],
        [(invoice("i1", "0.02"), 110)],
        [Code.ACCEPTED],
        cost("60", "30"),
    ),
    InvoiceCase(
        "beyond the budget",
        [(honest("n1", 60, "30"), 60)],
        [(invoice("i1", HONEST_TOTAL), 110)],
        [Code.BUDGET],
        cost("60", "30"),
        budget="0.06",  # the notes (0.046) fit, the invoice (0.07) does not
    ),
]


@pytest.mark.parametrize("case", INVOICE_CASES, ids=lambda c: c.name)
def test_invoice_table(case: InvoiceCase) -> None:
    books = ledger(case.budget)
    for n, t in case.notes:
        assert apply_note(books, n, t).accept
    books.record_termination("ag", at(END))
    codes = []
    for inv, t in case.invoices:
        decision = apply_invoice(books, inv, t)
        codes.append(decision.code)
        assert decision.amount == (inv.amount if decision.accept else 0)
    assert codes == case.expected
    assert books.spent() == case.spent


def test_invoice_after_notes_increase_and_totals() -> None:
    books = ledger()
    first = honest("n1", 60, "30")
    apply_note(books, first, 60)
    books.record_termination("ag", at(END))
    decision = apply_invoice(books, invoice("i1", HONEST_TOTAL), 110)
    assert decision.increase == HONEST_TOTAL - first.amount
    totals = books.totals()
    assert totals.invoices == HONEST_TOTAL
    assert totals.debit_notes == first.amount
    assert totals.committed == HONEST_TOTAL == books.spent()
    assert totals.remaining == D(100) - HONEST_TOTAL == books.remaining()
    assert books.invoice_state("ag") is InvoiceState.ACCEPTED
    assert books.outstanding() == ()


def test_invoice_before_termination_is_bounded_by_now() -> None:
    books = ledger()
    assert books.decide_invoice(invoice("i1", time_bound(50) + D("1e-18")), at(50)).code is (
        Code.OVERCHARGE
    )
    assert books.decide_invoice(invoice("i1", time_bound(50)), at(50)).accept


def test_invoice_counts_only_recorded_activities() -> None:
    books = ledger()
    books.record_activity("ag", "a2", at(40))  # second activity, asked for 40 s later
    books.record_termination("ag", at(END))
    two = time_bound(END) + time_bound(END - 40) - Grace().amount
    assert books.max_invoice_amount("ag", at(200)) == two
    claims_three = InvoiceIn("i1", "ag", two + time_bound(END), ("a1", "a2", "made-up"))
    assert books.decide_invoice(claims_three, at(200)).code is Code.OVERCHARGE


def test_has_agreement_and_has_activity_say_what_is_recorded() -> None:
    books = ledger()
    assert books.has_agreement("ag")
    assert not books.has_agreement("ag2")
    assert books.has_activity("a1")
    assert not books.has_activity("a2")
    books.record_activity("ag", "a2", at(5))
    assert books.has_activity("a2")


def test_invoice_naming_another_agreements_activity_is_refused() -> None:
    books = ledger()
    books.record_agreement("ag2", terms(), T0)
    books.record_activity("ag2", "b1", T0)
    decision = books.decide_invoice(InvoiceIn("i1", "ag", D("0.01"), ("a1", "b1")), at(10))
    assert decision.code is Code.MISMATCH


def test_record_invoice_accepted_twice_with_another_id_raises() -> None:
    books = ledger()
    books.record_invoice_accepted(invoice("i1", "0.01"))
    books.record_invoice_accepted(invoice("i1", "0.01"))  # a journal replay: no-op
    with pytest.raises(ValueError, match="already paid by invoice i1"):
        books.record_invoice_accepted(invoice("i2", "0.01"))
    assert books.spent() == D("0.01")


def test_outstanding_lists_terminated_unpaid_agreements() -> None:
    books = ledger()
    books.record_agreement("ag2", terms(), T0)
    books.record_agreement("ag3", terms(), T0)
    books.record_termination("ag2", at(20))
    books.record_termination("ag", at(30))
    assert books.outstanding() == ("ag2", "ag")
    books.record_invoice_received(invoice("i1", "0.01"))
    assert books.invoice_state("ag") is InvoiceState.RECEIVED
    apply_invoice(books, invoice("i1", "0.01"), 40)
    assert books.outstanding() == ("ag2",)
    apply_invoice(books, InvoiceIn("i2", "ag2", D(50)), 40)  # overcharge: still unpaid
    assert books.invoice_state("ag2") is InvoiceState.REFUSED
    assert books.outstanding() == ("ag2",)


# -- inputs ------------------------------------------------------------------------------------


def test_ledger_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="budget"):
        PaymentLedger(D(-1))
    books = ledger()
    with pytest.raises(ValueError, match="timezone-aware"):
        books.decide_debit_note(honest("n1", 60), dt.datetime(2025, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="other terms"):
        books.record_agreement("ag", terms(cpu_threads=4), T0)
    books.record_agreement("ag", terms(), T0)  # the same again: a replay
    books.record_agreement("ag2", terms(), T0)
    with pytest.raises(ValueError, match="not recorded"):
        books.record_activity("nope", "x", T0)
    with pytest.raises(ValueError, match="belongs to agreement ag"):
        books.record_activity("ag2", "a1", T0)


def test_garbage_usage_is_implausible() -> None:
    books = ledger()
    garbage = DebitNoteIn("n1", "ag", "a1", D("0.02"), at(60), parse_usage(["x", 1]))
    assert books.decide_debit_note(garbage, at(60)).code is Code.IMPLAUSIBLE_USAGE


# -- properties ---------------------------------------------------------------------------------

prices = st.decimals(min_value=0, max_value=D("0.01"), places=6)
TICK = st.integers(min_value=0, max_value=20)  # seconds a message takes to reach the requestor


@st.composite
def random_terms(draw: st.DrawFn) -> Terms:
    return Terms(
        prices={DURATION_SEC: draw(prices), CPU_SEC: draw(prices)},
        usage_vector=VECTOR,
        start_price=draw(prices),
        cpu_threads=draw(st.integers(1, 16)),
        debit_note_interval_s=draw(st.one_of(st.none(), st.integers(1, 300).map(float))),
        accept_timeout_s=draw(st.one_of(st.none(), st.integers(1, 300).map(float))),
    )


@dataclass(frozen=True)
class Event:
    t: int  # when the requestor decides
    what: DebitNoteIn | InvoiceIn


@dataclass(frozen=True)
class HonestRun:
    agreements: dict[str, tuple[Terms, int, int]]  # id -> terms, approved at, terminated at
    activities: dict[str, tuple[str, int]]  # id -> agreement, asked for at
    events: list[Event]
    total: Decimal  # every final invoice, summed


@st.composite
def honest_runs(draw: st.DrawFn) -> HonestRun:
    """Agreements, activities and an honest provider's bills, as the requestor would see them.

    The provider starts metering an activity some time after the requestor asked for it, bills
    cumulative notes on the agreed schedule (or any schedule if none was agreed), may add a
    final note as the activity ends, and invoices the sum of its activities' costs. It learns of
    the agreement's end up to 20 s late and bills until then, which the grace must absorb.
    """
    agreements: dict[str, tuple[Terms, int, int]] = {}
    activities: dict[str, tuple[str, int]] = {}
    events: list[Event] = []
    total = D(0)
    for a in range(draw(st.integers(1, 3))):
        agreement_id = f"ag{a}"
        t_terms = draw(random_terms())
        approved = draw(st.integers(0, 100))
        length = draw(st.integers(0, 2000))
        end = approved + length
        # The provider hears of the end a little later and meters its activities until then.
        lag = draw(st.integers(0, 20))
        agreements[agreement_id] = (t_terms, approved, end)
        invoice_total = D(0)
        activity_ids = []
        for b in range(draw(st.integers(0, 3))):
            activity_id = f"{agreement_id}-act{b}"
            asked = draw(st.integers(approved, end))
            activities[activity_id] = (agreement_id, asked)
            activity_ids.append(activity_id)
            started = draw(st.integers(asked, end))
            busy = D(draw(st.integers(0, 100))) / 100  # share of the threads in use
            interval = int(t_terms.debit_note_interval_s or draw(st.integers(1, 300)))

            def usage(
                t: int,
                started: int = started,
                busy: Decimal = busy,
                threads: int = t_terms.cpu_threads,
            ) -> tuple[Decimal, ...]:
                duration = D(t - started)
                return (duration, duration * threads * busy)

            issued = started + interval
            k = 0
            while issued <= end and k < 30:
                u = usage(issued)
                events.append(
                    Event(
                        issued + draw(TICK),
                        DebitNoteIn(
                            f"{activity_id}-n{k}",
                            agreement_id,
                            activity_id,
                            t_terms.cost(u),
                            at(issued),
                            u,
                        ),
                    )
                )
                issued += interval + draw(st.integers(0, 5))
                k += 1
            final = usage(end + lag)
            if draw(st.booleans()):
                events.append(
                    Event(
                        end + lag + draw(TICK),
                        DebitNoteIn(
                            f"{activity_id}-final",
                            agreement_id,
                            activity_id,
                            t_terms.cost(final),
                            at(end + lag),
                            final,
                        ),
                    )
                )
            invoice_total += t_terms.cost(final)
        events.append(
            Event(
                end + lag + draw(TICK),
                InvoiceIn(f"inv-{agreement_id}", agreement_id, invoice_total, tuple(activity_ids)),
            )
        )
        total += invoice_total
    events.sort(key=lambda e: e.t)
    return HonestRun(agreements, activities, events, total)


def replay(run: HonestRun, budget: Decimal) -> tuple[PaymentLedger, list[PaymentDecision]]:
    books = PaymentLedger(budget)
    for agreement_id, (t_terms, approved, _end) in run.agreements.items():
        books.record_agreement(agreement_id, t_terms, at(approved))
    for activity_id, (agreement_id, asked) in sorted(run.activities.items(), key=lambda a: a[1][1]):
        books.record_activity(agreement_id, activity_id, at(asked))
    decisions = []
    for event in run.events:
        for agreement_id, (_terms, _approved, end) in run.agreements.items():
            if end <= event.t:
                books.record_termination(agreement_id, at(end))
        if isinstance(event.what, DebitNoteIn):
            decisions.append(apply_note(books, event.what, event.t))
        else:
            decisions.append(apply_invoice(books, event.what, event.t))
    return books, decisions


@settings(max_examples=300, deadline=None)
@given(honest_runs())
def test_honest_bills_are_never_refused(run: HonestRun) -> None:
    books, decisions = replay(run, budget=run.total)  # not a wei of slack
    refused = [d for d in decisions if d.refused]
    assert refused == []
    # Not accepted without a refusal: only a note that crossed its agreement's invoice.
    assert {d.code for d in decisions if not d.accept} <= {Code.AFTER_INVOICE}
    assert books.spent() == run.total
    assert books.outstanding() == ()


@st.composite
def chaos(draw: st.DrawFn) -> tuple[Decimal, list[tuple[int, DebitNoteIn | InvoiceIn]]]:
    """Any sequence of notes and invoices, honest or not, about known and unknown things."""
    budget = draw(st.decimals(min_value=0, max_value=1, places=3))
    amounts = st.one_of(
        st.decimals(min_value=0, max_value=D("0.3"), places=4),
        st.decimals(min_value=0, max_value=3, places=4),
    )
    agreement_ids = st.sampled_from(["ag", "ag", "ag2", "ghost"])
    activity_ids = st.sampled_from(["a1", "a2", "b1", "ghost"])
    steps: list[tuple[int, DebitNoteIn | InvoiceIn]] = []
    t = 0
    for i in range(draw(st.integers(1, 30))):
        t += draw(st.integers(0, 120))
        doc_id = draw(st.sampled_from([f"d{i}", "d0", "d1"]))  # some ids repeat
        if draw(st.integers(0, 5)):
            usage = draw(
                st.one_of(
                    st.none(),
                    st.tuples(st.integers(0, 3000).map(D), st.integers(0, 3000).map(D)),
                )
            )
            doc: DebitNoteIn | InvoiceIn = DebitNoteIn(
                doc_id, draw(agreement_ids), draw(activity_ids), draw(amounts), at(t), usage
            )
        else:
            doc = InvoiceIn(doc_id, draw(agreement_ids), draw(amounts))
        steps.append((t, doc))
    return budget, steps


def chaos_ledger(budget: Decimal) -> PaymentLedger:
    books = PaymentLedger(budget)
    books.record_agreement("ag", terms(debit_note_interval_s=10.0), T0)
    books.record_agreement("ag2", terms(cpu_threads=8, start_price=D(1)), at(5))
    books.record_activity("ag", "a1", T0)
    books.record_activity("ag", "a2", at(30))
    books.record_activity("ag2", "b1", at(10))
    return books


@settings(max_examples=200, deadline=None)
@given(chaos())
def test_budget_never_exceeded_and_no_invoice_twice(
    case: tuple[Decimal, list[tuple[int, DebitNoteIn | InvoiceIn]]],
) -> None:
    budget, steps = case
    books = chaos_ledger(budget)
    paid: dict[str, int] = {}
    increases = D(0)
    for t, doc in steps:
        if t > 600:
            books.record_termination("ag", at(600))
        before = books.totals()
        if isinstance(doc, DebitNoteIn):
            decision = books.decide_debit_note(doc, at(t))
            assert books.totals() == before  # deciding is pure
            apply_note(books, doc, t)
        else:
            decision = books.decide_invoice(doc, at(t))
            assert books.totals() == before
            apply_invoice(books, doc, t)
            if decision.accept:
                paid[doc.agreement_id] = paid.get(doc.agreement_id, 0) + 1
        if decision.accept:
            increases += decision.increase
        assert books.spent() <= budget
        assert books.spent() == increases
        assert books.remaining() >= 0
    assert all(count == 1 for count in paid.values())


@settings(max_examples=300, deadline=None)
@given(
    honest_runs(),
    st.data(),
    st.decimals(min_value=D("1e-18"), max_value=10, places=18),
)
def test_anything_above_the_price_bound_is_refused(
    run: HonestRun, data: st.DataObject, excess: Decimal
) -> None:
    cut = data.draw(st.integers(0, len(run.events)))
    books, _ = replay(
        HonestRun(run.agreements, run.activities, run.events[:cut], run.total), D(10**6)
    )
    t = (run.events[cut - 1].t if cut else 0) + data.draw(TICK)
    now = at(t)
    for agreement_id, (_terms, _approved, end) in run.agreements.items():
        if end <= t:
            books.record_termination(agreement_id, at(end))
        bound = books.max_invoice_amount(agreement_id, now)
        over = InvoiceIn(f"over-{agreement_id}", agreement_id, bound + excess)
        decision = books.decide_invoice(over, now)
        assert not decision.accept
        assert decision.code in {Code.OVERCHARGE, Code.SECOND_INVOICE}
    for activity_id, (agreement_id, _asked) in run.activities.items():
        bound = books.max_debit_note_amount(agreement_id, activity_id, now)
        over_note = DebitNoteIn("over", agreement_id, activity_id, bound + excess, now)
        decision = books.decide_debit_note(over_note, now)
        assert not decision.accept
        assert decision.code in {Code.OVERCHARGE, Code.AFTER_INVOICE}
        if decision.code is Code.OVERCHARGE:
            assert "overcharge by" in decision.reason
