"""The task model: batch jobs spread over providers, files in and out, each ending once.

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

Where the task code lives, from the bottom up:

- ``tasks.model``: ``Task``, ``TaskOutput``, ``TaskResult``, ``TaskDefinitionError`` (a leaf);
- ``policy.task_book``: the pure rules (exactly once, retries elsewhere, speculation, bans);
- ``tasks.summary``, ``tasks.run``, ``tasks.progress``: what a run did (from events), the
  caller's ``TaskRun`` handle, the bar on stderr;
- ``actors.task_attempts`` (an attempt run: the user's worker or a packed batch),
  ``actors.task_worker`` (one provider's worker), ``actors.task_reports`` (events, journal,
  results) and ``actors.task_dispatcher`` (the run's loop around the task book);
- ``tasks.options`` (``TaskOptions``) and ``tasks.start`` (check everything, start the
  dispatcher); the entry points, ``Golem.execute_tasks`` and ``execute_tasks``, live with the
  session in ``golem_actors.golem``.

This ``__init__`` imports none of them (``golem_actors.tasks.model`` must stay importable from
below the runtime); it only keeps the names this module held before it became a package working,
with a ``DeprecationWarning``.
"""

from __future__ import annotations

import importlib
import warnings

# Old name -> (its module now, its name there); exported ones are served by ``golem_actors``.
_MOVED = {
    "ProviderSummary": ("golem_actors.tasks.summary", "ProviderSummary"),
    "Summary": ("golem_actors", "TaskSummary"),
    "SummaryBuilder": ("golem_actors.tasks.summary", "TaskSummaryBuilder"),
    "Task": ("golem_actors", "Task"),
    "TaskDefinitionError": ("golem_actors", "TaskDefinitionError"),
    "TaskOutput": ("golem_actors", "TaskOutput"),
    "TaskResult": ("golem_actors", "TaskResult"),
    "TaskRun": ("golem_actors", "TaskRun"),
    "Worker": ("golem_actors.actors.task_attempts", "Worker"),
    "execute_tasks": ("golem_actors", "execute_tasks"),
}


def __getattr__(name: str) -> object:
    moved = _MOVED.get(name)
    if moved is None:
        raise AttributeError(f"module 'golem_actors.tasks' has no attribute {name!r}")
    module, new_name = moved
    warnings.warn(
        f"golem_actors.tasks.{name} is deprecated: use {module}.{new_name}",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(module), new_name)
