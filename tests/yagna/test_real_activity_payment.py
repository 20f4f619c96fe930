"""Activity and payment APIs against the real yagna: the requestor and provider sides of one run.

No exe-unit serves the activity here (localnet's comes later), so the provider side answers the
activity events over REST, and ``exec`` must fail with yagna's own "endpoint address not found".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest

from golem_actors.yagna import (
    YagnaBadRequestError,
    YagnaClient,
    YagnaNotFoundError,
    YagnaServerError,
    YagnaTimeoutError,
)
from golem_actors.yagna.models import Allocation, DebitNoteEvent, InvoiceEvent
from tests.conftest import RealYagna
from tests.waiting import wait_for
from tests.yagna.flow import PLATFORM, Negotiation, negotiate, provider_activity_loop

pytestmark = pytest.mark.yagna


@pytest.fixture
def agreement(
    requestor: YagnaClient, provider: YagnaClient, real_yagna: RealYagna
) -> Iterator[Negotiation]:
    neg = negotiate(
        requestor, provider, real_yagna.requestor_id.node_id, real_yagna.provider_id.node_id
    )
    yield neg
    if requestor.market.get_agreement(neg.agreement_id).state != "Terminated":
        requestor.market.terminate_agreement(neg.agreement_id, "test over", code="Success")
    requestor.market.unsubscribe_demand(neg.demand_id)
    provider.market.unsubscribe_offer(neg.offer_id)


@pytest.fixture
def allocation(requestor: YagnaClient) -> Iterator[Allocation]:
    created = requestor.payment.create_allocation("10", payment_platform=PLATFORM)
    yield created
    requestor.payment.release_allocation(created.allocation_id)


def test_allocation_create_get_amend_release_and_decorations(requestor: YagnaClient):
    created = requestor.payment.create_allocation(Decimal("1.5"), payment_platform=PLATFORM)
    assert created.total_amount == Decimal("1.5")
    assert created.spent_amount == 0
    assert created.remaining_amount == Decimal("1.5")
    assert created.payment_platform == PLATFORM
    fetched = requestor.payment.get_allocation(created.allocation_id)
    assert fetched.allocation_id == created.allocation_id
    assert created.allocation_id in {a.allocation_id for a in requestor.payment.allocations()}
    amended = requestor.payment.amend_allocation(created.allocation_id, total_amount="5")
    assert amended.total_amount == 5
    decoration = requestor.payment.demand_decorations([created.allocation_id])
    assert decoration.property_dict()["golem.com.payment.protocol.version"] == "3"
    assert any("golem.com.payment.platform" in c for c in decoration.constraints)
    assert any(a.platform == PLATFORM for a in requestor.payment.requestor_accounts())
    requestor.payment.release_allocation(created.allocation_id)
    with pytest.raises(YagnaNotFoundError):
        requestor.payment.get_allocation(created.allocation_id)


def test_activity_lifecycle_debit_note_and_invoice(
    requestor: YagnaClient,
    provider: YagnaClient,
    real_yagna: RealYagna,
    agreement: Negotiation,
    allocation: Allocation,
):
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with provider_activity_loop(provider) as handled:
        activity_id = requestor.activity.create_activity(
            agreement.agreement_id, timeout=15
        ).activity_id
        assert f"CreateActivity:{activity_id}" in handled
        state = requestor.activity.get_state(activity_id)
        assert state.current == "Initialized"
        assert state.alive
        usage = requestor.activity.get_usage(activity_id)
        assert usage.timestamp > 0
        assert requestor.activity.get_agreement_id(activity_id) == agreement.agreement_id
        assert requestor.activity.activities(agreement.agreement_id) == [activity_id]
        # No exe-unit is bound yet: yagna itself reports the missing endpoint.
        with pytest.raises(YagnaServerError) as err:
            requestor.activity.exec(activity_id, [{"deploy": {}}, {"start": {}}])
        assert "endpoint address not found" in err.value.message

        # A debit note, issued and sent by the provider, received and accepted by the requestor.
        note = provider.payment.issue_debit_note(
            agreement.agreement_id, activity_id, "0.5", usage_counter_vector=[1.0, 2.0]
        )
        assert note.status == "ISSUED"
        assert note.payee_addr == real_yagna.provider_id.node_id
        provider.payment.send_debit_note(note.debit_note_id)

        def received_note() -> DebitNoteEvent | None:
            for event in requestor.payment.debit_note_events(after=started, timeout=1):
                if event.debit_note_id == note.debit_note_id:
                    return event
            return None

        assert wait_for("DebitNoteReceivedEvent", received_note).event_type == (
            "DebitNoteReceivedEvent"
        )
        fetched = requestor.payment.get_debit_note(note.debit_note_id)
        assert fetched.total_amount_due == Decimal("0.5")
        assert fetched.activity_id == activity_id
        requestor.payment.accept_debit_note(
            note.debit_note_id, fetched.total_amount_due, allocation.allocation_id
        )
        assert note.debit_note_id in {d.debit_note_id for d in requestor.payment.debit_notes()}

        requestor.activity.destroy_activity(activity_id, timeout=15)
        assert f"DestroyActivity:{activity_id}" in handled
        assert requestor.activity.get_state(activity_id).current == "Terminated"
        requestor.activity.destroy_activity(activity_id, timeout=5)  # harmless when repeated

    requestor.market.terminate_agreement(agreement.agreement_id, "done", code="Success")
    invoice = provider.payment.issue_invoice(
        agreement.agreement_id,
        [activity_id],
        "0.7",
        dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10),
    )
    assert invoice.status == "ISSUED"
    provider.payment.send_invoice(invoice.invoice_id)

    def received_invoice() -> InvoiceEvent | None:
        for event in requestor.payment.invoice_events(after=started, timeout=1):
            if event.invoice_id == invoice.invoice_id:
                return event
        return None

    assert wait_for("InvoiceReceivedEvent", received_invoice).event_type == "InvoiceReceivedEvent"
    got = requestor.payment.get_invoice(invoice.invoice_id)
    assert got.amount == Decimal("0.7")
    assert got.status == "RECEIVED"
    assert list(got.activity_ids) == [activity_id]
    with pytest.raises(YagnaBadRequestError):  # yagna insists on the exact amount
        requestor.payment.accept_invoice(invoice.invoice_id, "0.1", allocation.allocation_id)
    requestor.payment.accept_invoice(invoice.invoice_id, got.amount, allocation.allocation_id)
    assert requestor.payment.get_invoice(invoice.invoice_id).status == "ACCEPTED"
    assert invoice.invoice_id in {i.invoice_id for i in requestor.payment.invoices()}
    spent = requestor.payment.get_allocation(allocation.allocation_id).spent_amount
    assert spent == Decimal("0.7")  # the invoice covers the debit note's 0.5

    def provider_sees_acceptance() -> bool | None:
        events = provider.payment.invoice_events(after=started, timeout=1)
        kinds = {e.event_type for e in events if e.invoice_id == invoice.invoice_id}
        return True if "InvoiceAcceptedEvent" in kinds else None

    wait_for("InvoiceAcceptedEvent on the provider side", provider_sees_acceptance)


def test_activity_create_without_a_provider_answer_times_out(
    requestor: YagnaClient, agreement: Negotiation
):
    with pytest.raises(YagnaTimeoutError) as err:
        requestor.activity.create_activity(agreement.agreement_id, timeout=2)
    assert err.value.status == 408
    assert err.value.method == "POST"
