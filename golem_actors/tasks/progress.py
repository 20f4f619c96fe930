"""A one-line progress bar for a task run on a terminal: done / running / failed, rate, ETA, cost.

Drawn from the run's summary (built from events) by one small thread, twice a second, on stderr
and only when it is a terminal (``start_task_run`` decides), so piped output stays clean.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from golem_actors.tasks.run import TaskRun
    from golem_actors.tasks.summary import TaskSummary

__all__ = ["ProgressBar", "render"]

WIDTH = 24


def render(summary: TaskSummary, elapsed: float) -> str:
    """The bar's text for one moment (pure, for tests)."""
    total = max(1, summary.tasks)
    filled = round(WIDTH * summary.done / total)
    rate = summary.done / elapsed if elapsed > 0 else 0.0
    left = summary.tasks - summary.done
    eta = f"{left / rate:.0f}s" if rate > 0 else "?"
    return (
        f"[{'#' * filled}{'.' * (WIDTH - filled)}] {summary.done}/{summary.tasks} done, "
        f"{summary.running} running, {summary.failed} failed | {rate:.1f}/s ETA {eta} | "
        f"{summary.cost:.4f} GLM"
    )


class ProgressBar:
    def __init__(self, run: TaskRun[object, object], out: TextIO, *, every_s: float = 0.5) -> None:
        self._run = run
        self._out = out
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="task-progress", daemon=True)
        self._started = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)

    def _draw(self) -> None:
        line = render(self._run.summary, time.monotonic() - self._started)
        self._out.write(f"\r{line}\x1b[K")
        self._out.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            self._draw()
            if self._run.finished.is_set():
                break
        self._draw()
        self._out.write("\n")
        self._out.flush()
