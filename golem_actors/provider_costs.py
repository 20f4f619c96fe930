"""What each provider cost, from a run's events alone: one record both summaries read.

Fed the run's events in order, ``ProviderCosts`` keeps which provider holds each agreement
(``AgreementApproved``), the providers' names (offers, agreements, tasks), and per agreement
what was accepted: the invoice, else the largest debit note (a debit note covers the agreement
so far, so the largest is what the activity cost until then; the invoice is the final word).

``summary.RunSummary`` (the session's table) and ``tasks.summary.TaskSummaryBuilder`` (a task
run's) both read it, so the two never disagree about money. Pure: no clock, no lock (each owner
applies events under its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from golem_actors.events import (
    AgreementApproved,
    DebitNoteAccepted,
    Event,
    InvoiceAccepted,
    OfferReceived,
    TaskStarted,
)

__all__ = ["ProviderCosts"]


@dataclass
class _Accepted:
    """What was accepted for one agreement."""

    largest_note: Decimal = Decimal(0)
    invoice: Decimal | None = None

    @property
    def cost(self) -> Decimal:
        return self.largest_note if self.invoice is None else self.invoice


class ProviderCosts:
    """Agreement -> provider, provider names, and what each agreement cost, from events."""

    def __init__(self) -> None:
        self._provider: dict[str, str] = {}  # agreement -> provider id
        self._names: dict[str, str] = {}  # provider id -> name
        self._accepted: dict[str, _Accepted] = {}  # agreement -> what was accepted for it

    def apply(self, event: Event) -> None:
        """Take one event into account (any type: the ones not about costs are ignored)."""
        if isinstance(event, OfferReceived):
            self._names.setdefault(event.provider_id, event.provider_name)
        elif isinstance(event, AgreementApproved):
            self._names[event.provider_id] = event.provider_name
            self._provider[event.agreement_id] = event.provider_id
        elif isinstance(event, TaskStarted):
            self._names[event.provider_id] = event.provider_name
        elif isinstance(event, DebitNoteAccepted):
            accepted = self._accepted.setdefault(event.agreement_id, _Accepted())
            accepted.largest_note = max(accepted.largest_note, event.amount)
        elif isinstance(event, InvoiceAccepted):
            self._accepted.setdefault(event.agreement_id, _Accepted()).invoice = event.amount

    # -- reading ------------------------------------------------------------------------------

    def name(self, provider_id: str) -> str | None:
        """The provider's name, if an event said it."""
        return self._names.get(provider_id)

    def provider_of(self, agreement_id: str) -> str | None:
        return self._provider.get(agreement_id)

    def by_provider(self) -> dict[str, Decimal]:
        """Per provider, the cost of its agreements; only providers with something accepted."""
        costs: dict[str, Decimal] = {}
        for agreement, accepted in self._accepted.items():
            provider = self._provider.get(agreement)
            if provider is not None:
                costs[provider] = costs.get(provider, Decimal(0)) + accepted.cost
        return costs

    def total(self) -> Decimal:
        """What every agreement of a known provider cost."""
        return sum(self.by_provider().values(), Decimal(0))

    def invoiced(self) -> set[str]:
        """Agreements whose invoice was accepted (their provider known or not)."""
        return {a for a, accepted in self._accepted.items() if accepted.invoice is not None}
