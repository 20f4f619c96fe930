"""The progress bar's text for one moment."""

from __future__ import annotations

from golem_actors.tasks.progress import render
from golem_actors.tasks.summary import TaskSummary


def test_the_bar_says_done_rate_and_cost() -> None:
    summary = TaskSummary(tasks=2, succeeded=1, attempts=2, retries=1, timeouts=1)
    line = render(summary, elapsed=2.0)
    assert "1/2 done" in line
    assert "0.5/s" in line
    assert "ETA 2s" in line
    assert line.startswith("[" + "#" * 12 + "." * 12 + "]")
