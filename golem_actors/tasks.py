"""The task model's API: batch jobs spread over providers, files in and out, each ending once.

Two ways to say what a task does:

- **a worker function** ``worker(ctx, task) -> result``, run in its own thread with the same work
  context as services (``ctx.run``, ``ctx.execute``, ``ctx.send_*``, ``ctx.download_*``);
- **declaratively**: ``Task(commands=[[argv...], ...], inputs=..., outputs=..., parse=...)``. The
  runtime then packs several tasks into one ExeScript batch (transfers in, commands, transfers
  out), which is what makes thousands of tiny tasks fast (yagna's cost is per batch); a failing
  command fails only its own task.

    from golem_actors import Task, execute_tasks

    tasks = [Task(data=n, commands=[["/bin/sh", "-c", f"echo $(({n} * {n}))"]]) for n in range(100)]
    with execute_tasks(tasks, max_workers=4, budget="1") as run:
        for done in run:  # in completion order, each task exactly once
            print(done.task.data, done.result if done.ok else done.error)
    print(run.summary.format())
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from golem_actors.errors import GolemActorsError
from golem_actors.events import (
    AgreementApproved,
    DebitNoteAccepted,
    Event,
    InvoiceAccepted,
    TaskAttemptFailed,
    TaskFinished,
    TaskStarted,
)

if TYPE_CHECKING:
    from golem_actors.actors.context import WorkContext

__all__ = [
    "ProviderSummary",
    "Summary",
    "Task",
    "TaskDefinitionError",
    "TaskOutput",
    "TaskResult",
    "TaskRun",
    "Worker",
    "execute_tasks",
]

#: ``worker(ctx, task)``: runs one task on a provider; its return value is the task's result.
Worker = Callable[["WorkContext", "Task"], Any]
Input = bytes | os.PathLike[str]


class TaskDefinitionError(GolemActorsError, ValueError):
    """A task (or the run's options) cannot be run as given; the message names the problem."""


def _remote(where: str, path: object) -> str:
    if not isinstance(path, str) or not path.startswith("/golem/") or ".." in path.split("/"):
        raise TaskDefinitionError(
            f"{where}: {path!r} must be an absolute path under /golem/ (e.g. /golem/input/x)"
        )
    return path


@dataclass(frozen=True)
class TaskOutput:
    """What a declarative task produced: per command its stdout/stderr, and the output files."""

    stdout: tuple[str | bytes | None, ...]
    stderr: tuple[str | bytes | None, ...]
    files: Mapping[str, bytes]


@dataclass(frozen=True)
class Task:
    """One job. ``data`` is yours; ``inputs`` map remote paths to bytes or local files, sent
    before the task runs; ``outputs`` are remote paths fetched after it succeeds.

    Declarative tasks give ``commands`` (argv lists run in order, no shell) and optionally
    ``parse(TaskOutput) -> result``; without ``parse`` the result is the last command's stdout.
    """

    data: Any = None
    id: str = ""
    inputs: Mapping[str, Input] = field(default_factory=dict)
    outputs: Sequence[str] = ()
    commands: Sequence[Sequence[str]] = ()
    parse: Callable[[TaskOutput], Any] | None = None

    @property
    def declarative(self) -> bool:
        return bool(self.commands)

    def validate(self, where: str) -> Task:  # noqa: C901 - one check per field
        """This task checked (and given ``where`` as its id if it has none)."""
        for remote, source in self.inputs.items():
            _remote(f"{where} input", remote)
            if isinstance(source, str):
                raise TaskDefinitionError(
                    f"{where} input {remote}: give bytes, or a pathlib.Path for a local file "
                    f"(a str is ambiguous), got {source[:40]!r}"
                )
            if not isinstance(source, bytes | bytearray) and not Path(source).is_file():
                raise TaskDefinitionError(f"{where} input {remote}: {source} is not a file")
        if isinstance(self.outputs, str):
            raise TaskDefinitionError(f"{where} outputs must be a list of paths, not a string")
        for remote in self.outputs:
            _remote(f"{where} output", remote)
        if isinstance(self.commands, str):
            raise TaskDefinitionError(f"{where} commands must be a list of argv lists")
        for i, argv in enumerate(self.commands):
            if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
                raise TaskDefinitionError(
                    f"{where} command {i} must be a non-empty list of strings, got {argv!r}"
                )
            if not argv[0].startswith("/"):
                raise TaskDefinitionError(
                    f"{where} command {i}: the program must be an absolute path, got {argv[0]!r}"
                )
        if self.parse is not None and not callable(self.parse):
            raise TaskDefinitionError(f"{where} parse must be callable, got {self.parse!r}")
        return self if self.id else replace(self, id=where)


@dataclass(frozen=True)
class TaskResult:
    """A task's one and only report: its result, or the error of its last attempt."""

    task: Task
    ok: bool
    result: Any = None
    error: BaseException | None = None
    attempts: int = 0
    provider_id: str | None = None
    provider_name: str | None = None
    files: Mapping[str, bytes] = field(default_factory=dict)
    seconds: float = 0.0  # of the attempt that decided it


@dataclass
class ProviderSummary:
    name: str
    tasks_done: int = 0
    failures: int = 0
    busy_seconds: float = 0.0
    cost: Decimal = Decimal(0)


@dataclass
class Summary:
    """What a run did, per provider and in total; final once the session has settled."""

    tasks: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0  # the run stopped before they ran (Ctrl-C, the run's timeout)
    running: int = 0
    attempts: int = 0
    retries: int = 0
    timeouts: int = 0
    speculative: int = 0
    started_at: float = field(default_factory=time.monotonic)
    first_task_s: float | None = None  # startup: until the first task started
    wall_s: float = 0.0
    cost: Decimal = Decimal(0)
    providers: dict[str, ProviderSummary] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.cancelled

    def format(self) -> str:
        cancelled = f"{self.cancelled} cancelled, " if self.cancelled else ""
        head = (
            f"{self.succeeded}/{self.tasks} tasks succeeded, {self.failed} failed, {cancelled}"
            f"{self.retries} retries ({self.timeouts} timeouts), {self.speculative} speculative; "
            f"{self.wall_s:.1f} s (first task after {self.first_task_s or 0:.1f} s), "
            f"cost {self.cost:.6f} GLM"
        )
        lines = [head, f"{'provider':<20} {'done':>6} {'failed':>6} {'busy s':>8} {'cost GLM':>12}"]
        lines.extend(
            f"{p.name[:20]:<20} {p.tasks_done:>6} {p.failures:>6} {p.busy_seconds:>8.1f} "
            f"{p.cost:>12.6f}"
            for p in sorted(self.providers.values(), key=lambda p: p.name)
        )
        return "\n".join(lines)


class SummaryBuilder:
    """Builds a ``Summary`` from the run's events (thread-safe: events come from any thread)."""

    def __init__(self, tasks: int) -> None:
        self._lock = threading.Lock()
        self._summary = Summary(tasks=tasks)
        self._agreements: dict[str, str] = {}  # agreement -> provider id
        self._cost: dict[str, Decimal] = {}  # agreement -> what we accepted so far
        self._names: dict[str, str] = {}
        self._running: set[str] = set()  # tasks with an attempt out

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._apply(event)

    def _provider(self, provider_id: str) -> ProviderSummary:
        providers = self._summary.providers
        if provider_id not in providers:
            providers[provider_id] = ProviderSummary(self._names.get(provider_id, provider_id[:10]))
        return providers[provider_id]

    def _apply(self, event: Event) -> None:  # noqa: C901, PLR0912 - one branch per event type
        s = self._summary
        if isinstance(event, TaskStarted):
            s.attempts += 1
            self._running.add(event.task_id)
            s.speculative += event.speculative
            self._names[event.provider_id] = event.provider_name
            self._provider(event.provider_id).name = event.provider_name
            if s.first_task_s is None:
                s.first_task_s = time.monotonic() - s.started_at
        elif isinstance(event, TaskAttemptFailed):
            if event.retried:
                self._running.discard(event.task_id)
            s.retries += event.retried
            s.timeouts += event.kind == "timeout"
            if event.provider_id:
                self._provider(event.provider_id).failures += 1
        elif isinstance(event, TaskFinished):
            self._running.discard(event.task_id)
            if event.ok:
                s.succeeded += 1
            elif event.cancelled:
                s.cancelled += 1
            else:
                s.failed += 1
            if event.ok and event.provider_id:
                p = self._provider(event.provider_id)
                p.tasks_done += 1
                p.busy_seconds += event.seconds
        elif isinstance(event, AgreementApproved):
            self._agreements[event.agreement_id] = event.provider_id
            self._names.setdefault(event.provider_id, event.provider_name)
        elif isinstance(event, DebitNoteAccepted | InvoiceAccepted):
            provider = self._agreements.get(event.agreement_id)
            if provider is None:
                return
            old = self._cost.get(event.agreement_id, Decimal(0))
            new = event.amount if isinstance(event, InvoiceAccepted) else max(old, event.amount)
            self._cost[event.agreement_id] = new
            self._provider(provider).cost += new - old
            s.cost += new - old

    def snapshot(self) -> Summary:
        with self._lock:
            s = self._summary
            copy = replace(s, providers={k: replace(v) for k, v in s.providers.items()})
            copy.running = len(self._running)
        copy.wall_s = time.monotonic() - copy.started_at
        return copy


class TaskRun:
    """The results of a run as they finish (iterate it), its ``summary``, and ``stop()``."""

    _END: Any = object()

    def __init__(self, tasks: Sequence[Task], stopper: Callable[[float], None]) -> None:
        self.tasks = list(tasks)
        self.results: queue.Queue[Any] = queue.Queue()
        self.stats = SummaryBuilder(len(self.tasks))
        self.finished = threading.Event()
        self._stopper = stopper
        self._yielded = 0
        self._final: Summary | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def __iter__(self) -> Iterator[TaskResult]:
        while self._yielded < len(self.tasks):
            item = self.next_result(timeout=None)
            if item is None:
                return
            yield item

    def next_result(self, timeout: float | None) -> TaskResult | None:
        """The next finished task; None once all were reported (or after ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if left <= 0:
                return None
            try:
                item = self.results.get(timeout=left)
            except queue.Empty:
                continue
            if item is self._END:
                self.results.put(item)  # later callers see the end too
                return None
            self._yielded += 1
            return item  # type: ignore[no-any-return]

    def stop(self, timeout: float = 60.0) -> None:
        """Stop: tasks not yet final end as cancelled; workers terminate their agreements."""
        self._stopper(timeout)

    def set_final_summary(self, summary: Summary) -> None:
        self._final = summary

    @property
    def summary(self) -> Summary:
        return self._final or self.stats.snapshot()

    def progress(self) -> dict[str, float]:
        s = self.stats.snapshot()
        return {"done": s.done, "running": s.running, "failed": s.failed, "tasks": s.tasks}


@contextlib.contextmanager
def execute_tasks(
    tasks: Sequence[Task],
    worker: Worker | None = None,
    *,
    budget: Decimal | str | float = "5",
    config: Any = None,
    golem_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> Iterator[TaskRun]:
    """A whole session for one run: ``with execute_tasks(tasks, ...) as run: for r in run: ...``.

    Leaving the block (normally, on an error or on Ctrl-C) stops the run, terminates every
    agreement and pays every invoice; ``run.summary`` is then final. ``options`` are those of
    ``Golem.execute_tasks`` (``max_workers``, ``task_timeout``, ``max_retries``, ``timeout``...).
    """
    from golem_actors.golem import Golem  # noqa: PLC0415 - the session pulls in the runtime

    golem = Golem(config=config, budget=budget, **dict(golem_options or {}))
    golem.start()
    run: TaskRun | None = None
    try:
        run = golem.execute_tasks(tasks, worker, **options)
        yield run
    finally:
        try:
            if run is not None:
                run.stop()
        finally:
            golem.stop()
            if run is not None:
                run.set_final_summary(run.stats.snapshot())
