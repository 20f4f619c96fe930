"""Starting a task run: every task and option checked before any agreement is made, then the
dispatcher.

``Golem.execute_tasks`` calls ``start_task_run``; it is separate so the session module stays
about sessions. Bad input raises ``TaskDefinitionError`` naming the task and the field.
"""

from __future__ import annotations

import inspect
import itertools
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any, cast

import pykka

from golem_actors.actors.runtime import Runtime
from golem_actors.actors.task_attempts import Worker
from golem_actors.actors.task_dispatcher import StopRun, TaskDispatcher
from golem_actors.actors.task_worker import WorkerConfig
from golem_actors.events import TaskFinished
from golem_actors.storage.http import Storage
from golem_actors.tasks.model import D_co, R_co, Task, TaskDefinitionError, TaskResult
from golem_actors.tasks.options import TaskOptions
from golem_actors.tasks.progress import ProgressBar
from golem_actors.tasks.run import TaskRun

__all__ = ["check_tasks", "start_task_run"]

_runs = itertools.count(1)


def check_tasks(
    tasks: Sequence[Task[D_co]], worker: Worker[D_co, object] | None
) -> list[Task[D_co]]:
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
    checked: list[Task[D_co]] = []
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
    tasks: Sequence[Task[D_co]],
    worker: Worker[D_co, R_co] | None,
    options: TaskOptions,
    *,
    publish: Callable[[str], str],
    refs: Mapping[str, pykka.ActorRef[Any]],
    storage: Storage | None,
) -> TaskRun[D_co, R_co]:
    """Check the tasks, publish the demand, start the dispatcher; returns the run at once.

    ``options`` were checked when made; ``publish(name)`` puts the run's demand on the market
    and returns its key; ``refs`` are the session's market, agreement-events and payment actors.
    """
    checked = check_tasks(tasks, worker)
    group = f"{options.name}-{next(_runs)}"
    key = publish(options.name)
    run_holder: list[pykka.ActorRef[TaskDispatcher]] = []

    def stop(wait_s: float) -> None:
        future: Future[None] = Future()
        try:
            run_holder[0].tell(StopRun("the run was stopped", future))
            future.result(wait_s)
        except (pykka.ActorDeadError, FutureTimeoutError, IndexError):
            pass
        if bar is not None:
            bar.close()

    run: TaskRun[D_co, R_co] = TaskRun(checked, stop)
    rt.events.subscribe(run.stats)
    todo = _report_recorded(rt, run, checked)
    if not todo:
        bar = None  # nothing will run: no bar, no dispatcher
        run.end()
        return run
    show = sys.stderr.isatty() if options.progress is None else options.progress
    bar = ProgressBar(run, sys.stderr) if show else None
    config = WorkerConfig(
        demand_key=key,
        group=group,
        market=refs["market"],
        agreement_events=refs["events"],
        payments=refs["payments"],
        storage=storage,
        # The runtime never looks into a task's data or result: it hands this run's own tasks
        # back to this run's worker, and its results to this run (typed again there).
        worker_fn=cast("Worker[object, object] | None", worker),
        stream_output=options.stream_output,
    )
    run_holder.append(TaskDispatcher.start(rt, tasks=todo, config=config, options=options, run=run))
    if bar is not None:
        bar.start()
    return run


def _report_recorded(
    rt: Runtime, run: TaskRun[D_co, R_co], tasks: list[Task[D_co]]
) -> list[Task[D_co]]:
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
        run.put(
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
