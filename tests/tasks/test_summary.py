"""What a task run did, built from its events alone."""

from __future__ import annotations

from decimal import Decimal

from golem_actors.events import (
    AgreementApproved,
    InvoiceAccepted,
    TaskAttemptFailed,
    TaskFinished,
    TaskStarted,
)
from golem_actors.tasks.summary import TaskSummaryBuilder


def test_the_summary_is_built_from_events() -> None:
    stats = TaskSummaryBuilder(2)
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


def test_tasks_a_stopped_run_never_ran_are_counted_cancelled_not_failed() -> None:
    summary = TaskSummaryBuilder(3)
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
