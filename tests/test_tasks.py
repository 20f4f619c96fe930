"""The task API's checks (before any money is committed), its summary, and the progress bar."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from golem_actors.events import (
    AgreementApproved,
    InvoiceAccepted,
    TaskAttemptFailed,
    TaskFinished,
    TaskStarted,
)
from golem_actors.progress import render
from golem_actors.taskrun import check_tasks
from golem_actors.tasks import SummaryBuilder, Task, TaskDefinitionError


def worker(ctx: object, task: Task) -> None:
    pass


@pytest.mark.parametrize(
    ("task", "problem"),
    [
        (Task(inputs={"/etc/passwd": b"x"}), "under /golem/"),
        (Task(inputs={"/golem/input/x": "text"}), "ambiguous"),  # type: ignore[dict-item]
        (Task(inputs={"/golem/input/x": Path("/no/such/file")}), "not a file"),
        (Task(outputs="/golem/output/x"), "list of paths"),
        (Task(outputs=["/golem/../x"]), "under /golem/"),
        (Task(commands=["/bin/true"]), "non-empty list"),
        (Task(commands=[["true"]]), "absolute path"),
    ],
)
def test_bad_tasks_are_named(task: Task, problem: str) -> None:
    with pytest.raises(TaskDefinitionError, match=problem) as error:
        check_tasks([task], None)
    assert "task-0" in str(error.value)


def test_forms_are_not_mixed_and_ids_are_unique() -> None:
    with pytest.raises(TaskDefinitionError, match="no commands"):
        check_tasks([Task(data=1)], None)
    with pytest.raises(TaskDefinitionError, match="one or the other"):
        check_tasks([Task(commands=[["/bin/true"]])], worker)
    with pytest.raises(TaskDefinitionError, match="used twice"):
        check_tasks([Task(id="a"), Task(id="a")], worker)
    with pytest.raises(TaskDefinitionError, match="list of Task"):
        check_tasks(Task(), worker)  # type: ignore[arg-type]

    async def coroutine(ctx: object, task: Task) -> None:
        pass

    with pytest.raises(TaskDefinitionError, match="async"):
        check_tasks([Task()], coroutine)
    assert [t.id for t in check_tasks([Task(), Task(id="x")], worker)] == ["task-0", "x"]


def test_the_summary_is_built_from_events() -> None:
    stats = SummaryBuilder(2)
    stats(AgreementApproved(agreement_id="a1", provider_id="p1", provider_name="one",
                            negotiation_seconds=0.1))  # fmt: skip
    stats(TaskStarted(task_id="t0", attempt=1, provider_id="p1", provider_name="one"))
    stats(TaskStarted(task_id="t1", attempt=1, provider_id="p1", provider_name="one"))
    stats(TaskAttemptFailed(task_id="t1", provider_id="p1", kind="timeout", error="x",
                            retried=True))  # fmt: skip
    stats(TaskFinished(task_id="t0", ok=True, attempts=1, provider_id="p1", seconds=2.0))
    stats(InvoiceAccepted(invoice_id="i", agreement_id="a1", amount=Decimal("0.5")))
    summary = stats.snapshot()
    assert (summary.succeeded, summary.failed, summary.running) == (1, 0, 0)
    assert (summary.retries, summary.timeouts, summary.attempts) == (1, 1, 2)
    one = summary.providers["p1"]
    assert (one.name, one.tasks_done, one.failures, one.cost) == ("one", 1, 1, Decimal("0.5"))
    assert "1/2 tasks succeeded" in summary.format()
    line = render(summary, elapsed=2.0)
    assert "1/2 done" in line
    assert "0.5/s" in line


def test_tasks_a_stopped_run_never_ran_are_counted_cancelled_not_failed() -> None:
    summary = SummaryBuilder(3)
    summary(TaskFinished(task_id="a", ok=True, attempts=1, provider_id=None, seconds=0.1))
    summary(TaskFinished(task_id="b", ok=False, attempts=2, provider_id=None, seconds=0.1))
    summary(
        TaskFinished(
            task_id="c", ok=False, attempts=0, provider_id=None, seconds=0.0, cancelled=True
        )
    )
    snap = summary.snapshot()
    assert (snap.succeeded, snap.failed, snap.cancelled, snap.done) == (1, 1, 1, 3)
    assert "1/3 tasks succeeded, 1 failed, 1 cancelled," in snap.format()
