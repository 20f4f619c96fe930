"""``TaskRun``: the caller's handle on a running batch of tasks.

Iterate it for the results in completion order (each task exactly once), read its ``summary``
(live, final once the session settled), or ``stop()`` it. The runtime feeds it through ``put``
and ``end``; nothing here knows about actors.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, Self, cast

from golem_actors.tasks.model import D_co, R_co, Task, TaskResult
from golem_actors.tasks.summary import TaskSummary, TaskSummaryBuilder

__all__ = ["TaskRun"]


class TaskRun(Generic[D_co, R_co]):
    """The results of a run as they finish (iterate it), its ``summary``, and ``stop()``.

    ``TaskRun[D, R]``: a run of ``Task[D]`` whose worker returns ``R``.
    """

    def __init__(self, tasks: Sequence[Task[D_co]], stopper: Callable[[float], None]) -> None:
        self.tasks = list(tasks)
        self.stats = TaskSummaryBuilder(len(self.tasks))
        self.finished = threading.Event()  # set once no more results will come
        self._results: queue.Queue[TaskResult[D_co, R_co] | None] = queue.Queue()  # None: the end
        self._stopper = stopper
        self._yielded = 0
        self._final: TaskSummary | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def __iter__(self) -> Iterator[TaskResult[D_co, R_co]]:
        while self._yielded < len(self.tasks):
            item = self.next_result(timeout=None)
            if item is None:
                return
            yield item

    def next_result(self, timeout: float | None) -> TaskResult[D_co, R_co] | None:
        """The next finished task; None once all were reported (or after ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if left <= 0:
                return None
            try:
                item = self._results.get(timeout=left)
            except queue.Empty:
                continue
            if item is None:
                self._results.put(item)  # later callers see the end too
                return None
            self._yielded += 1
            return item

    def stop(self, timeout: float = 60.0) -> None:
        """Stop: tasks not yet final end as cancelled; workers terminate their agreements."""
        self._stopper(timeout)

    # -- fed by the runtime -----------------------------------------------------------------

    def put(self, result: TaskResult[object, object]) -> None:
        """One task's one and only result. The runtime carries data and results as plain
        objects; they are this run's own tasks and what its worker returned, so ``D`` and ``R``."""
        self._results.put(cast("TaskResult[D_co, R_co]", result))

    def end(self) -> None:
        """No more results will come (said once; later calls do nothing)."""
        if not self.finished.is_set():
            self.finished.set()
            self._results.put(None)

    def set_final_summary(self, summary: TaskSummary) -> None:
        self._final = summary

    # -- reading ----------------------------------------------------------------------------

    @property
    def summary(self) -> TaskSummary:
        return self._final or self.stats.snapshot()

    def progress(self) -> dict[str, float]:
        s = self.stats.snapshot()
        return {"done": s.done, "running": s.running, "failed": s.failed, "tasks": s.tasks}
