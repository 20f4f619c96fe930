"""Recovery's books: what a crashed session decided is put back, so settling waits only for
invoices that can still come."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from golem_actors.journal import Journal
from golem_actors.payments.decisions import InvoiceState
from golem_actors.payments.ledger import PaymentLedger
from golem_actors.payments.terms import Terms
from golem_actors.recovery import Recovered, RecoveryError, recover, seed_ledger
from golem_actors.yagna.errors import YagnaServerError
from golem_actors.yagna.models import Invoice

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TERMS = Terms(
    prices={"golem.usage.duration_sec": Decimal("0.0001")},
    usage_vector=("golem.usage.duration_sec",),
    start_price=Decimal(0),
    cpu_threads=1,
)


def _agreement(agreement_id: str) -> Any:
    return SimpleNamespace(agreement_id=agreement_id, approved_date=NOW - dt.timedelta(minutes=5))


def _invoice(invoice_id: str, agreement_id: str, status: str) -> Invoice:
    return Invoice(
        invoice_id=invoice_id, agreement_id=agreement_id, amount=Decimal(1), status=status
    )


def test_an_invoice_refused_before_the_crash_is_not_waited_for() -> None:
    recovered = Recovered(
        agreements=[_agreement("paid"), _agreement("refused"), _agreement("to-come")],
        accepted_invoices=[_invoice("i1", "paid", "ACCEPTED")],
        rejected_invoices=[_invoice("i2", "refused", "REJECTED")],
    )
    ledger = PaymentLedger(Decimal(5))
    assert seed_ledger(ledger, recovered, NOW, lambda _a: TERMS) == []
    assert ledger.invoice_state("paid") is InvoiceState.ACCEPTED
    assert ledger.invoice_state("refused") is InvoiceState.REFUSED
    assert ledger.invoice_state("to-come") is InvoiceState.NONE
    # What settling waits for: ended, not paid and not refused (the payment actor's rule).
    waiting = [
        a for a in ledger.outstanding() if ledger.invoice_state(a) is not InvoiceState.REFUSED
    ]
    assert waiting == ["to-come"]
    assert ledger.spent() == Decimal(1)  # the refused invoice costs nothing


class _Flaky:
    """A yagna client whose invoice listing fails ``failures`` times first."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.market = SimpleNamespace(agreements=lambda **_: [], get_agreement=self._no)
        self.payment = SimpleNamespace(debit_notes=list, invoices=self._invoices)

    @staticmethod
    def _no(agreement_id: str) -> Any:
        raise AssertionError(f"no agreement to read, asked for {agreement_id}")

    def _invoices(self) -> list[Invoice]:
        if self.failures > 0:
            self.failures -= 1
            raise YagnaServerError("injected", method="GET", path="/invoices", status=500)
        return []


def test_a_failed_listing_is_asked_again_never_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("golem_actors.recovery.time.sleep", lambda _s: None)
    with Journal.open(tmp_path / "journal.gaj") as journal:
        assert recover(_Flaky(2), journal).pending == []  # type: ignore[arg-type]
        # Never answered: recovery refuses to go on blind (it used to return "nothing owed").
        with pytest.raises(RecoveryError, match=r"listing invoices: .*injected"):
            recover(_Flaky(10), journal)  # type: ignore[arg-type]
