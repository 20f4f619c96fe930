"""Adoption from a crashed session: what it decided is put back into fresh books, so settling
waits only for invoices that can still come."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from golem_actors.payments.adoption import Recovered, seed_ledger
from golem_actors.payments.decisions import InvoiceState
from golem_actors.payments.ledger import PaymentLedger
from golem_actors.payments.terms import Terms
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
