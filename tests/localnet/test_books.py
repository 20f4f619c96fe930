"""A provider's books for one agreement, driven by a fake clock (plain floats, in seconds).

The schedule rule, read from ``AgreementBook.debit_notes_due``: an activity's first debit note is
due ``interval`` after it started; a tick at or past the due time sends one note (never several to
catch up) and schedules the next ``interval`` after *that tick*. So consecutive notes are at least
an interval apart, an activity living ``L`` seconds gets at most ``floor(L / interval)`` notes, and
exactly that many when a tick falls on every due time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from golem_actors.localnet.offer import amount_due
from golem_actors.localnet.provider.books import AgreementBook, DebitNoteDue

COEFFS = [0.5, 2.0, 1.0]  # per duration second, per cpu second, start


def book(
    interval: float = 10.0, accept_timeout: float = 30.0, overcharge: float = 1.0
) -> AgreementBook:
    return AgreementBook(
        "agreement-1",
        list(COEFFS),
        debit_note_interval=interval,
        accept_timeout=accept_timeout,
        overcharge=overcharge,
    )


def ids(notes: list[DebitNoteDue]) -> list[str]:
    return [note.activity_id for note in notes]


# --- debit notes ----------------------------------------------------------------------------------


def test_debit_notes_come_every_interval_with_cumulative_amounts():
    b = book(interval=10.0)
    b.start_activity("a1", 100.0)
    assert b.debit_notes_due(100.0) == []
    assert b.debit_notes_due(109.999) == []
    first = b.debit_notes_due(110.0)
    assert ids(first) == ["a1"]
    assert first[0].usage == [10.0, 0.0]
    assert first[0].amount == Decimal(6)  # 0.5 * 10 + 1
    assert b.debit_notes_due(110.0) == []  # not twice for the same due time
    assert b.debit_notes_due(119.5) == []
    b.activities["a1"].cpu_seconds = 3.0
    second = b.debit_notes_due(120.0)
    assert ids(second) == ["a1"]
    assert second[0].usage == [20.0, 3.0]
    assert second[0].amount == Decimal(17)  # 0.5 * 20 + 2 * 3 + 1: the total so far
    assert second[0].amount >= first[0].amount


def test_a_late_tick_sends_one_note_and_reschedules_from_it():
    b = book(interval=10.0)
    b.start_activity("a1", 0.0)
    late = b.debit_notes_due(35.0)  # three intervals passed: still one (cumulative) note
    assert ids(late) == ["a1"]
    assert late[0].usage == [35.0, 0.0]
    assert b.debit_notes_due(44.9) == []
    assert ids(b.debit_notes_due(45.0)) == ["a1"]


def test_each_activity_has_its_own_schedule():
    b = book(interval=10.0)
    b.start_activity("a1", 0.0)
    b.start_activity("a2", 4.0)
    assert ids(b.debit_notes_due(10.0)) == ["a1"]
    assert ids(b.debit_notes_due(14.0)) == ["a2"]
    assert sorted(ids(b.debit_notes_due(24.0))) == ["a1", "a2"]


def test_starting_an_activity_again_changes_neither_its_meter_nor_its_schedule():
    b = book(interval=10.0)
    meter = b.start_activity("a1", 0.0)
    assert b.start_activity("a1", 7.0) is meter
    assert meter.started == 0.0
    assert ids(b.debit_notes_due(10.0)) == ["a1"]


def test_no_debit_notes_after_the_activity_ended():
    b = book(interval=10.0)
    b.start_activity("a1", 0.0)
    b.start_activity("a2", 0.0)
    assert sorted(ids(b.debit_notes_due(10.0))) == ["a1", "a2"]
    b.end_activity("a1", 15.0)
    assert ids(b.debit_notes_due(20.0)) == ["a2"]
    b.end_all(25.0)
    assert b.debit_notes_due(30.0) == []
    assert b.debit_notes_due(1000.0) == []
    assert b.live_activities() == []
    assert b.activities["a1"].ended == 15.0
    assert b.activities["a2"].ended == 25.0


def test_ending_before_the_first_interval_means_no_debit_note():
    b = book(interval=10.0)
    b.start_activity("a1", 0.0)
    b.end_activity("a1", 9.0)
    assert b.debit_notes_due(10.0) == []
    assert b.debit_notes_due(100.0) == []


def test_an_activity_never_started_gets_no_debit_notes():
    b = book(interval=10.0)
    b.end_activity("ghost", 5.0)  # harmless
    assert b.activities == {}
    assert b.debit_notes_due(1000.0) == []
    assert b.invoice_amount(1000.0) == 0


def test_ending_twice_keeps_the_first_end_time():
    b = book()
    b.start_activity("a1", 0.0)
    b.end_activity("a1", 10.0)
    b.end_activity("a1", 50.0)
    assert b.activities["a1"].ended == 10.0
    assert b.activities["a1"].usage(100.0) == [10.0, 0.0]


def test_live_activities():
    b = book()
    b.start_activity("a1", 0.0)
    b.start_activity("a2", 1.0)
    b.end_activity("a1", 2.0)
    assert [m.activity_id for m in b.live_activities()] == ["a2"]


# --- accepting debit notes ------------------------------------------------------------------------


def test_debit_note_is_overdue_after_the_accept_timeout_and_not_before():
    b = book(accept_timeout=30.0)
    b.debit_note_sent("dn-1", 100.0)
    assert b.overdue(100.0) is None
    assert b.overdue(129.999) is None
    assert b.overdue(130.0) is None  # the deadline itself is still in time
    assert b.overdue(130.001) == "dn-1"


def test_accepting_clears_a_debit_note():
    b = book(accept_timeout=30.0)
    b.debit_note_sent("dn-1", 100.0)
    b.debit_note_sent("dn-2", 110.0)
    assert b.debit_note_accepted("dn-1") is True
    assert b.debit_note_accepted("dn-1") is False  # already accepted
    assert b.debit_note_accepted("dn-unknown") is False
    assert b.overdue(135.0) is None  # dn-1 would be overdue, but was accepted
    assert b.overdue(140.5) == "dn-2"
    assert b.debit_note_accepted("dn-2") is True
    assert b.overdue(10_000.0) is None
    assert b.unaccepted == {}


def test_overdue_names_the_oldest_unaccepted_note():
    b = book(accept_timeout=30.0)
    b.debit_note_sent("dn-1", 100.0)
    b.debit_note_sent("dn-2", 110.0)
    assert b.overdue(200.0) == "dn-1"


# --- invoice and overcharge -----------------------------------------------------------------------


def test_invoice_is_the_sum_of_the_activities_amounts_at_their_end_times():
    b = book()
    b.start_activity("a1", 0.0)
    b.activities["a1"].cpu_seconds = 10.0
    b.start_activity("a2", 50.0)
    b.end_activity("a2", 80.0)
    b.end_activity("a1", 100.0)
    expected = amount_due(COEFFS, [100.0, 10.0]) + amount_due(COEFFS, [30.0, 0.0])
    assert expected == Decimal(87)  # (50 + 20 + 1) + (15 + 0 + 1)
    assert b.invoice_amount(100.0) == expected
    assert b.invoice_amount(10_000.0) == expected  # ended activities stop accruing


def test_invoice_counts_a_live_activity_up_to_now():
    b = book()
    b.start_activity("a1", 0.0)
    b.end_activity("a1", 10.0)
    b.start_activity("a2", 20.0)
    assert b.invoice_amount(30.0) == Decimal(6) + Decimal(6)


def test_invoice_of_an_agreement_without_activities_is_zero():
    assert book().invoice_amount(100.0) == Decimal(0)


def test_overcharge_multiplies_debit_notes_and_invoice():
    honest, greedy = book(), book(overcharge=2.5)
    for b in (honest, greedy):
        b.start_activity("a1", 0.0)
        b.activities["a1"].cpu_seconds = 1.5
    (fair,) = honest.debit_notes_due(10.0)
    (inflated,) = greedy.debit_notes_due(10.0)
    assert fair.amount == Decimal(9)  # 5 + 3 + 1
    assert inflated.amount == Decimal("22.5")
    assert inflated.usage == fair.usage  # the usage is reported honestly, only the amount lies
    for b in (honest, greedy):
        b.end_activity("a1", 20.0)
    assert honest.invoice_amount(20.0) == Decimal(14)
    assert greedy.invoice_amount(20.0) == Decimal(35)


def test_overcharge_keeps_18_decimals():
    b = book(overcharge=1.1)
    b.start_activity("a1", 0.0)
    (note,) = b.debit_notes_due(10.0)
    assert note.amount == Decimal("6.6")


# --- the schedule, property-based -----------------------------------------------------------------


@dataclass(frozen=True)
class Life:
    start: int
    length: int | None  # None: still running at the end of the run


HORIZON = 150
lives = st.builds(
    Life,
    start=st.integers(min_value=0, max_value=60),
    length=st.one_of(st.none(), st.integers(min_value=0, max_value=80)),
)


def _end(life: Life) -> int | None:
    return None if life.length is None else life.start + life.length


def _run(
    interval: int, schedule: list[Life], ticks: list[int]
) -> tuple[dict[str, list[tuple[int, DebitNoteDue]]], AgreementBook]:
    """Starts, then ticks, then ends at the same instant; notes per activity with their times."""
    events: list[tuple[int, int, str]] = []
    for n, life in enumerate(schedule):
        events.append((life.start, 0, f"a{n}"))
        end = _end(life)
        if end is not None:
            events.append((end, 2, f"a{n}"))
    events += [(t, 1, "") for t in ticks]
    b = book(interval=float(interval))
    notes: dict[str, list[tuple[int, DebitNoteDue]]] = defaultdict(list)
    for time, kind, activity_id in sorted(events):
        if kind == 0:
            b.start_activity(activity_id, float(time))
        elif kind == 2:
            b.end_activity(activity_id, float(time))
        else:
            due = b.debit_notes_due(float(time))
            assert len(ids(due)) == len(set(ids(due))), "two notes for one activity in one tick"
            for note in due:
                notes[note.activity_id].append((time, note))
    b.end_activity("never-started", float(HORIZON))
    return notes, b


def _expected_count(life: Life, interval: int, ticks: list[int]) -> int:
    """The rule above, as a model: first note due at start + interval, then tick + interval."""
    end = _end(life)
    due, count = life.start + interval, 0
    for t in sorted(ticks):
        if t >= due and (end is None or t <= end):
            count, due = count + 1, t + interval
    return count


@given(
    interval=st.integers(min_value=1, max_value=12),
    schedule=st.lists(lives, min_size=1, max_size=4),
    ticks=st.one_of(
        st.none(),  # a tick every second, like the provider's ticker
        st.lists(st.integers(min_value=0, max_value=HORIZON), unique=True, max_size=60),
    ),
)
def test_debit_note_schedule_over_random_lives_and_ticks(
    interval: int, schedule: list[Life], ticks: list[int] | None
):
    dense = ticks is None
    tick_times = list(range(HORIZON + 1)) if ticks is None else ticks
    notes, b = _run(interval, schedule, tick_times)
    assert set(notes) <= {f"a{n}" for n in range(len(schedule))}  # never "never-started"
    for n, life in enumerate(schedule):
        mine = notes.get(f"a{n}", [])
        end = _end(life)
        lifetime = (HORIZON if end is None else end) - life.start
        assert len(mine) == _expected_count(life, interval, tick_times)
        assert len(mine) <= lifetime // interval
        if dense:
            assert len(mine) == lifetime // interval
        previous_time, previous_amount = life.start, Decimal(0)
        for time, note in mine:
            assert time - previous_time >= interval
            assert end is None or time <= end
            assert note.usage == [float(time - life.start), 0.0]
            assert note.amount == amount_due(COEFFS, note.usage)
            assert note.amount >= previous_amount
            previous_time, previous_amount = time, note.amount
    # The invoice: every activity's amount at its end (or now, while it runs).
    ends = [HORIZON if life.length is None else life.start + life.length for life in schedule]
    expected = sum(
        (
            amount_due(COEFFS, [float(end - life.start), 0.0])
            for life, end in zip(schedule, ends, strict=True)
        ),
        Decimal(0),
    )
    assert b.invoice_amount(float(HORIZON)) == expected
