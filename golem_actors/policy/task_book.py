"""The task book: which task runs where, what happens when an attempt ends, and when a run is done.

Pure policy: no threads, no clock reads. The dispatcher actor passes ``now`` (monotonic seconds)
and applies what each call returns, so every rule is tested exhaustively and fast:

- **exactly once**: a task is *final* once — its first successful attempt, or its last failure
  after ``max_retries`` retries — and every later report about it is stale;
- **a retry goes elsewhere**: a failed task is not handed back to a provider it failed on (unless
  no other provider has taken it for ``same_provider_after_s``, so a one-provider run still ends);
- **stragglers are duplicated**: when nothing is pending and a worker is idle, the longest-running
  task gets a second attempt on another provider; the first result wins, the loser is cancelled;
- **failing providers are banned**: ``blacklist_after`` provider faults (the activity gone, a hang,
  a task timeout) blacklist a provider for the rest of the run.

Tasks are numbered ``0 .. count-1``; the book never sees their data.
"""

from __future__ import annotations

import enum
import statistics
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from golem_actors import arguments

__all__ = [
    "Attempt",
    "Completion",
    "FailureKind",
    "SegmentState",
    "TaskBook",
    "TaskPolicy",
    "split_segments",
]


class FailureKind(enum.Enum):
    TASK = "task"  # the task's own error: a command failed, the worker function raised
    PROVIDER = "provider"  # the provider or its activity failed under the task
    TIMEOUT = "timeout"  # the attempt exceeded the task timeout
    CANCELLED = "cancelled"  # the run stopped (timeout of the run, Ctrl-C)

    @property
    def provider_fault(self) -> bool:
        return self in (FailureKind.PROVIDER, FailureKind.TIMEOUT)


@dataclass(frozen=True)
class TaskPolicy:
    """How hard a run tries; every field is checked on construction."""

    max_retries: int = 3
    blacklist_after: int = 2  # provider faults before a provider is banned for the run
    speculate: bool = True
    speculate_after_s: float = 5.0  # a straggler runs at least this long before it is duplicated
    speculate_factor: float = 2.0  # ... and at least this many times the median task time
    max_parallel_attempts: int = 2  # of one task (1 + speculative copies)
    same_provider_after_s: float = 30.0  # a retry waits this long for a different provider

    def __post_init__(self) -> None:
        arguments.whole("max_retries", self.max_retries, ge=0)
        arguments.whole("blacklist_after", self.blacklist_after, ge=1)
        arguments.whole("max_parallel_attempts", self.max_parallel_attempts, ge=1)
        arguments.number("speculate_after_s", self.speculate_after_s, ge=0)
        arguments.number("speculate_factor", self.speculate_factor, ge=0)
        arguments.number("same_provider_after_s", self.same_provider_after_s, ge=0)


@dataclass(frozen=True)
class Attempt:
    """One try of one task by one worker."""

    attempt_id: int
    task: int
    worker: str
    provider: str
    started: float
    speculative: bool = False


@dataclass(frozen=True)
class Completion:
    """What an attempt's end means for its task.

    ``final`` is True exactly once per task: report it then (``ok`` says how it ended). ``cancel``
    lists the task's other attempts, now useless (the speculative losers). ``stale`` marks a report
    about a task already final or an attempt the book no longer knows.
    """

    task: int
    final: bool = False
    ok: bool = False
    retry: bool = False
    stale: bool = False
    cancel: tuple[Attempt, ...] = ()


@dataclass
class _Task:
    failures: int = 0
    tried: set[str] = field(default_factory=set)  # providers it failed on
    waiting_since: float = 0.0
    attempts: set[int] = field(default_factory=set)
    final: bool | None = None  # None while not final; then whether it succeeded


