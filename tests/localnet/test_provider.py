"""The provider agent's pieces on their own: a recording fake stands in for yagna and the bus.

The end-to-end tests (test_network, tests/actors/test_services) run the whole agent against the
real yagna; these pin what each piece sends, in which order, in milliseconds.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from golem_actors.localnet.faults import FaultFile, Faults
from golem_actors.localnet.gsb import GsbClient
from golem_actors.localnet.offer import (
    ACCEPT_TIMEOUT,
    DEBIT_NOTE_INTERVAL,
    PAYMENT_TIMEOUT,
    ProviderSpec,
)
from golem_actors.localnet.provider.activities import Activities
from golem_actors.localnet.provider.agent import honest_capabilities
from golem_actors.localnet.provider.agreements import Agreements
from golem_actors.localnet.provider.billing import Billing, Ending
from golem_actors.localnet.provider.config import ProviderConfig
from golem_actors.localnet.provider.shared import Context, Ledger, Status
from golem_actors.yagna import YagnaClient
from golem_actors.yagna.models import Agreement, Demand, Offer


class Recorder:
    """yagna's REST calls and the bus calls the pieces make, in one ordered list."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.market = SimpleNamespace(terminate_agreement=self._record("terminate"))
        self.payment = SimpleNamespace(
            issue_debit_note=self._issue("issue_debit_note", debit_note_id="note-"),
            send_debit_note=self._record("send_debit_note"),
            issue_invoice=self._issue("issue_invoice", invoice_id="invoice-"),
            send_invoice=self._record("send_invoice"),
        )

    def _record(self, name: str) -> Any:
        return lambda *args, **kwargs: self.calls.append((name, args))

    def _issue(self, name: str, **reply: str) -> Any:
        def issue(*args: Any, **kwargs: Any) -> SimpleNamespace:
            self.calls.append((name, args))
            number = self.names().count(name)
            return SimpleNamespace(**{key: f"{value}{number}" for key, value in reply.items()})

        return issue

    def call(self, address: str, body: Any, *, timeout: float) -> Any:  # the GsbClient's
        self.calls.append((address.rpartition("/")[2], body))
        return {"Ok": None}

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def fake() -> Recorder:
    return Recorder()


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    spec = ProviderSpec("p1", payment_timeout=60.0)
    config = ProviderConfig(spec, "http://127.0.0.1:9", "key", "0xabc", "tcp://127.0.0.1:9", "")
    pool = ThreadPoolExecutor(1)
    ledger = Ledger()
    yield Context(
        config=config,
        faults=FaultFile(tmp_path / "faults.json"),
        stop=threading.Event(),
        status=Status(tmp_path, spec.name, config.node_id, ledger),
        pool=pool,
    )
    pool.shutdown()


def agreement(offer: dict[str, Any], demand: dict[str, Any] | None = None) -> Agreement:
    return Agreement(
        agreement_id="agr-1",
        demand=Demand(properties=demand or {}, constraints=""),
        offer=Offer(properties=offer, constraints=""),
        valid_to=dt.datetime.now(dt.UTC),
        state="Approved",
    )


TERMS = {
    "golem.com.pricing.model.linear.coeffs": [0.5, 2.0, 1.0],
    DEBIT_NOTE_INTERVAL: 1.0,
    ACCEPT_TIMEOUT: 2.0,
}


def test_a_book_opens_on_the_agreed_terms(ctx: Context) -> None:
    billing = Billing(ctx, Ledger())
    book = billing.open_book(agreement({**TERMS, PAYMENT_TIMEOUT: 30.0}, {PAYMENT_TIMEOUT: 30.0}))
    assert (book.agreement_id, book.coefficients) == ("agr-1", [0.5, 2.0, 1.0])
    assert (book.debit_note_interval, book.accept_timeout, book.payable) == (1.0, 2.0, True)
    # a payment timeout on one side only: notes are not payable; no terms: the spec's own
    assert not billing.open_book(agreement({**TERMS, PAYMENT_TIMEOUT: 30.0})).payable
    default = billing.open_book(agreement({}))
    assert default.coefficients == ctx.spec.coefficients
    assert default.debit_note_interval == ctx.spec.debit_note_interval


