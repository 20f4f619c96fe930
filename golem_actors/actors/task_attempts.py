"""How a task worker runs tasks, outside any actor thread: the user's function, or a packed batch.

``run_user_task`` sends a task's inputs, calls ``worker(ctx, task)`` and fetches its outputs.
``PackedBatch`` turns several declarative tasks into one ExeScript — for each task its input
transfers, its commands and its output transfers, back to back — and splits the batch's results
into one report per task (``policy.task_book.split_segments``): a failing command fails only its own
task, the tasks after it never ran and go back to the queue uncounted.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from golem_actors.actors.activity import ActivityGoneError, BatchTimeoutError
from golem_actors.actors.context import InstanceStoppingError, WorkContext
from golem_actors.exescript import BatchResult, Capture, CommandFailedError, Script
from golem_actors.output import STREAMED, OutputLine, OutputStream, log_line
from golem_actors.policy.task_book import SegmentState, split_segments
from golem_actors.storage.http import Slot, Storage, StorageError
from golem_actors.tasks.model import D_co, R_co, Task, TaskOutput
from golem_actors.yagna.models import CommandResult

__all__ = ["AttemptReport", "Outcome", "PackedBatch", "Worker", "run_user_task"]

log = logging.getLogger(__name__)

#: ``worker(ctx, task)``: runs one task on a provider; its return value is the task's result.
#: ``Worker[D, R]`` takes a ``Task[D]`` and returns ``R``.
Worker = Callable[[WorkContext, Task[D_co]], R_co]


class Outcome(enum.Enum):
    OK = "ok"
    TASK_ERROR = "task"  # the task's own failure: retried elsewhere
    TIMEOUT = "timeout"
    PROVIDER = "provider"  # the provider failed under it
    NOT_RUN = "not_run"  # never started: back to the queue, uncounted


@dataclass(frozen=True)
class AttemptReport:
    attempt_id: int
    outcome: Outcome
    result: object = None
    files: Mapping[str, bytes] = field(default_factory=dict)
    error: BaseException | None = None
    seconds: float = 0.0

    @classmethod
    def not_run(cls, attempt_id: int) -> AttemptReport:
        return cls(attempt_id, Outcome.NOT_RUN)


def run_user_task(
    fn: Worker[object, object], ctx: WorkContext, attempt_id: int, task: Task[object]
) -> tuple[AttemptReport, ...]:
    """Inputs in, ``fn(ctx, task)``, outputs out; every failure becomes a report."""
    started = time.monotonic()
    try:
        for remote, source in task.inputs.items():
            if isinstance(source, bytes | bytearray):
                ctx.send_bytes(bytes(source), remote)
            else:
                ctx.send_file(Path(source), remote)
        value = fn(ctx, task)
        files = {remote: ctx.download_bytes(remote) for remote in task.outputs}
    except (InstanceStoppingError, ActivityGoneError) as exc:
        return (AttemptReport(attempt_id, Outcome.PROVIDER, error=exc),)
    except BatchTimeoutError as exc:
        return (AttemptReport(attempt_id, Outcome.TIMEOUT, error=exc),)
    except Exception as exc:  # noqa: BLE001 - the task's own failure, reported, retried
        return (AttemptReport(attempt_id, Outcome.TASK_ERROR, error=exc),)
    seconds = time.monotonic() - started
    return (AttemptReport(attempt_id, Outcome.OK, value, files, seconds=seconds),)


class PackedBatch:
    """Several declarative tasks as one ExeScript, and its results split back per task."""

    def __init__(
        self,
        items: tuple[tuple[int, Task[object]], ...],
        storage: Storage | None,
        timeout_s: float,
        *,
        log_as: str | None = None,
    ) -> None:
        """With ``log_as`` (the worker's name), the commands' output goes to the log as it is
        printed, each line under its task's id."""
        self.items = items
        self.log_as = log_as
        self.output = OutputStream(self._log, direct=True) if log_as is not None else None
        self._task_at: dict[int, str] = {}  # command index -> the id of its task
        self.timeout_s = timeout_s * len(items)
        self.script = Script()
        self.lengths: list[int] = []
        self.runs: list[list[int]] = []  # per task: indexes of its run commands
        self.slots: list[dict[str, Slot]] = []
        self._urls: list[str] = []
        self._storage = storage
        self._started = time.monotonic()
        try:
            for _, task in items:
                self._add(task)
        except BaseException:
            self.release()
            raise

    def _need_storage(self) -> Storage:
        if self._storage is None:
            raise StorageError("no storage is configured for file transfers in this run")
        return self._storage

    def _add(self, task: Task[object]) -> None:
        first = len(self.script)
        for remote, source in task.inputs.items():
            storage = self._need_storage()
            if isinstance(source, bytes | bytearray):
                url = storage.publish_bytes(bytes(source))
            else:
                url = storage.publish_file(Path(source))
            self._urls.append(url)
            self.script.transfer(url, f"container:{remote}")
        runs = []
        capture = STREAMED if self.output is not None else Capture()
        for argv in task.commands:
            self.script.run(argv[0], *argv[1:], stdout=capture, stderr=capture)
            runs.append(self.script.last)
        slots = {}
        for remote in task.outputs:
            slot = self._need_storage().upload_slot()
            self._urls.append(slot.url)
            slots[remote] = slot
            self.script.transfer(f"container:{remote}", slot.url)
        self._task_at.update(dict.fromkeys(range(first, len(self.script)), task.id))
        self.lengths.append(len(self.script) - first)
        self.runs.append(runs)
        self.slots.append(slots)

    def _log(self, line: OutputLine) -> None:
        log_line(f"{self.log_as} {self._task_at.get(line.index, '?')}", line)

    def script_json(self) -> list[dict[str, Any]]:
        return self.script.to_json()

    def release(self) -> None:
        if self._storage is not None:
            for url in self._urls:
                self._storage.release(url)
        self._urls.clear()

    def collect(self, future: Future[list[CommandResult]]) -> tuple[AttemptReport, ...]:
        """One report per task, from the finished future (runs in an I/O thread)."""
        try:
            return self._collect(future)
        finally:
            self.release()

    def _collect(self, future: Future[list[CommandResult]]) -> tuple[AttemptReport, ...]:
        error = future.exception(timeout=0)
        finished = True
        if self.output is not None:
            done = future.result(timeout=0) if error is None else None
            self.output.finish(error.partial if isinstance(error, BatchTimeoutError) else done)
        if isinstance(error, BatchTimeoutError):
            results, finished = error.partial, False
        elif error is not None:
            # The activity or yagna failed: the task that was running takes the blame (we cannot
            # tell which from here: the first), the others never ran.
            ids = [a for a, _ in self.items]
            first = AttemptReport(ids[0], Outcome.PROVIDER, error=error)
            return (first, *(AttemptReport.not_run(a) for a in ids[1:]))
        else:
            results = future.result(timeout=0)
        batch = BatchResult.parse(self.script, results)
        reported = [o.ok for o in batch.outcomes]
        states = split_segments(self.lengths, reported, finished=finished and batch.is_finished)
        per_task = (time.monotonic() - self._started) / max(1, len(self.items))
        start = 0
        reports = []
        for (attempt_id, task), state, n, runs, slots in zip(
            self.items, states, self.lengths, self.runs, self.slots, strict=True
        ):
            reports.append(self._report(attempt_id, task, state, batch, range(start, start + n),
                                        runs, slots, per_task))  # fmt: skip
            start += n
        return tuple(reports)

    @staticmethod
    def _report(  # noqa: PLR0917 - private, called once
        attempt_id: int,
        task: Task[object],
        state: SegmentState,
        batch: BatchResult,
        indexes: range,
        runs: list[int],
        slots: dict[str, Slot],
        seconds: float,
    ) -> AttemptReport:
        if state is SegmentState.NOT_RUN:
            return AttemptReport.not_run(attempt_id)
        if state is SegmentState.STUCK:
            message = f"the task did not finish within its timeout ({task.id})"
            return AttemptReport(attempt_id, Outcome.TIMEOUT, error=TimeoutError(message))
        if state is SegmentState.FAILED:
            failing = next(o for o in batch.outcomes if o.index in indexes and not o.ok)
            return AttemptReport(
                attempt_id, Outcome.TASK_ERROR, error=CommandFailedError(failing), seconds=seconds
            )
        try:
            files = {remote: _arrived(remote, slot) for remote, slot in slots.items()}
            output = TaskOutput(
                stdout=tuple(batch[i].stdout for i in runs),
                stderr=tuple(batch[i].stderr for i in runs),
                files=files,
            )
            value = task.parse(output) if task.parse is not None else output.stdout[-1]
        except Exception as exc:  # noqa: BLE001 - parse is user code: its failure is the task's
            return AttemptReport(attempt_id, Outcome.TASK_ERROR, error=exc, seconds=seconds)
        return AttemptReport(attempt_id, Outcome.OK, value, files, seconds=seconds)


def _arrived(remote: str, slot: Slot) -> bytes:
    if not slot.path.exists():
        raise StorageError(f"{remote} was reported sent, but nothing arrived")
    return slot.path.read_bytes()
