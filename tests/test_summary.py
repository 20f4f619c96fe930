"""The end-of-run summary, built from events alone."""

from __future__ import annotations

from decimal import Decimal

from golem_actors import events as ev
from golem_actors.events import EventBus
from golem_actors.payments.decisions import Totals
from golem_actors.summary import RunSummary

P0, P1 = "0x" + "a" * 40, "0x" + "b" * 40


def state(instance: str, new: str, provider: str | None, at: float) -> ev.InstanceStateChanged:
    return ev.InstanceStateChanged(
        service="S", instance=instance, old="?", new=new, provider_id=provider, at=at
    )


def test_a_run_with_a_restart_and_one_unpaid_agreement() -> None:
    bus = EventBus()
    summary = RunSummary()
    summary.attach(bus)
    for event in (
        ev.AgreementApproved(
            agreement_id="a0", provider_id=P0, provider_name="provider-0", negotiation_seconds=1
        ),
        state("s-0", "starting", P0, 100.0),
        state("s-0", "running", P0, 101.0),
        ev.TaskFinished(task_id="t0", ok=True, attempts=1, provider_id=P0, seconds=1),
        ev.TaskFinished(task_id="t1", ok=False, attempts=2, provider_id=P0, seconds=1),
        ev.DebitNoteAccepted(debit_note_id="d1", agreement_id="a0", amount=Decimal("0.1")),
        ev.DebitNoteAccepted(debit_note_id="d2", agreement_id="a0", amount=Decimal("0.3")),
        state("s-0", "failed", P0, 111.0),  # 10 s up
        ev.InstanceRestarting(
            service="S", instance="s-0", reason="run_failed", delay_seconds=1, restarts=1
        ),
        ev.AgreementTerminated(agreement_id="a0", provider_id=P0, by_provider=False, reason=""),
        ev.AgreementApproved(
            agreement_id="a1", provider_id=P1, provider_name="provider-1", negotiation_seconds=1
        ),
        state("s-0", "running", P1, 120.0),  # still up at "now"
        ev.AgreementTerminated(agreement_id="a1", provider_id=P1, by_provider=True, reason=""),
        ev.InvoiceAccepted(invoice_id="i0", agreement_id="a0", amount=Decimal("0.25")),
    ):
        bus.emit(event)
    summary.detach()
    bus.emit(
        ev.AgreementApproved(
            agreement_id="late", provider_id=P1, provider_name="provider-1", negotiation_seconds=1
        )
    )

    rows = {r.name: r for r in summary.rows(now=125.0)}
    assert rows["provider-0"].agreements == 1
    assert rows["provider-0"].uptime_s == 10.0
    assert (rows["provider-0"].tasks, rows["provider-0"].tasks_failed) == (2, 1)
    assert rows["provider-0"].restarts == 1
    assert rows["provider-0"].cost == Decimal("0.25")  # the invoice replaces the notes
    assert rows["provider-1"].agreements == 1  # detached before "late"
    assert rows["provider-1"].uptime_s == 5.0
    assert rows["provider-1"].restarts == 0
    assert summary.invoices() == (1, 1, 0)

    totals = Totals(Decimal(5), Decimal("0.3"), Decimal("0.25"), Decimal("0.25"), Decimal("4.75"))
    text = summary.render(totals, now=125.0)
    lines = text.splitlines()
    assert lines[0].split() == [
        "provider",
        "agreements",
        "uptime",
        "tasks",
        "restarts",
        "cost",
        "(GLM)",
    ]
    assert lines[1].split() == ["provider-0", "1", "10s", "2/1!", "1", "0.25"]
    assert lines[2].split() == ["provider-1", "1", "5s", "0", "0", "0"]
    assert lines[3] == (
        "total cost 0.25 GLM; budget left 4.75 of 5 GLM; invoices accepted 1, outstanding 1"
    )


def test_an_empty_run_says_so() -> None:
    text = RunSummary().render(None)
    assert "(no provider was used)" in text
    assert "total cost 0 GLM; invoices accepted 0, outstanding 0" in text
