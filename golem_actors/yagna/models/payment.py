"""Payment models: allocations, demand decorations, debit notes, invoices and their events."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from golem_actors.yagna.models._base import Model

__all__ = [
    "Account",
    "Allocation",
    "DebitNote",
    "DebitNoteEvent",
    "DemandDecoration",
    "Invoice",
    "InvoiceEvent",
]


@dataclass(frozen=True)
class Account(Model):
    platform: str
    address: str
    driver: str | None = None
    network: str | None = None
    token: str | None = None
    send: bool | None = None
    receive: bool | None = None


@dataclass(frozen=True)
class Allocation(Model):
    allocation_id: str
    total_amount: Decimal
    spent_amount: Decimal
    remaining_amount: Decimal
    address: str | None = None
    payment_platform: str | None = None
    timestamp: dt.datetime | None = None
    timeout: dt.datetime | None = None
    make_deposit: bool | None = None


@dataclass(frozen=True)
class DemandDecoration(Model):
    """What a demand must carry so providers on the allocation's platform accept payment from it."""

    properties: tuple[dict[str, Any], ...]
    constraints: tuple[str, ...]

    def property_dict(self) -> dict[str, Any]:
        return {p["key"]: p["value"] for p in self.properties}


@dataclass(frozen=True)
class DebitNote(Model):
    debit_note_id: str
    agreement_id: str
    activity_id: str
    total_amount_due: Decimal
    status: str
    issuer_id: str | None = None
    recipient_id: str | None = None
    payee_addr: str | None = None
    payer_addr: str | None = None
    payment_platform: str | None = None
    previous_debit_note_id: str | None = None
    timestamp: dt.datetime | None = None
    usage_counter_vector: Any = None
    payment_due_date: dt.datetime | None = None


@dataclass(frozen=True)
class Invoice(Model):
    invoice_id: str
    agreement_id: str
    amount: Decimal
    status: str
    activity_ids: tuple[str, ...] = ()
    issuer_id: str | None = None
    recipient_id: str | None = None
    payee_addr: str | None = None
    payer_addr: str | None = None
    payment_platform: str | None = None
    timestamp: dt.datetime | None = None
    payment_due_date: dt.datetime | None = None


@dataclass(frozen=True)
class DebitNoteEvent(Model):
    """``DebitNoteReceivedEvent``, ``...AcceptedEvent``, ``...RejectedEvent`` and the rest."""

    debit_note_id: str
    event_date: dt.datetime
    event_type: str


@dataclass(frozen=True)
class InvoiceEvent(Model):
    invoice_id: str
    event_date: dt.datetime
    event_type: str
