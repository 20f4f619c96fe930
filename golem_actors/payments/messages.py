"""What the rest of the runtime tells the payment actor: the books' inputs and the settle call.

Kept apart from :mod:`golem_actors.payments.actor` so instances and the session can speak to the
payment actor without importing its machinery.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import Future
from dataclasses import dataclass

from golem_actors.payments.decisions import Totals
from golem_actors.yagna.models import Agreement

__all__ = [
    "AgreementClosed",
    "GetTotals",
    "RegisterActivity",
    "RegisterAgreement",
    "Settle",
]


@dataclass(frozen=True)
class RegisterAgreement:
    agreement: Agreement


@dataclass(frozen=True)
class RegisterActivity:
    agreement_id: str
    activity_id: str
    requested_at: dt.datetime


@dataclass(frozen=True)
class AgreementClosed:
    agreement_id: str
    expect_invoice: bool = True  # False when the provider failed: settling does not wait for it


@dataclass(frozen=True)
class Settle:
    """Resolve ``future`` with the totals once every ended agreement's invoice is accepted."""

    future: Future[Totals]


@dataclass(frozen=True)
class GetTotals:
    pass
