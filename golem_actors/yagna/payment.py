"""Payment API (``/payment-api/v1``): allocations, decorations, debit notes, invoices, events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from golem_actors.yagna.models import (
    Account,
    Allocation,
    DebitNote,
    DebitNoteEvent,
    DemandDecoration,
    Invoice,
    InvoiceEvent,
    format_timestamp,
)
from golem_actors.yagna.transport import Transport, check_max_events

__all__ = ["PaymentApi"]

_API = "payment"


def _amount(value: Decimal | str | int) -> str:
    amount = Decimal(str(value))
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"amount must be a finite, non-negative number, got {value!r}")
    return format(amount.normalize(), "f")  # never exponent notation, which yagna rejects


class PaymentApi:
    """Requestor (allocations, accept/reject) and provider (issue/send) payment endpoints."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._t.request(_API, method, path, **kwargs)

    # -- accounts and allocations -----------------------------------------------------------

    def requestor_accounts(self) -> list[Account]:
        return [Account.from_json(a) for a in self._call("GET", "/requestorAccounts")]

    def provider_accounts(self) -> list[Account]:
        return [Account.from_json(a) for a in self._call("GET", "/providerAccounts")]

    def create_allocation(
        self,
        total_amount: Decimal | str,
        *,
        payment_platform: str | None = None,
        address: str | None = None,
        timeout: dt.datetime | None = None,
    ) -> Allocation:
        """Reserve ``total_amount`` as a budget. Not retried: a lost answer may still create one."""
        body: dict[str, Any] = {"totalAmount": _amount(total_amount), "makeDeposit": False}
        if payment_platform is not None:
            body["paymentPlatform"] = payment_platform
        if address is not None:
            body["address"] = address
        if timeout is not None:
            body["timeout"] = format_timestamp(timeout)
        return Allocation.from_json(self._call("POST", "/allocations", json=body))

    def allocations(self) -> list[Allocation]:
        return [Allocation.from_json(a) for a in self._call("GET", "/allocations")]

    def get_allocation(self, allocation_id: str) -> Allocation:
        return Allocation.from_json(self._call("GET", f"/allocations/{allocation_id}"))

    def amend_allocation(
        self,
        allocation_id: str,
        *,
        total_amount: Decimal | str | None = None,
        timeout: dt.datetime | None = None,
    ) -> Allocation:
        body: dict[str, Any] = {}
        if total_amount is not None:
            body["totalAmount"] = _amount(total_amount)
        if timeout is not None:
            body["timeout"] = format_timestamp(timeout)
        return Allocation.from_json(self._call("PUT", f"/allocations/{allocation_id}", json=body))

    def release_allocation(self, allocation_id: str) -> None:
        self._call("DELETE", f"/allocations/{allocation_id}")

    def demand_decorations(self, allocation_ids: Sequence[str]) -> DemandDecoration:
        data = self._call(
            "GET", "/demandDecorations", params={"allocationIds": ",".join(allocation_ids)}
        )
        return DemandDecoration.from_json(data)

    # -- debit notes -------------------------------------------------------------------------

    def debit_notes(self) -> list[DebitNote]:
        return [DebitNote.from_json(d) for d in self._call("GET", "/debitNotes")]

    def get_debit_note(self, debit_note_id: str) -> DebitNote:
        return DebitNote.from_json(self._call("GET", f"/debitNotes/{debit_note_id}"))

    def debit_note_events(
        self,
        *,
        after: dt.datetime | None = None,
        timeout: float = 20.0,
        max_events: int = 100,
        app_session_id: str | None = None,
    ) -> list[DebitNoteEvent]:
        data = self._call(
            "GET",
            "/debitNoteEvents",
            params={
                "afterTimestamp": format_timestamp(after) if after else None,
                "maxEvents": check_max_events(max_events),
                "appSessionId": app_session_id,
            },
            poll_timeout=timeout,
        )
        return [DebitNoteEvent.from_json(e) for e in data or []]

    def accept_debit_note(
        self,
        debit_note_id: str,
        amount: Decimal | str,
        allocation_id: str,
        *,
        timeout: float = 10.0,
    ) -> None:
        body = {"totalAmountAccepted": _amount(amount), "allocationId": allocation_id}
        self._call("POST", f"/debitNotes/{debit_note_id}/accept", json=body, poll_timeout=timeout)

    def reject_debit_note(
        self, debit_note_id: str, message: str, *, amount: Decimal | str = "0"
    ) -> None:
        """Note: yagna 0.17 answers 501 (not implemented); callers must not rely on it."""
        body = {
            "rejectionReason": "UNSOLICITED_SERVICE",
            "totalAmountAccepted": _amount(amount),
            "message": message,
        }
        self._call("POST", f"/debitNotes/{debit_note_id}/reject", json=body)

    # provider side

    def issue_debit_note(
        self,
        agreement_id: str,
        activity_id: str,
        total_amount_due: Decimal | str,
        *,
        usage_counter_vector: Sequence[float] | None = None,
        payment_due_date: dt.datetime | None = None,
    ) -> DebitNote:
        body: dict[str, Any] = {
            "agreementId": agreement_id,
            "activityId": activity_id,
            "totalAmountDue": _amount(total_amount_due),
            "usageCounterVector": list(usage_counter_vector or []),
            "paymentDueDate": format_timestamp(payment_due_date) if payment_due_date else None,
        }
        return DebitNote.from_json(self._call("POST", "/debitNotes", json=body))

    def send_debit_note(self, debit_note_id: str, *, timeout: float = 10.0) -> None:
        self._call(
            "POST", f"/debitNotes/{debit_note_id}/send", poll_timeout=timeout, idempotent=True
        )

    # -- invoices ----------------------------------------------------------------------------

    def invoices(self) -> list[Invoice]:
        return [Invoice.from_json(i) for i in self._call("GET", "/invoices")]

    def get_invoice(self, invoice_id: str) -> Invoice:
        return Invoice.from_json(self._call("GET", f"/invoices/{invoice_id}"))

    def invoice_events(
        self,
        *,
        after: dt.datetime | None = None,
        timeout: float = 20.0,
        max_events: int = 100,
        app_session_id: str | None = None,
    ) -> list[InvoiceEvent]:
        data = self._call(
            "GET",
            "/invoiceEvents",
            params={
                "afterTimestamp": format_timestamp(after) if after else None,
                "maxEvents": check_max_events(max_events),
                "appSessionId": app_session_id,
            },
            poll_timeout=timeout,
        )
        return [InvoiceEvent.from_json(e) for e in data or []]

    def accept_invoice(
        self,
        invoice_id: str,
        amount: Decimal | str,
        allocation_id: str,
        *,
        timeout: float = 10.0,
    ) -> None:
        """Accept; yagna checks that ``amount`` equals the invoice's (400 otherwise)."""
        body = {"totalAmountAccepted": _amount(amount), "allocationId": allocation_id}
        self._call("POST", f"/invoices/{invoice_id}/accept", json=body, poll_timeout=timeout)

    def reject_invoice(
        self,
        invoice_id: str,
        message: str,
        *,
        reason: str = "BAD_SERVICE",
        amount: Decimal | str = "0",
    ) -> None:
        body = {
            "rejectionReason": reason,
            "totalAmountAccepted": _amount(amount),
            "message": message,
        }
        self._call("POST", f"/invoices/{invoice_id}/reject", json=body)

    # provider side

    def issue_invoice(
        self,
        agreement_id: str,
        activity_ids: Sequence[str],
        amount: Decimal | str,
        payment_due_date: dt.datetime,
    ) -> Invoice:
        body = {
            "agreementId": agreement_id,
            "activityIds": list(activity_ids),
            "amount": _amount(amount),
            "paymentDueDate": format_timestamp(payment_due_date),
        }
        return Invoice.from_json(self._call("POST", "/invoices", json=body))

    def send_invoice(self, invoice_id: str, *, timeout: float = 10.0) -> None:
        self._call("POST", f"/invoices/{invoice_id}/send", poll_timeout=timeout, idempotent=True)
