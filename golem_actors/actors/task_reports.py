"""What a task run tells the world: attempts started and failed (events), and each task's one
final result (an event, the journal, the caller's ``TaskRun``).

The dispatcher decides, this writes, in the dispatcher's thread. A final task is told in this
order: ``TaskFinished``; a success's result into the journal, fsynced before the result is
reported, so a resumed run never redoes a task its caller saw done; then the ``TaskResult``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from golem_actors.actors.runtime import Runtime
from golem_actors.actors.task_attempts import AttemptReport
from golem_actors.events import TaskAttemptFailed, TaskFinished, TaskStarted
from golem_actors.policy.task_book import Attempt, Completion, FailureKind
from golem_actors.tasks.model import Task, TaskResult
from golem_actors.tasks.run import TaskRun

__all__ = ["TaskReports"]

log = logging.getLogger(__name__)

ERROR_CHARS = 300  # of an error's text in an event


class TaskReports:
    """The run's outbox: counts each task's attempts and keeps its last error for its result."""

    def __init__(
        self, rt: Runtime, tasks: Sequence[Task[object]], run: TaskRun[object, object]
    ) -> None:
        self.rt = rt
        self.tasks = tasks
        self.run = run
        self.tries = [0] * len(tasks)  # attempts handed out, per task
        self.errors: dict[int, BaseException] = {}  # per task, its last attempt's error

    def started(self, attempt: Attempt, provider_name: str) -> None:
        self.tries[attempt.task] += 1
        self.rt.emit(
            TaskStarted(
                task_id=self.tasks[attempt.task].id,
                attempt=self.tries[attempt.task],
                provider_id=attempt.provider,
                provider_name=provider_name,
                speculative=attempt.speculative,
            )
        )

    def failed(
        self,
        attempt: Attempt,
        report: AttemptReport,
        kind: FailureKind,
        *,
        retried: bool,
        provider_name: str,
    ) -> None:
        self.errors[attempt.task] = report.error or RuntimeError(report.outcome.value)
        task_id = self.tasks[attempt.task].id
        self.rt.emit(
            TaskAttemptFailed(
                task_id=task_id,
                provider_id=attempt.provider,
                kind=kind.value,
                error=str(report.error)[:ERROR_CHARS],
                retried=retried,
            )
        )
        log.info("%s failed on %s (%s): %s", task_id, provider_name, kind.value, report.error)

    def final(
        self,
        completion: Completion,
        attempt: Attempt | None,
        report: AttemptReport | None,
        *,
        provider_name: str | None,
        cancelled: str | None = None,
    ) -> None:
        """Tell a final task's one result; ``cancelled`` is why a task that never finished ends
        (the error of its last attempt, if it had one, is still the one reported)."""
        task = self.tasks[completion.task]
        ok = completion.ok
        error = None
        if not ok:
            error = self.errors.get(completion.task, RuntimeError(cancelled or "failed"))
        seconds = report.seconds if report else 0.0
        provider_id = attempt.provider if attempt else None
        self.rt.emit(
            TaskFinished(
                task_id=task.id,
                ok=ok,
                attempts=self.tries[completion.task],
                provider_id=provider_id if report else None,
                seconds=seconds,
                error=None if error is None else str(error)[:ERROR_CHARS],
                cancelled=cancelled is not None,
            )
        )
        if ok and self.rt.journal is not None:
            self._journal(task.id, report.result if report else None)
        self.run.put(
            TaskResult(
                task=task,
                ok=ok,
                result=report.result if report and ok else None,
                error=error,
                attempts=self.tries[completion.task],
                provider_id=provider_id,
                provider_name=provider_name,
                files=dict(report.files) if report and ok else {},
                seconds=seconds,
            )
        )

    def _journal(self, task_id: str, result: object) -> None:
        assert self.rt.journal is not None
        try:
            self.rt.journal.task_done(task_id, result)
        except (TypeError, ValueError, OverflowError) as exc:  # not msgpack-able
            log.warning(
                "task %s: its result cannot be journaled (%s); a resume redoes it", task_id, exc
            )
