"""The task book: exactly-once completion, retries elsewhere, speculation, bans, batch splitting."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golem_actors.policy.task_book import (
    Completion,
    FailureKind,
    SegmentState,
    TaskBook,
    TaskPolicy,
    split_segments,
)

NO_COPIES = TaskPolicy(speculate=False)


def test_tasks_are_handed_out_in_order_and_succeed_once() -> None:
    book = TaskBook(3, NO_COPIES)
    attempts = book.take("w1", "p1", 0.0, limit=2)
    assert [a.task for a in attempts] == [0, 1]
    done = book.succeed(attempts[0].attempt_id, 1.0)
    assert done == Completion(0, final=True, ok=True)
    assert book.succeed(attempts[0].attempt_id, 1.0).stale  # reported twice: stale
    assert book.pending == 1
    assert book.running == 1
    assert not book.finished


def test_a_failed_task_is_retried_on_another_provider_first() -> None:
    book = TaskBook(1, TaskPolicy(speculate=False, same_provider_after_s=30))
    (a,) = book.take("w1", "p1", 0.0)
    assert book.fail(a.attempt_id, FailureKind.TASK, 1.0).retry
    assert book.take("w1", "p1", 2.0) == []  # not back to the provider it failed on
    (b,) = book.take("w2", "p2", 3.0)
    assert b.task == 0
    assert b.provider == "p2"


def test_a_retry_falls_back_to_the_same_provider_after_waiting() -> None:
    book = TaskBook(1, TaskPolicy(speculate=False, same_provider_after_s=10))
    (a,) = book.take("w1", "p1", 0.0)
    book.fail(a.attempt_id, FailureKind.TASK, 1.0)
    assert book.take("w1", "p1", 5.0) == []
    assert [x.task for x in book.take("w1", "p1", 11.0)] == [0]


def test_max_retries_then_the_task_fails_for_good() -> None:
    book = TaskBook(1, TaskPolicy(max_retries=2, speculate=False))
    for i in range(3):
        (a,) = book.take(f"w{i}", f"p{i}", float(i))
        completion = book.fail(a.attempt_id, FailureKind.TASK, float(i))
    assert completion == Completion(0, final=True, ok=False)
    assert book.finished
    assert book.failed == 1
    assert book.failures(0) == 3


def test_requeued_attempts_do_not_count() -> None:
    book = TaskBook(2, NO_COPIES)
    _, b = book.take("w1", "p1", 0.0, limit=2)
    book.requeue(b.attempt_id)
    assert book.failures(1) == 0
    assert [x.task for x in book.take("w1", "p1", 1.0)] == [1]


def test_a_straggler_gets_a_copy_and_the_first_result_wins() -> None:
    book = TaskBook(2, TaskPolicy(speculate_after_s=5, speculate_factor=0))
    a, b = book.take("w1", "p1", 0.0, limit=2)
    book.succeed(a.attempt_id, 1.0)
    assert book.take("w2", "p2", 3.0) == []  # not a straggler yet
    (copy,) = book.take("w2", "p2", 6.0)
    assert copy.task == b.task
    assert copy.speculative
    assert book.take("w3", "p1", 6.0) == []  # never a copy on the provider running it
    won = book.succeed(copy.attempt_id, 7.0)
    assert won.final
    assert won.ok
    assert [x.attempt_id for x in won.cancel] == [b.attempt_id]
    assert book.succeed(b.attempt_id, 8.0).stale  # the loser's late result is dropped
    assert book.finished


def test_the_straggler_threshold_follows_the_median_task_time() -> None:
    book = TaskBook(3, TaskPolicy(speculate_after_s=1, speculate_factor=2))
    a, b, c = book.take("w1", "p1", 0.0, limit=3)
    book.succeed(a.attempt_id, 10.0)
    book.succeed(b.attempt_id, 10.0)
    assert book.speculation_threshold() == 20.0
    assert book.take("w2", "p2", 15.0) == []
    assert [x.task for x in book.take("w2", "p2", 21.0)] == [c.task]


def test_a_failing_copy_leaves_the_original_to_decide() -> None:
    book = TaskBook(1, TaskPolicy(max_retries=0, speculate_after_s=0, speculate_factor=0))
    (a,) = book.take("w1", "p1", 0.0)
    (copy,) = book.take("w2", "p2", 1.0)
    assert book.fail(copy.attempt_id, FailureKind.PROVIDER, 2.0) == Completion(0)
    assert not book.finished
    assert book.succeed(a.attempt_id, 3.0).ok


def test_provider_faults_ban_a_provider() -> None:
    book = TaskBook(5, TaskPolicy(blacklist_after=2))
    assert not book.provider_fault("p1")
    assert book.provider_fault("p1")
    assert book.take("w1", "p1", 0.0) == []
    book.ban("p2")
    assert book.take("w2", "p2", 0.0) == []


def test_abandon_fails_every_open_task_once() -> None:
    book = TaskBook(3, NO_COPIES)
    (a,) = book.take("w1", "p1", 0.0)
    book.succeed(a.attempt_id, 1.0)
    book.take("w1", "p1", 1.0)
    ended = book.abandon()
    assert sorted(c.task for c in ended) == [1, 2]
    assert all(c.final and not c.ok for c in ended)
    assert book.abandon() == []
    assert book.finished


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        TaskPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="speculate_after_s"):
        TaskPolicy(speculate_after_s=float("nan"))
    with pytest.raises(ValueError, match="count"):
        TaskBook(-1)


# -- exactly once, whatever happens ----------------------------------------------------------

ops = st.lists(
    st.tuples(
        st.sampled_from(["take", "ok", "task", "provider", "timeout", "requeue", "fault"]),
        st.integers(0, 3),  # worker / provider
        st.integers(0, 50),  # which running attempt
        st.integers(1, 3),  # limit
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(count=st.integers(0, 8), script=ops, retries=st.integers(0, 3))
def test_every_task_is_final_exactly_once(  # noqa: C901 - one interpreter of the op script
    count: int, script: list[tuple[str, int, int, int]], retries: int
) -> None:
    policy = TaskPolicy(max_retries=retries, speculate_after_s=1, speculate_factor=0,
                        same_provider_after_s=5, blacklist_after=100)  # fmt: skip
    book = TaskBook(count, policy)
    finals: list[int] = []
    live: list[int] = []
    now = 0.0

    def record(completion: Completion) -> None:
        if completion.final:
            finals.append(completion.task)
        for loser in completion.cancel:
            live.remove(loser.attempt_id)

    for op, who, pick, limit in script:
        now += 1.0
        if op == "take":
            for attempt in book.take(f"w{who}", f"p{who}", now, limit):
                assert not book.is_final(attempt.task)
                live.append(attempt.attempt_id)
        elif op == "fault":
            book.provider_fault(f"p{who}")
        elif live:
            attempt_id = live.pop(pick % len(live))
            if op == "ok":
                record(book.succeed(attempt_id, now))
            elif op == "requeue":
                record(book.requeue(attempt_id))
            else:
                record(book.fail(attempt_id, FailureKind(op), now))
        assert book.succeeded + book.failed == len(finals)
        assert len(set(finals)) == len(finals)  # never final twice
        assert book.pending + book.running + len(finals) >= count
    # Drain: healthy workers on fresh providers finish whatever is left.
    for step in range(10 * (count + 1)):
        now += 10.0
        live.extend(a.attempt_id for a in book.take(f"drain{step}", f"fresh{step}", now, 3))
        while live:
            record(book.succeed(live.pop(), now))
    assert book.finished
    assert sorted(finals) == list(range(count))


# -- splitting a packed batch --------------------------------------------------------------------


def test_split_a_finished_batch() -> None:
    ok = SegmentState.OK
    assert split_segments([1, 2, 1], [True, True, True, True], finished=True) == [ok, ok, ok]


def test_a_failing_command_fails_its_task_and_the_rest_never_ran() -> None:
    states = split_segments([1, 2, 1], [True, True, False], finished=True)
    assert states == [SegmentState.OK, SegmentState.FAILED, SegmentState.NOT_RUN]


def test_a_timeout_marks_the_running_task_stuck() -> None:
    states = split_segments([2, 2, 1], [True, True, True], finished=False)
    assert states == [SegmentState.OK, SegmentState.STUCK, SegmentState.NOT_RUN]
    assert split_segments([1, 1], [], finished=False) == [
        SegmentState.STUCK,
        SegmentState.NOT_RUN,
    ]


@given(
    lengths=st.lists(st.integers(1, 4), min_size=1, max_size=8),
    data=st.data(),
    finished=st.booleans(),
)
def test_split_segments_is_consistent(
    lengths: list[int], data: st.DataObject, finished: bool
) -> None:
    total = sum(lengths)
    n = data.draw(st.integers(0, total))
    reported = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    states = split_segments(lengths, reported, finished=finished)
    assert len(states) == len(lengths)
    # Once a task is not OK, every later task never ran.
    first_bad = next((i for i, s in enumerate(states) if s is not SegmentState.OK), len(states))
    assert all(s is SegmentState.NOT_RUN for s in states[first_bad + 1 :])
    assert sum(lengths[:first_bad]) <= len(reported)


def test_split_segments_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="at least one command"):
        split_segments([0], [], finished=True)
    with pytest.raises(ValueError, match="results"):
        split_segments([1], [True, True], finished=True)