class TaskBook:
    """Pending, running and finished tasks of one run."""

    def __init__(self, count: int, policy: TaskPolicy | None = None) -> None:
        arguments.whole("count", count, ge=0)
        self.policy = policy or TaskPolicy()
        self._tasks = [_Task() for _ in range(count)]
        self._pending: deque[int] = deque(range(count))
        self._running: dict[int, Attempt] = {}
        self._next_id = 0
        self._durations: list[float] = []
        self._median: float | None = None
        self.faults: Counter[str] = Counter()
        self.blacklist: set[str] = set()
        self.succeeded = 0
        self.failed = 0

    # -- views ----------------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return len(self._tasks)

    @property
    def finished(self) -> bool:
        return self.succeeded + self.failed == len(self._tasks)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def running(self) -> int:
        """Tasks with at least one attempt running."""
        return len({a.task for a in self._running.values()})

    def attempt(self, attempt_id: int) -> Attempt | None:
        return self._running.get(attempt_id)

    def attempts_of(self, task: int) -> tuple[Attempt, ...]:
        return tuple(self._running[a] for a in sorted(self._tasks[task].attempts))

    def failures(self, task: int) -> int:
        return self._tasks[task].failures

    def is_final(self, task: int) -> bool:
        return self._tasks[task].final is not None

    # -- handing out work --------------------------------------------------------------------

    def take(self, worker: str, provider: str, now: float, limit: int = 1) -> list[Attempt]:
        """Up to ``limit`` tasks for ``worker`` on ``provider``: pending ones first (retries
        before fresh ones), else one speculative copy of a straggler; none for a banned one."""
        if limit < 1 or provider in self.blacklist:
            return []
        picked: list[int] = []
        skipped: list[int] = []
        wait = self.policy.same_provider_after_s
        while self._pending and len(picked) < limit:
            task = self._pending.popleft()
            record = self._tasks[task]
            if provider in record.tried and now - record.waiting_since < wait:
                skipped.append(task)
            else:
                picked.append(task)
        self._pending.extendleft(reversed(skipped))
        if not picked and not self._pending:
            straggler = self._straggler(provider, now)
            if straggler is not None:
                return [self._start(straggler, worker, provider, now, speculative=True)]
        return [self._start(t, worker, provider, now) for t in picked]

    def _start(
        self, task: int, worker: str, provider: str, now: float, *, speculative: bool = False
    ) -> Attempt:
        attempt = Attempt(self._next_id, task, worker, provider, now, speculative)
        self._next_id += 1
        self._running[attempt.attempt_id] = attempt
        self._tasks[task].attempts.add(attempt.attempt_id)
        return attempt

    def speculation_threshold(self) -> float:
        """How long a task must have run before it counts as a straggler."""
        base = self.policy.speculate_after_s
        if self._median is None and self._durations:
            self._median = statistics.median(self._durations)
        return max(base, self.policy.speculate_factor * (self._median or 0.0))

    def _straggler(self, provider: str, now: float) -> int | None:
        if not self.policy.speculate:
            return None
        threshold = self.speculation_threshold()
        best: tuple[float, int] | None = None
        for task, record in self._by_running_task().items():
            attempts = [self._running[a] for a in record]
            if len(attempts) >= self.policy.max_parallel_attempts:
                continue
            if provider in self._tasks[task].tried or any(a.provider == provider for a in attempts):
                continue
            oldest = min(a.started for a in attempts)
            if now - oldest >= threshold and (best is None or oldest < best[0]):
                best = (oldest, task)
        return None if best is None else best[1]

    def _by_running_task(self) -> dict[int, set[int]]:
        out: dict[int, set[int]] = {}
        for attempt in self._running.values():
            out.setdefault(attempt.task, set()).add(attempt.attempt_id)
        return out

    # -- attempts ending -------------------------------------------------------------------------

    def _close(self, attempt_id: int) -> tuple[Attempt, _Task] | Completion:
        """Take an attempt out of the running set; a stale Completion if it no longer counts."""
        attempt = self._running.pop(attempt_id, None)
        if attempt is None:
            return Completion(-1, stale=True)
        record = self._tasks[attempt.task]
        record.attempts.discard(attempt_id)
        if record.final is not None:
            return Completion(attempt.task, stale=True)
        return attempt, record

    def succeed(self, attempt_id: int, now: float) -> Completion:
        closed = self._close(attempt_id)
        if isinstance(closed, Completion):
            return closed
        attempt, record = closed
        record.final = True
        self.succeeded += 1
        self._durations.append(max(0.0, now - attempt.started))
        self._median = None
        losers = tuple(self._running.pop(a) for a in sorted(record.attempts))
        record.attempts.clear()
        return Completion(attempt.task, final=True, ok=True, cancel=losers)

    def fail(self, attempt_id: int, kind: FailureKind, now: float) -> Completion:
        """An attempt failed. The task is retried (elsewhere) until ``max_retries`` failures
        beyond the first; while another attempt of it still runs, that one decides."""
        closed = self._close(attempt_id)
        if isinstance(closed, Completion):
            return closed
        attempt, record = closed
        if kind is FailureKind.CANCELLED:
            return self._finalize_failed(attempt.task)
        record.failures += 1
        record.tried.add(attempt.provider)
        if record.attempts:
            return Completion(attempt.task)  # a speculative copy is still running
        if record.failures > self.policy.max_retries:
            return self._finalize_failed(attempt.task)
        record.waiting_since = now
        self._pending.appendleft(attempt.task)
        return Completion(attempt.task, retry=True)

    def requeue(self, attempt_id: int) -> Completion:
        """An attempt that never ran (its batch stopped before it): back to the front, uncounted."""
        closed = self._close(attempt_id)
        if isinstance(closed, Completion):
            return closed
        attempt, record = closed
        if not record.attempts:
            self._pending.appendleft(attempt.task)
        return Completion(attempt.task, retry=True)

    def _finalize_failed(self, task: int) -> Completion:
        record = self._tasks[task]
        record.final = False
        self.failed += 1
        losers = tuple(self._running.pop(a) for a in sorted(record.attempts))
        record.attempts.clear()
        return Completion(task, final=True, ok=False, cancel=losers)

    def abandon(self) -> list[Completion]:
        """End the run now: every task not yet final fails (``CANCELLED``), exactly once."""
        out: list[Completion] = []
        self._pending.clear()
        for task, record in enumerate(self._tasks):
            if record.final is None:
                out.append(self._finalize_failed(task))
        return out

    # -- providers -------------------------------------------------------------------------------

    def provider_fault(self, provider: str) -> bool:
        """Count a fault; True when this one banned the provider."""
        self.faults[provider] += 1
        if provider not in self.blacklist and self.faults[provider] >= self.policy.blacklist_after:
            self.blacklist.add(provider)
            return True
        return False

    def ban(self, provider: str) -> None:
        """Ban at once (e.g. it overcharged): it gets no more work in this run."""
        self.blacklist.add(provider)