def test_billing_sends_notes_due_and_names_the_agreements_to_end(
    ctx: Context, fake: Recorder
) -> None:
    ledger = Ledger()
    billing = Billing(ctx, ledger)
    book = billing.open_book(agreement(TERMS))
    t0 = book.approved_at  # notes are stamped sent at time.monotonic(): the clock is the real one
    ledger.open(agreement(TERMS), book)
    book.start_activity("act-1", t0)
    yagna = cast("YagnaClient", fake)

    assert billing.tick(yagna, t0 + 0.5) == []
    assert fake.names() == []
    assert billing.tick(yagna, t0 + 1.0) == []
    assert fake.names() == ["issue_debit_note", "send_debit_note"]
    assert fake.calls[0][1][:3] == ("agr-1", "act-1", Decimal("1.5"))  # 0.5 * 1 s + start 1
    assert billing.tick(yagna, t0 + 60.5) == [
        Ending("agr-1", "Requestor did not accept debit note note-1 in time")
    ]
    assert fake.calls[-2][1][:3] == ("agr-1", "act-1", Decimal("31.25"))  # cumulative: 60.5 s

    assert book.debit_note_accepted("note-1")
    assert book.debit_note_accepted("note-2")
    assert billing.tick(yagna, t0 + 60.6) == []
    ctx.faults.write(Faults(terminate_after=60.0))
    assert billing.tick(yagna, t0 + 60.7) == [
        Ending("agr-1", "Provider ends the agreement (fault injected)")
    ]


def test_ending_an_agreement_stops_its_activities_then_terminates_then_invoices(
    ctx: Context, fake: Recorder, tmp_path: Path
) -> None:
    ledger = Ledger()
    billing = Billing(ctx, ledger)
    activities = Activities(ctx, ledger, cast("GsbClient", fake), exeunit_factory=None)
    agreements = Agreements(ctx, ledger, activities, billing)
    book = billing.open_book(agreement(TERMS))
    ledger.open(agreement(TERMS), book)
    activities.create("act-1", "agr-1")
    assert fake.names() == ["SetActivityState", "SetActivityUsage"]
    assert fake.calls[0][1]["state"] == {"state": ["Initialized", None]}
    fake.calls.clear()

    agreements.end(cast("YagnaClient", fake), "agr-1", "done", terminate=True)
    assert fake.names() == ["SetActivityState", "terminate", "issue_invoice", "send_invoice"]
    assert fake.calls[0][1]["state"] == {"state": ["Terminated", None]}
    assert fake.calls[2][1][:2] == ("agr-1", ["act-1"])
    assert fake.calls[3][1] == ("invoice-1",)
    assert ledger.book("agr-1") is None
    status = json.loads((tmp_path / "status.json").read_text())
    assert (status["state"], status["agreements"]) == ("ready", 0)

    fake.calls.clear()
    agreements.end(cast("YagnaClient", fake), "agr-1", "again", terminate=True)
    assert fake.calls == []  # both sides of one daemon see each termination: invoiced once
    activities.create("act-2", "agr-1")
    assert fake.calls[0][1]["state"]["reason"] == "no such agreement with this provider"


def test_a_machine_that_cannot_make_taps_does_not_offer_vpn(tmp_path: Path) -> None:
    config = ProviderConfig(
        spec=ProviderSpec("p1"), api_url="http://127.0.0.1:1", app_key="k", node_id="0x1",
        gsb_url="tcp://127.0.0.1:2", state_dir=str(tmp_path),
    )  # fmt: skip
    assert honest_capabilities(config, None) is config
    stripped = honest_capabilities(config, "it needs root")
    assert stripped.spec.capabilities == ("inet", "manifest-support", "start-entrypoint")
    assert "vpn" not in stripped.spec.offer_properties("0x1")["golem.runtime.capabilities"]
    assert stripped.app_key == "k"
    assert ProviderConfig.from_json(json.loads(json.dumps(stripped.to_json()))) == stripped
