"""Starting a task run: every option checked before any agreement is made, then the dispatcher.

``Golem.execute_tasks`` calls ``start_task_run``; it is separate so the session module stays
about sessions. Bad input raises ``TaskDefinitionError`` naming the task and the field.
"""

from __future__ import annotations

import inspect
import itertools
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any

import pykka

from golem_actors.actors.dispatcher import RunOptions, StopRun, TaskDispatcher
from golem_actors.actors.runtime import Runtime
from golem_actors.actors.taskworker import WorkerConfig
from golem_actors.events import TaskFinished
from golem_actors.policy.tasks import TaskPolicy
from golem_actors.progress import ProgressBar
from golem_actors.storage.http import Storage
from golem_actors.tasks import Task, TaskDefinitionError, TaskResult, TaskRun, Worker

__all__ = ["start_task_run"]

_runs = itertools.count(1)


def _whole(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TaskDefinitionError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return value


def _seconds(name: str, value: object, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value > 0)
    ):
        raise TaskDefinitionError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def check_tasks(tasks: Sequence[Task], worker: Worker | None) -> list[Task]:
    """The tasks, validated and each with an id; raises ``TaskDefinitionError``."""
    if isinstance(tasks, Task) or not isinstance(tasks, Sequence):
        raise TaskDefinitionError(f"tasks must be a list of Task, got {type(tasks).__name__}")
    if worker is not None:
        if not callable(worker):
            raise TaskDefinitionError(f"worker must be a function (ctx, task), got {worker!r}")
        if inspect.iscoroutinefunction(worker):
            raise TaskDefinitionError(
                "worker is async; golem-actors runs it in its own thread: write "
                "`def worker(ctx, task)` and call ctx directly"
            )
    checked: list[Task] = []
    seen: set[str] = set()
    for i, task in enumerate(tasks):
        if not isinstance(task, Task):
            raise TaskDefinitionError(f"tasks[{i}] must be a Task, got {type(task).__name__}")
        task = task.validate(task.id or f"task-{i}")  # noqa: PLW2901 - the checked copy
        if task.id in seen:
            raise TaskDefinitionError(f"tasks[{i}]: the id {task.id!r} is used twice")
        seen.add(task.id)
        if worker is None and not task.declarative:
            raise TaskDefinitionError(
                f"{task.id} has no commands: give a worker function, or the task's commands"
            )
        if worker is not None and task.declarative:
            raise TaskDefinitionError(
                f"{task.id} has commands and a worker function was given: use one or the other"
            )
        checked.append(task)
    return checked


def start_task_run(
    rt: Runtime,
    tasks: Sequence[Task],
    worker: Worker | None,
    *,
    publish: Callable[[str], str],
    refs: Mapping[str, pykka.ActorRef[Any]],
    storage: Storage | None,
    max_workers: int = 4,
    task_timeout: float = 300.0,
    timeout: float | None = None,
    max_retries: int = 3,
    batch_size: int = 10,
    policy: TaskPolicy | None = None,
    progress: bool | None = None,
    name: str = "tasks",
    stream_output: bool = False,
) -> TaskRun:
    """Check everything, publish the demand, start the dispatcher; returns the run at once.

    ``batch_size`` declarative tasks go in one ExeScript (one batch in flight per activity: an
    exe-unit answers a second one with "Busy"); ``policy`` tunes retries, bans and speculation
    (``max_retries`` overrides its own); ``progress`` draws a bar on stderr (default: when
    stderr is a terminal); ``stream_output`` writes every command's output to the
    ``golem_actors.output`` logger (INFO) as it is printed.
    """
    checked = check_tasks(tasks, worker)
    _whole("max_workers", max_workers, 1)
    _whole("batch_size", batch_size, 1)
    task_timeout_s = _seconds("task_timeout", task_timeout)
    assert task_timeout_s is not None
    run_timeout_s = _seconds("timeout", timeout, optional=True)
    try:
        base = policy or TaskPolicy()
        policy = TaskPolicy(**{**base.__dict__, "max_retries": max_retries})
    except ValueError as exc:
        raise TaskDefinitionError(str(exc)) from None
    group = f"{name}-{next(_runs)}"
    key = publish(name)
    run_holder: list[pykka.ActorRef[Any]] = []

    def stop(wait_s: float) -> None:
        future: Future[None] = Future()
        try:
            run_holder[0].tell(StopRun("the run was stopped", future))
            future.result(wait_s)
        except (pykka.ActorDeadError, FutureTimeoutError, IndexError):
            pass
        if bar is not None:
            bar.close()

    run = TaskRun(checked, stop)
    rt.events.subscribe(run.stats)
    todo = _report_recorded(rt, run, checked)
    if not todo:
        bar = None  # nothing will run: no bar, no dispatcher
        run.finished.set()
        run.results.put(TaskRun._END)  # noqa: SLF001 - the run's own end marker
        return run
    show = sys.stderr.isatty() if progress is None else progress
    bar = ProgressBar(run, sys.stderr) if show else None
    config = WorkerConfig(
        demand_key=key,
        group=group,
        market=refs["market"],
        agreement_events=refs["events"],
        payments=refs["payments"],
        storage=storage,
        worker_fn=worker,
        stream_output=bool(stream_output),
    )
    options = RunOptions(
        max_workers=max_workers,
        task_timeout_s=task_timeout_s,
        run_timeout_s=run_timeout_s,
        policy=policy,
        batch_size=batch_size,
    )
    run_holder.append(TaskDispatcher.start(rt, tasks=todo, config=config, options=options, run=run))
    if bar is not None:
        bar.start()
    return run


def _report_recorded(rt: Runtime, run: TaskRun, tasks: list[Task]) -> list[Task]:
    """Report at once the tasks this run's journal says are done; return the others.

    A resumed run (same journal) so never does a task twice; its result is the recorded one
    (output files fetched before the crash are where the task's code put them).
    """
    recorded = rt.journal.completed_tasks() if rt.journal is not None else {}
    todo = []
    for task in tasks:
        if task.id not in recorded:
            todo.append(task)
            continue
        rt.emit(TaskFinished(task_id=task.id, ok=True, attempts=0, provider_id=None, seconds=0.0))
        run.results.put(
            TaskResult(
                task=task,
                ok=True,
                result=recorded[task.id],
                error=None,
                attempts=0,
                provider_id=None,
                provider_name=None,
                files={},
                seconds=0.0,
            )
        )
    return todo