class SegmentState(enum.Enum):
    OK = "ok"
    FAILED = "failed"  # one of its commands failed
    STUCK = "stuck"  # a command of it was running when the batch timed out
    NOT_RUN = "not_run"  # the batch stopped before it


def split_segments(
    lengths: Sequence[int], reported: Sequence[bool], *, finished: bool
) -> list[SegmentState]:
    """Per task of a packed batch, how it went.

    ``lengths`` are the command counts of the tasks, in batch order; ``reported`` the ok flag of
    each command that has a result (a prefix of the batch: the exe-unit reports in order and stops
    at the first error). Unfinished (a timeout), the task holding the first command without a
    result was stuck; tasks after a failed or stuck one never ran and owe nothing.
    """
    if any(n < 1 for n in lengths):
        raise ValueError(f"every task needs at least one command, got lengths {list(lengths)}")
    total = sum(lengths)
    if len(reported) > total:
        raise ValueError(f"{len(reported)} results for a batch of {total} commands")
    states: list[SegmentState] = []
    start = 0
    blocked = False
    for n in lengths:
        if blocked:
            states.append(SegmentState.NOT_RUN)
        else:
            mine = reported[start : start + n]
            if not all(mine):
                states.append(SegmentState.FAILED)
                blocked = True
            elif len(mine) == n:
                states.append(SegmentState.OK)
            elif finished:
                # Finished with this task incomplete and no failure: the batch ended early.
                states.append(SegmentState.NOT_RUN)
                blocked = True
            else:
                states.append(SegmentState.STUCK)  # its next command was running
                blocked = True
        start += n
    return states
