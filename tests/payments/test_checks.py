"""PaymentActor against a scripted yagna: documents of agreements or activities it never recorded.

Our yagna is the ground truth: such a document is paid (within prices and budget, once) when
yagna says the agreement is this run's, and still never when it is not.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pykka
import pytest

from golem_actors.actors.runtime import Runtime
from golem_actors.journal import Journal
from golem_actors.payments.actor import PaymentActor
from golem_actors.payments.decisions import Totals
from golem_actors.payments.messages import GetTotals, RegisterAgreement
from golem_actors.yagna.models import Agreement, Allocation
from golem_actors.yagna.testing import MockRequest, MockResponse, MockYagna
from tests.waiting import wait_for

US = "0x00000000000000000000000000000000000000aa"
PROVIDER = "0x00000000000000000000000000000000000000bb"
AGREEMENT = "ag-1"
ACTIVITY = "act-1"
PAY = "/payment-api/v1"
# 0.001 GLM per second and per cpu second (one thread), 0.01 to start: an activity approved
# 100 s ago may cost at most 0.01 + 0.002 x (100 + 30 s grace) = 0.27 GLM.
APPROVED_AGO_S = 100


def _ts(at: dt.datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def agreement_json(
    *, created: dt.datetime, requestor: str = US, session: str | None = None
) -> dict[str, Any]:
    approved = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=APPROVED_AGO_S)
    return {
        "agreementId": AGREEMENT,
        "demand": {"properties": {}, "constraints": "", "requestorId": requestor},
        "offer": {
            "properties": {
                "golem.com.pricing.model": "linear",
                "golem.com.pricing.model.linear.coeffs": [0.001, 0.001, 0.01],
                "golem.com.usage.vector": ["golem.usage.duration_sec", "golem.usage.cpu_sec"],
                "golem.inf.cpu.threads": 1,
            },
            "constraints": "",
            "providerId": PROVIDER,
        },
        "validTo": _ts(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)),
        "state": "Terminated",
        "timestamp": _ts(created),
        "approvedDate": _ts(approved),
        "appSessionId": session,
    }


def invoice_json(invoice_id: str, amount: str, activities: list[str]) -> dict[str, Any]:
    return {
        "invoiceId": invoice_id,
        "agreementId": AGREEMENT,
        "amount": amount,
        "status": "RECEIVED",
        "activityIds": activities,
    }


def note_json(note_id: str, amount: str) -> dict[str, Any]:
    return {
        "debitNoteId": note_id,
        "agreementId": AGREEMENT,
        "activityId": ACTIVITY,
        "totalAmountDue": amount,
        "status": "RECEIVED",
    }


class Yagna:
    """A MockYagna scripted as our payment-side yagna, with documents to announce."""

    def __init__(self) -> None:
        self.mock = MockYagna()
        self.since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        self.events: dict[str, list[dict[str, Any]]] = {"invoice": [], "debit_note": []}
        self.mock.add("GET", f"{PAY}/invoiceEvents", handler=self._poll("invoice"))
        self.mock.add("GET", f"{PAY}/debitNoteEvents", handler=self._poll("debit_note"))
        self.mock.add("POST", f"{PAY}/(invoices|debitNotes)/[^/]+/(accept|reject)", status=200)
        self.listed = [ACTIVITY]  # what yagna lists as the agreement's activities
        self.mock.add(
            "GET", r"/activity-api/v1/activity", handler=lambda _: MockResponse(200, self.listed)
        )

    def _poll(self, kind: str) -> Any:
        def answer(_: MockRequest) -> MockResponse:
            if self.events[kind]:
                return MockResponse(200, [self.events[kind].pop(0)])
            time.sleep(0.05)  # a long-poll that found nothing
            return MockResponse(200, [])

        return answer

    def agreement(self, **kwargs: Any) -> None:
        kwargs.setdefault("created", self.since + dt.timedelta(seconds=2))
        self.mock.add(
            "GET", f"/market-api/v1/agreements/{AGREEMENT}", json=agreement_json(**kwargs)
        )

    def invoice(self, invoice_id: str, amount: str, activities: list[str]) -> None:
        path = f"{PAY}/invoices/{invoice_id}"
        self.mock.add("GET", path, json=invoice_json(invoice_id, amount, activities))
        event = {"invoiceId": invoice_id, "eventType": "InvoiceReceivedEvent"}
        self.events["invoice"].append({**event, "eventDate": _ts(dt.datetime.now(dt.UTC))})

    def debit_note(self, note_id: str, amount: str) -> None:
        self.mock.add("GET", f"{PAY}/debitNotes/{note_id}", json=note_json(note_id, amount))
        event = {"debitNoteId": note_id, "eventType": "DebitNoteReceivedEvent"}
        self.events["debit_note"].append({**event, "eventDate": _ts(dt.datetime.now(dt.UTC))})

    def posts(self, what: str) -> list[str] | None:
        """Paths of the POSTs ending in ``what`` (accept or reject), or None if none."""
        paths = [c.path for c in self.mock.calls if c.method == "POST" and c.path.endswith(what)]
        return paths or None

    def asked_about_agreement(self) -> bool:
        return any(c.path.endswith(f"/agreements/{AGREEMENT}") for c in self.mock.calls)


@pytest.fixture
def yagna() -> Yagna:
    return Yagna()


def start_payments(yagna: Yagna, rt: Runtime) -> pykka.ActorRef[Any]:
    """The payment actor of a 10 GLM allocation of ours, on the scripted yagna."""
    allocation = Allocation.from_json(
        {
            "allocationId": "alloc-1",
            "totalAmount": "10",
            "spentAmount": "0",
            "remainingAmount": "10",
            "address": US,
        }
    )
    return PaymentActor.start(rt, allocation, poll_s=1.0, since=yagna.since, hold_s=0.1)


@pytest.fixture
def payments(yagna: Yagna) -> Iterator[pykka.ActorRef[Any]]:
    client = yagna.mock.client()
    rt = Runtime(client.config, client=client)
    ref = start_payments(yagna, rt)
    try:
        yield ref
    finally:
        rt.close()
        pykka.ActorRegistry.stop_all(timeout=5)


def invoices_paid(ref: pykka.ActorRef[Any]) -> Decimal:
    totals = ref.ask(GetTotals(), timeout=5)
    assert isinstance(totals, Totals)
    return totals.invoices


def test_an_invoice_of_an_unknown_agreement_that_is_ours_is_accepted_once(yagna, payments):
    yagna.agreement()
    yagna.invoice("inv-1", "0.1", [ACTIVITY])
    yagna.invoice("inv-1", "0.1", [ACTIVITY])  # announced twice: still decided once
    wait_for("the invoice booked", lambda: invoices_paid(payments) == Decimal("0.1"))
    assert len(yagna.posts("/accept") or []) == 1
    assert not yagna.posts("/reject")


@pytest.mark.parametrize(
    ("script", "why"),
    [
        ({}, "yagna does not know it"),  # no route: 404
        ({"created": "before"}, "before this session"),
        ({"requestor": PROVIDER}, "not us"),
    ],
)
def test_an_invoice_of_an_agreement_that_is_not_ours_is_not_accepted(
    yagna, payments, caplog, script, why
):
    caplog.set_level(logging.WARNING)
    if script:
        if script.get("created") == "before":
            script = {"created": yagna.since - dt.timedelta(minutes=5)}
        yagna.agreement(**script)
    yagna.invoice("inv-1", "0.1", [ACTIVITY])
    wait_for("the invoice ignored", lambda: "ignoring Invoice" in caplog.text)
    assert why in caplog.text
    assert yagna.asked_about_agreement()
    assert not yagna.posts("/accept")
    assert invoices_paid(payments) == 0


def _register(yagna: Yagna, payments: pykka.ActorRef[Any]) -> None:
    created = yagna.since + dt.timedelta(seconds=2)
    payments.tell(RegisterAgreement(Agreement.from_json(agreement_json(created=created))))
    yagna.agreement()


def test_a_debit_note_of_an_unknown_activity_is_accepted_within_the_bound_from_approval(
    yagna, payments
):
    _register(yagna, payments)
    yagna.debit_note("dn-1", "0.2")  # 0.2 <= 0.27: possible only since the approval
    wait_for("the note accepted", lambda: yagna.posts("/debitNotes/dn-1/accept"))
    wait_for("the note booked", lambda: payments.ask(GetTotals(), timeout=5).debit_notes)
    lookups = [c for c in yagna.mock.calls if c.path == "/activity-api/v1/activity"]
    assert lookups[0].query == {"agreementId": AGREEMENT}
    assert payments.ask(GetTotals(), timeout=5).debit_notes == Decimal("0.2")


def test_an_invoice_naming_an_unknown_activity_is_accepted_within_the_bound(yagna, payments):
    _register(yagna, payments)
    yagna.invoice("inv-1", "0.25", [ACTIVITY])
    wait_for("the invoice booked", lambda: invoices_paid(payments) == Decimal("0.25"))


def test_an_invoice_above_the_bound_is_still_refused(yagna, payments):
    _register(yagna, payments)
    yagna.invoice("inv-1", "5", [ACTIVITY])
    wait_for("the invoice rejected", lambda: yagna.posts("/invoices/inv-1/reject"))
    assert not yagna.posts("/accept")
    assert invoices_paid(payments) == 0


def test_an_activity_yagna_does_not_list_is_still_refused(yagna, payments):
    yagna.listed = []  # the provider names an activity nobody created
    _register(yagna, payments)
    yagna.invoice("inv-9", "0.01", ["made-up"])
    wait_for("the invoice rejected", lambda: yagna.posts("/invoices/inv-9/reject"))
    assert not yagna.posts("/accept")


@pytest.mark.parametrize("same_session", [True, False])
def test_with_a_journal_the_agreement_must_be_of_this_run_and_is_journaled(
    yagna, tmp_path, caplog, same_session
):
    caplog.set_level(logging.WARNING)
    client = yagna.mock.client()
    with Journal.open(tmp_path / "journal.gaj") as journal:
        run_id = journal.state.run_id
        rt = Runtime(client.config, client=client, journal=journal)
        allocation = Allocation.from_json(
            {"allocationId": "a", "totalAmount": "1", "spentAmount": "0", "remainingAmount": "1"}
        )
        try:
            ref = PaymentActor.start(rt, allocation, poll_s=1.0, since=yagna.since, hold_s=0.1)
            yagna.agreement(session=run_id if same_session else "another-run")
            yagna.invoice("inv-1", "0.1", [ACTIVITY])
            if same_session:
                wait_for("the invoice booked", lambda: invoices_paid(ref) == Decimal("0.1"))
                assert AGREEMENT in journal.state.agreements
                assert journal.state.activities[ACTIVITY].agreement_id == AGREEMENT
            else:
                wait_for("the invoice ignored", lambda: "ignoring Invoice" in caplog.text)
                assert "not this run's" in caplog.text
                assert AGREEMENT not in journal.state.agreements
                assert not yagna.posts("/accept")
        finally:
            rt.close()
            pykka.ActorRegistry.stop_all(timeout=5)


def test_an_invoice_whose_fetch_fails_is_fetched_again_not_dropped(yagna, payments):
    yagna.agreement()
    yagna.mock.add("GET", f"{PAY}/invoices/inv-1", status=500, json={"message": "db busy"}, times=1)
    routes = yagna.mock.routes
    routes.insert(0, routes.pop())  # the failure answers first, once
    yagna.invoice("inv-1", "0.1", [ACTIVITY])
    wait_for("the invoice booked", lambda: invoices_paid(payments) == Decimal("0.1"), timeout=20)
    fetches = [c for c in yagna.mock.calls if c.method == "GET" and c.path.endswith("/inv-1")]
    assert len(fetches) >= 2  # the failed fetch was retried
